// Package auditseal seals the records of a JSON log, the audit trail first
// (SECURITY.md G09), so that whoever holds the key can tell a record that
// was altered, added or removed since the gateway wrote it, wherever the
// trail went (a file, a collector, an archive):
//
//	{"level":"info",…,"decision":"allow","seal_key":"2026-12","seal_boot":"6956…","seal_at":1796651323417,"seal_seq":41,"seal":"9b0e…"}
//
// Each record gets, after its own fields:
//
//	seal_key   the key's id (several keys verify a trail that spans a rotation)
//	seal_boot  the stream's id: when the process began sealing under the
//	           key id (Unix seconds, 8 hex digits) and 32 random bits (8)
//	seal_at    when the record was sealed (Unix milliseconds)
//	seal_seq   1, 2, 3… per key id within the process: every record the
//	           process sealed, whatever the configuration reloads
//	seal       HMAC-SHA256(key, the record's bytes up to seal_seq included), hex
//
// The MAC covers the record's exact bytes (the line without its line end,
// "\n" or "\r\n"), so any change to a record breaks its seal; the
// sequence makes a removed record a gap, a replayed one a duplicate, and,
// as every stream that began after the trail's first record must start at
// 1, records removed around a restart, or a key rotation, a gap too (the
// sealed start and times tell which streams began before the trail,
// whatever the order of the lines). What a seal cannot show: the records
// before the first one the trail keeps (a trail cut at its start), or
// after the last one a process's stream keeps (a trail cut at its end, or
// a process's last records), a whole process's stream removed, or one
// copied in from another instance's trail: the gateway's metric
// caddy_passerelle_audit_sealed_total{key_id, boot}, scraped off-host, gives
// each process's count to compare with, and names its instance. Records
// the process lost before writing them (a full buffer with on_full drop)
// are gaps too, as they should be.
//
// The sealer works on the bytes a JSON encoder wrote: Caddy's log encoder
// passerelle_sealed (module.go) wraps one. Verifier checks a trail
// (`passerelle audit-verify`).
package auditseal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MinKeyBytes is the shortest key accepted: 256 bits.
const MinKeyBytes = 32

// Field names, in the order the sealer writes them, and the fixed parts
// of what it appends.
const (
	keyField  = `,"seal_key":"`
	bootField = `","seal_boot":"`
	atField   = `","seal_at":`
	seqField  = `,"seal_seq":`
	macField  = `,"seal":"`
	macHexLen = 2 * sha256.Size
	bootLen   = 16 // hex digits: the start (Unix seconds, 8) and 32 random bits (8)
)

// validKeyID matches a key id: letters, digits, '.', '_' and '-', at most
// 32 (written in every record without escaping).
var validKeyID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// ValidKeyID reports whether id is a valid key id.
func ValidKeyID(id string) bool { return validKeyID.MatchString(id) }

// ErrKeyID reports a key id that is not one validKeyID matches.
var ErrKeyID = errors.New("auditseal: key id: 1 to 32 letters, digits, '.', '_' or '-'")

// ErrKeyTooShort reports a key shorter than MinKeyBytes.
var ErrKeyTooShort = errors.New("auditseal: key: at least 32 bytes")

// ErrKeyIDReused reports a key id the process already sealed records
// under with another key: a new key needs a new key id.
var ErrKeyIDReused = errors.New("auditseal: key id: records already sealed under it with another key; give the new key a new key id")

