package upstreamauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/redislock"
)

// Wire format of a shared token (B11).
const (
	// KeyPrefix names every Redis key this package writes.
	KeyPrefix         = "passerelle:v1:upstream:"
	sealInfo          = "passerelle/upstream-token/v1"
	sealVersion  byte = 1
	sealNonceLen      = 12
)

var errSealed = errors.New("upstreamauth: shared token does not open")

// sharedStore keeps one provider's token in Redis, sealed with AES-256-GCM
// under HKDF-SHA256(ikm = SealSecret, info = "passerelle/upstream-token/v1"),
// with the Redis key as associated data. The key is KeyPrefix +
// hex(HMAC-SHA256(SealSecret, sharedIdentity)): the provider name, token
// endpoint, client id and scopes the token was asked with.
type sharedStore struct {
	rdb     redis.UniversalClient
	key     string
	aead    cipher.AEAD
	timeout time.Duration
}

type sealedToken struct {
	Header    string `json:"h"`
	RefreshAt int64  `json:"r"` // Unix milliseconds
}

// sharedIdentity names what a shared token was asked with: a reload onto
// another client id, token endpoint or narrower scopes, or another
// deployment on the same Redis and secret, never takes a token asked under
// other terms.
func sharedIdentity(cfg OAuth2Config) string {
	scopes := slices.Sorted(slices.Values(cfg.Scopes))
	return strings.Join([]string{cfg.Name, cfg.TokenURL, cfg.ClientID, strings.Join(scopes, " ")}, "\x00")
}

func newSharedStore(rdb redis.UniversalClient, secret []byte, identity string, timeout time.Duration) *sharedStore {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(identity))
	k, err := hkdf.Key(sha256.New, secret, nil, sealInfo, 32)
	if err != nil { // only for impossible lengths
		panic(err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &sharedStore{rdb: rdb, key: KeyPrefix + hex.EncodeToString(m.Sum(nil)), aead: g, timeout: timeout}
}

func (s *sharedStore) seal(t *cachedToken) ([]byte, error) {
	plain, err := json.Marshal(sealedToken{Header: t.header, RefreshAt: t.refreshAt.UnixMilli()})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+sealNonceLen, 1+sealNonceLen+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	_, _ = rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], plain, []byte(s.key)), nil
}

func (s *sharedStore) open(val []byte) (*cachedToken, error) {
	if len(val) < 1+sealNonceLen+s.aead.Overhead() || len(val) > 2*maxTokenResponse || val[0] != sealVersion {
		return nil, errSealed
	}
	plain, err := s.aead.Open(nil, val[1:1+sealNonceLen], val[1+sealNonceLen:], []byte(s.key))
	if err != nil {
		return nil, errSealed
	}
	var st sealedToken
	if err := json.Unmarshal(plain, &st); err != nil || st.RefreshAt <= 0 ||
		len(st.Header) <= len("Bearer ") || st.Header[:7] != "Bearer " || !validToken(st.Header[7:]) {
		return nil, errSealed
	}
	return &cachedToken{header: st.Header, refreshAt: time.UnixMilli(st.RefreshAt)}, nil
}

// get returns the shared token, nil when there is none.
func (s *sharedStore) get(ctx context.Context) (*cachedToken, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	val, err := s.rdb.Get(ctx, s.key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.open(val)
}

func (s *sharedStore) set(ctx context.Context, t *cachedToken, ttl time.Duration) error {
	ttl = ttl.Truncate(time.Millisecond)
	if ttl <= 0 {
		return nil
	}
	val, err := s.seal(t)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.rdb.Set(ctx, s.key, val, ttl).Err()
}

// deleteIf deletes the shared token only if its header is header: it reads
// the sealed value, opens it, compares, and deletes it with a script that
// checks the key still holds those very bytes, so that a token another
// instance shared in the meantime stays. It reports whether it deleted.
func (s *sharedStore) deleteIf(ctx context.Context, header string) (bool, error) {
	gctx, cancel := context.WithTimeout(ctx, s.timeout)
	val, err := s.rdb.Get(gctx, s.key).Bytes()
	cancel()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	t, err := s.open(val)
	if err != nil || t.header != header {
		return false, nil // not the refused token (or not ours): leave it
	}
	dctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return redislock.DeleteIfSame(dctx, s.rdb, s.key, string(val))
}

// lockPoll is how often an instance waiting for another's fetch looks for
// the shared token.
const lockPoll = 20 * time.Millisecond

// lock takes the cluster-wide fetch lock for ttl, so that one instance
// of a cluster asks the token endpoint per expiry: nil when another
// instance holds it. An error means Redis is unusable: fetch without the
// lock.
func (s *sharedStore) lock(ctx context.Context, ttl time.Duration) (*redislock.Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return redislock.Acquire(ctx, s.rdb, s.key+":lock", ttl)
}

// unlock releases l unless its lifetime is over and another instance
// holds the lock now.
func (s *sharedStore) unlock(ctx context.Context, l *redislock.Lock) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	_ = l.Release(ctx, s.rdb)
}

// wait polls for the token another instance is fetching. It gives up
// (nil) when the lock is released without a usable token (released: true),
// on a Redis error, or when ctx ends.
func (s *sharedStore) wait(ctx context.Context, usable func(*cachedToken) bool) (token *cachedToken, released bool) {
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, false
		case <-t.C:
		}
		tok, err := s.get(ctx)
		if err != nil {
			return nil, false
		}
		if tok != nil && usable(tok) {
			return tok, false
		}
		lctx, cancel := context.WithTimeout(ctx, s.timeout)
		held, err := redislock.Held(lctx, s.rdb, s.key+":lock")
		cancel()
		if err != nil {
			return nil, false
		}
		if !held {
			// Released: the token may have been shared just after our
			// read; look once more before giving up.
			if tok, err := s.get(ctx); err == nil && tok != nil && usable(tok) {
				return tok, false
			}
			return nil, true
		}
	}
}
