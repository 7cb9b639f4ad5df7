package tokencache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// Wire format of an L2 entry (B01, B02).
const (
	// KeyPrefix names every Redis key this package writes.
	KeyPrefix = "passerelle:v1:fc:"
	// hkdfInfo binds the derived value key to this use.
	hkdfInfo = "passerelle/fc-cache/v1"
	// valueVersion is the first byte of every sealed value.
	valueVersion byte = 1
	nonceLen     int  = 12
	// maxValueLen bounds what we try to open; a sealed Facts is far smaller.
	maxValueLen = 64 << 10
)

// errOpen is the single error of a value that fails to open, whatever the
// cause (version, length, tag, JSON): a miss, never an allow (B09).
var errOpen = errors.New("tokencache: sealed value does not open")

// envelope is the sealed plaintext: the facts plus the absolute deadline the
// writer computed. The deadline bounds an entry even if its Redis TTL was
// changed by someone with write access (PERSIST, EXPIRE): every L2 hit
// re-checks both it and facts.exp against the clock.
type envelope struct {
	// Until is the deadline in Unix milliseconds.
	Until int64           `json:"until"`
	Facts *fcverify.Facts `json:"facts"`
}

// codec names and seals L2 entries. It holds only the server secrets.
type codec struct {
	keySecret []byte // k_key
	valSecret []byte // k_val
}

// redisKey returns KeyPrefix + hex(HMAC-SHA256(k_key, token)).
func (c codec) redisKey(token string) string {
	m := hmac.New(sha256.New, c.keySecret)
	m.Write([]byte(token))
	var sum [sha256.Size]byte
	buf := make([]byte, len(KeyPrefix)+2*sha256.Size)
	copy(buf, KeyPrefix)
	hex.Encode(buf[len(KeyPrefix):], m.Sum(sum[:0]))
	return string(buf)
}

// aead derives AES-256-GCM under HKDF-SHA256(ikm = token, salt = k_val,
// info = "passerelle/fc-cache/v1").
func (c codec) aead(token string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, []byte(token), c.valSecret, hkdfInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns version ‖ nonce ‖ AES-256-GCM(JSON(envelope)) with the Redis
// key as associated data.
func (c codec) seal(token, key string, f *fcverify.Facts, until time.Time) ([]byte, error) {
	var nonce [nonceLen]byte
	_, _ = rand.Read(nonce[:])
	return c.sealWithNonce(token, key, f, until, nonce)
}

// sealWithNonce is seal with a given nonce; only tests pass a fixed one.
func (c codec) sealWithNonce(token, key string, f *fcverify.Facts, until time.Time, nonce [nonceLen]byte) ([]byte, error) {
	plain, err := json.Marshal(envelope{Until: until.UnixMilli(), Facts: f})
	if err != nil {
		return nil, err
	}
	g, err := c.aead(token)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceLen, 1+nonceLen+len(plain)+g.Overhead())
	out[0] = valueVersion
	copy(out[1:], nonce[:])
	return g.Seal(out, out[1:1+nonceLen], plain, []byte(key)), nil
}

// open reverses seal. Any failure is errOpen.
func (c codec) open(token, key string, val []byte) (envelope, error) {
	var env envelope
	if len(val) < 1+nonceLen+16 || len(val) > maxValueLen || val[0] != valueVersion {
		return env, errOpen
	}
	g, err := c.aead(token)
	if err != nil {
		return env, errOpen
	}
	plain, err := g.Open(nil, val[1:1+nonceLen], val[1+nonceLen:], []byte(key))
	if err != nil {
		return env, errOpen
	}
	if err := json.Unmarshal(plain, &env); err != nil || env.Facts == nil || env.Until <= 0 {
		return envelope{}, errOpen
	}
	return env, nil
}