// bootID returns the id of a stream begun at t: t in Unix seconds and 32
// random bits, 8 hex digits each.
func bootID(t time.Time) string {
	var b [bootLen / 2]byte
	binary.BigEndian.PutUint32(b[:4], uint32(t.Unix()))
	_, _ = rand.Read(b[4:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// sealStream is what the process seals under one key id: its boot id,
// drawn when it seals its first record (a sealer made by a configuration
// refused later, or a log that stays quiet, begins nothing), the SHA-256
// of the key that record was sealed under, and its counter.
type sealStream struct {
	boot atomic.Pointer[string]
	key  atomic.Pointer[[sha256.Size]byte]
	seq  atomic.Uint64
}

// bootID returns the stream's boot id, drawn now if it has none yet, when
// a record is sealed under the key whose SHA-256 is key: the stream's key
// from then on.
func (s *sealStream) bootID(key *[sha256.Size]byte) string {
	if b := s.boot.Load(); b != nil {
		return *b
	}
	s.key.CompareAndSwap(nil, key)
	b := bootID(time.Now())
	s.boot.CompareAndSwap(nil, &b)
	return *s.boot.Load()
}

// begun returns the stream's boot id, "" before its first record.
func (s *sealStream) begun() string {
	if b := s.boot.Load(); b != nil {
		return *b
	}
	return ""
}

// streams holds one stream per key id for the whole process, so that the
// configurations a reload replaces and the next one number their records
// as one stream; a key id a reload brings (a rotation, a log newly sealed)
// begins a stream at its first record, which must start at 1 in the trail.
var streams sync.Map // key id → *sealStream

// streamOf returns keyID's stream.
func streamOf(keyID string) *sealStream {
	if s, ok := streams.Load(keyID); ok {
		return s.(*sealStream)
	}
	s, _ := streams.LoadOrStore(keyID, new(sealStream))
	return s.(*sealStream)
}

// sealKeys holds the SHA-256 of every key a sealer of this process was
// given (IsSealKey).
var sealKeys sync.Map // [sha256.Size]byte → struct{}

// IsSealKey reports whether key seals, or sealed, an audit trail of this
// process (a configuration loaded since it started). The auditors hold
// the seal keys: no other secret may be one (the audit pseudonym key
// would let them name the citizens behind the records, SECURITY.md G02).
func IsSealKey(key []byte) bool {
	_, ok := sealKeys.Load(sha256.Sum256(key))
	return ok
}

// Sealer seals records under one key. It is safe for concurrent use.
type Sealer struct {
	keyID  string
	keySum [sha256.Size]byte // SHA-256 of the key
	stream *sealStream
	now    func() time.Time
	macs   sync.Pool // hash.Hash: HMAC-SHA256 under the key
}

// NewSealer returns the sealer of a key and its id. Two sealers of one key
// id share their sequence: give each sealed log a key id of its own. A key
// id the process already sealed records under with another key is refused
// (ErrKeyIDReused): its stream would go on numbering records under two
// keys, and a trail verifies with one key per key id, so every record
// under one of them would read as altered.
func NewSealer(key []byte, keyID string) (*Sealer, error) {
	if !validKeyID.MatchString(keyID) {
		return nil, ErrKeyID
	}
	if len(key) < MinKeyBytes {
		return nil, ErrKeyTooShort
	}
	sum := sha256.Sum256(key)
	st := streamOf(keyID)
	if k := st.key.Load(); k != nil && *k != sum {
		return nil, ErrKeyIDReused
	}
	sealKeys.Store(sum, struct{}{})
	return newSealer(key, keyID, st), nil
}

// newSealer returns a sealer of a stream (tests seal as another process).
func newSealer(key []byte, keyID string, st *sealStream) *Sealer {
	key = append([]byte(nil), key...)
	s := &Sealer{keyID: keyID, keySum: sha256.Sum256(key), stream: st, now: time.Now}
	s.macs.New = func() any { return hmac.New(sha256.New, key) }
	return s
}

// Boot returns the boot id (seal_boot) of the process's stream under key
// id; "" when it has sealed nothing under it.
func Boot(keyID string) string {
	if s, ok := streams.Load(keyID); ok {
		return s.(*sealStream).begun()
	}
	return ""
}

// Sealed returns how many records the process has sealed under key id so
// far (the last seal_seq given).
func Sealed(keyID string) uint64 {
	if s, ok := streams.Load(keyID); ok {
		return s.(*sealStream).seq.Load()
	}
	return 0
}

// Seal appends to dst the record line, one JSON object ended by "\n" as
// a JSON encoder writes it, with its seal fields, and returns it. A line
// of another shape is appended unchanged and reported false: the
// verifier counts it unsealed.
func (s *Sealer) Seal(dst, line []byte) ([]byte, bool) {
	body, ok := objectBody(line)
	if !ok {
		return append(dst, line...), false
	}
	start := len(dst)
	dst = append(dst, body...)
	if len(body) > 1 { // not "{": the record has fields of its own
		dst = append(dst, keyField...)
	} else {
		dst = append(dst, keyField[1:]...)
	}
	dst = append(dst, s.keyID...)
	dst = append(dst, bootField...)
	dst = append(dst, s.stream.bootID(&s.keySum)...) // before seal_at: a stream begins no later than its first record
	dst = append(dst, atField...)
	dst = strconv.AppendInt(dst, s.now().UnixMilli(), 10)
	dst = append(dst, seqField...)
	dst = strconv.AppendUint(dst, s.stream.seq.Add(1), 10)
	dst = append(dst, macField...)
	dst = appendMAC(dst, s.mac(dst[start:len(dst)-len(macField)]))
	return append(dst, "\"}\n"...), true
}

// mac returns HMAC-SHA256(key, b).
func (s *Sealer) mac(b []byte) []byte {
	m := s.macs.Get().(hash.Hash)
	defer s.macs.Put(m)
	m.Reset()
	m.Write(b)
	var sum [sha256.Size]byte
	return m.Sum(sum[:0])
}

func appendMAC(dst, mac []byte) []byte {
	var h [macHexLen]byte
	hex.Encode(h[:], mac)
	return append(dst, h[:]...)
}

// objectBody returns a record line without its closing "}" and line end
// ("\n" or "\r\n"): "{" and the fields. false: the line is not one JSON
// object (it does not start with "{" and end with "}").
func objectBody(line []byte) ([]byte, bool) {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
		if n > 0 && line[n-1] == '\r' {
			n--
		}
	}
	if n < 2 || line[0] != '{' || line[n-1] != '}' {
		return nil, false
	}
	return line[:n-1], true
}
