package auditseal

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// Problem kinds, a closed list.
const (
	// KindUnsealed: a line without a seal, or whose seal fields are not
	// as the sealer writes them.
	KindUnsealed = "unsealed"
	// KindAltered: the seal does not match the record: changed since it
	// was sealed, sealed under a key of its id the verifier was not given,
	// or under another key than the rest of its stream.
	KindAltered = "altered"
	// KindUnknownKey: sealed under a key id the verifier was not given.
	KindUnknownKey = "unknown_key"
	// KindDuplicate: a sequence number seen twice in one stream.
	KindDuplicate = "duplicate"
)

// MaxLineBytes bounds a record line; a longer one stops the verification.
const MaxLineBytes = 1 << 20

// maxProblems bounds the problems a Report lists (all are counted).
const maxProblems = 100

// Problem is one line that failed.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Kind string `json:"kind"`
}

// Range is an inclusive range of sequence numbers.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Stream is what the trail holds of one process's records under one key:
// sequence numbers First to Last, but Missing (which also holds 1 to
// First-1 when the stream had to start at 1: it began after the trail's
// start).
type Stream struct {
	KeyID string `json:"key_id"`
	// Key is which of its key id's keys the stream verified under, from 1
	// in the order Options.Keys gives them: a stream under an old key that
	// began after its replacement is one to look at (who still held it?).
	Key     int       `json:"key"`
	Boot    string    `json:"boot"`
	Started time.Time `json:"started"` // when it began: its boot id's time, or its earliest seal_at if earlier
	Records int       `json:"records"`
	First   uint64    `json:"first"`
	Last    uint64    `json:"last"`
	Missing []Range   `json:"missing,omitempty"`
}

// Report is the outcome of a verification.
type Report struct {
	Lines    int            `json:"lines"`
	Verified int            `json:"verified"`
	Problems []Problem      `json:"problems,omitempty"` // the first 100
	Counts   map[string]int `json:"counts,omitempty"`   // problems by kind
	Streams  []Stream       `json:"streams"`
}

// OK reports a trail that holds a sealed record at least, whose every
// line is sealed and verified, with no record missing between the first
// and the last of each stream, nor before the first of a stream that must
// start at 1. A trail with no record (files emptied, or every line
// blanked) proves nothing: it is not OK.
func (r Report) OK() bool {
	if r.Verified == 0 || len(r.Counts) > 0 {
		return false
	}
	for _, s := range r.Streams {
		if len(s.Missing) > 0 {
			return false
		}
	}
	return true
}

// Options are a verification's settings.
type Options struct {
	// Keys are the keys, by key id. An id may have several: a key changed
	// across a restart without a new key id (the gateway refuses that
	// within one process only). Each stream is verified under one key: the
	// one its first record read verifies under (Stream.Key); its records
	// under another read as altered.
	Keys map[string][][]byte
	// Since is when the trail verified begins; zero: its first record
	// (the earliest seal_at). Give the latest of the instances' oldest
	// records when their trails, merged, were not cut at the same time.
	Since time.Time
}

// MaxClockSkew is how far apart the clocks of the instances whose trails
// are verified together may be: a stream that began up to this long after
// the trail's start may still start after 1.
const MaxClockSkew = 10 * time.Second

// Verifier checks sealed trails, file after file. It is not safe for
// concurrent use.
//
// Which streams must start at 1: those that began (seal_boot: when the
// process began sealing under the key id) after the trail's start
// (Options.Since, or the earliest seal_at), give or take MaxClockSkew. A
// stream that began before may start later: its first records are in the
// files the retention removed, or before the window verified. So records
// removed around a restart or a key rotation (the end of one stream and
// the start of the next) are missing, not unseen, whatever the order of
// the lines and files: the starts and the times are sealed.
type Verifier struct {
	o        Options
	streams  map[streamID]*stream
	order    []streamID
	earliest int64 // the earliest seal_at verified (Unix milliseconds); 0: none yet
	report   Report
}

type streamID struct{ keyID, boot string }

// stream tracks one stream's sequence numbers: those above last not seen
// yet, those below it missing until they come (records of two batches may
// reach the trail out of order around a reload).
type stream struct {
	key         int // the index of its key among its key id's
	records     int
	first, last uint64
	missing     []Range // sorted, disjoint
	earliest    int64   // its earliest seal_at (Unix milliseconds)
}

// NewVerifier returns a verifier.
func NewVerifier(o Options) *Verifier {
	return &Verifier{o: o, streams: map[streamID]*stream{}}
}

// Read verifies the lines of one file (name is what problems cite). It
// fails on a read error or a line longer than MaxLineBytes; what was read
// until then stays counted.
func (v *Verifier) Read(name string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		v.report.Lines++
		if kind := v.line(sc.Bytes()); kind != "" { // ScanLines took "\n" or "\r\n" off
			v.problem(name, line, kind)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s: line %d: longer than %d bytes", name, line+1, MaxLineBytes)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// line verifies one record line; "" when it holds.
func (v *Verifier) line(b []byte) string {
	keyID, boot, at, seq, mac, signed, ok := parseSeal(b)
	if !ok {
		return KindUnsealed
	}
	keys := v.o.Keys[keyID]
	if len(keys) == 0 {
		return KindUnknownKey
	}
	id := streamID{keyID, boot}
	if s := v.streams[id]; s != nil {
		keys = keys[s.key : s.key+1] // one key a stream
	}
	k := slices.IndexFunc(keys, func(key []byte) bool {
		m := hmac.New(sha256.New, key)
		m.Write(signed)
		return hmac.Equal(m.Sum(nil), mac)
	})
	if k < 0 {
		return KindAltered
	}
	if !v.sequence(id, seq, k) {
		return KindDuplicate
	}
	if s := v.streams[id]; s.earliest == 0 || at < s.earliest {
		s.earliest = at
	}
	if v.earliest == 0 || at < v.earliest {
		v.earliest = at
	}
	v.report.Verified++
	return ""
}

// parseSeal splits a sealed line as Sealer.Seal writes it: the key id,
// boot, time and sequence number, the MAC, and the bytes it covers.
func parseSeal(b []byte) (keyID, boot string, at int64, seq uint64, mac, signed []byte, ok bool) {
	i := bytes.LastIndex(b, []byte(macField))
	if i < 0 || len(b)-i != len(macField)+macHexLen+2 || !bytes.HasSuffix(b, []byte(`"}`)) {
		return "", "", 0, 0, nil, nil, false
	}
	hexMAC := b[i+len(macField) : len(b)-2]
	mac = make([]byte, sha256.Size)
	if !isHex(hexMAC) { // lower case, as written: no other spelling verifies
		return "", "", 0, 0, nil, nil, false
	}
	_, _ = hex.Decode(mac, hexMAC)
	signed = b[:i]
	k := bytes.LastIndex(signed, []byte(keyField[1:])) // the record may have no field before it
	if k < 1 {
		return "", "", 0, 0, nil, nil, false
	}
	rest := signed[k+len(keyField)-1:]
	id, rest, ok1 := bytes.Cut(rest, []byte(bootField))
	bt, rest, ok2 := bytes.Cut(rest, []byte(atField))
	atDigits, seqDigits, ok3 := bytes.Cut(rest, []byte(seqField))
	if !ok1 || !ok2 || !ok3 || !validKeyID.Match(id) || len(bt) != bootLen || !isHex(bt) {
		return "", "", 0, 0, nil, nil, false
	}
	t, okAt := positive(atDigits)
	n, okSeq := positive(seqDigits)
	if !okAt || !okSeq || t > math.MaxInt64 {
		return "", "", 0, 0, nil, nil, false
	}
	return string(id), string(bt), int64(t), n, mac, signed, true
}

// positive reads a decimal number as the sealer writes one: digits only,
// no leading zero, not 0.
func positive(digits []byte) (uint64, bool) {
	n, err := strconv.ParseUint(string(digits), 10, 64)
	return n, err == nil && n > 0 && digits[0] != '0'
}

// started returns the start of the process a boot id names (its first 8
// hex digits: Unix seconds).
func started(boot string) time.Time {
	b, _ := hex.DecodeString(boot[:8]) // checked by parseSeal
	return time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC()
}

func isHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// sequence records one sequence number of a stream, which a new stream
// verifies under its key id's key number key; false when it was seen
// already.
func (v *Verifier) sequence(id streamID, n uint64, key int) bool {
	s := v.streams[id]
	if s == nil {
		v.streams[id] = &stream{key: key, records: 1, first: n, last: n}
		v.order = append(v.order, id)
		return true
	}
	switch {
	case n > s.last:
		if n > s.last+1 {
			s.missing = append(s.missing, Range{s.last + 1, n - 1})
		}
		s.last = n
	case n < s.first:
		if n < s.first-1 {
			s.missing = slices.Insert(s.missing, 0, Range{n + 1, s.first - 1})
		}
		s.first = n
	default:
		if !s.arrived(n) {
			return false
		}
	}
	s.records++
	return true
}

// arrived takes n out of the missing ranges; false when it was not missing.
func (s *stream) arrived(n uint64) bool {
	i, found := slices.BinarySearchFunc(s.missing, n, func(r Range, n uint64) int {
		switch {
		case r.To < n:
			return -1
		case r.From > n:
			return 1
		}
		return 0
	})
	if !found {
		return false
	}
	r := s.missing[i]
	switch {
	case r.From == r.To:
		s.missing = slices.Delete(s.missing, i, i+1)
	case n == r.From:
		s.missing[i].From++
	case n == r.To:
		s.missing[i].To--
	default:
		s.missing[i].To = n - 1
		s.missing = slices.Insert(s.missing, i+1, Range{n + 1, r.To})
	}
	return true
}

func (v *Verifier) problem(file string, line int, kind string) {
	if v.report.Counts == nil {
		v.report.Counts = map[string]int{}
	}
	v.report.Counts[kind]++
	if len(v.report.Problems) < maxProblems {
		v.report.Problems = append(v.report.Problems, Problem{file, line, kind})
	}
}

// Report returns the outcome of the files read so far.
func (v *Verifier) Report() Report {
	r := v.report
	r.Streams = make([]Stream, 0, len(v.order))
	for _, id := range v.order {
		s := v.streams[id]
		// A clock stepped back after the stream began seals earlier
		// times than its boot's: the earliest of them counts.
		begun := started(id.boot)
		if first := time.UnixMilli(s.earliest).UTC(); first.Before(begun) {
			begun = first
		}
		st := Stream{KeyID: id.keyID, Key: s.key + 1, Boot: id.boot, Started: begun, Records: s.records, First: s.first, Last: s.last}
		if s.first > 1 && !v.mayStartLate(begun) {
			st.Missing = append(st.Missing, Range{1, s.first - 1})
		}
		st.Missing = append(st.Missing, s.missing...)
		r.Streams = append(r.Streams, st)
	}
	return r
}

// mayStartLate reports whether a stream begun then may start after 1: it
// began before the trail's start, give or take MaxClockSkew.
func (v *Verifier) mayStartLate(begun time.Time) bool {
	start := v.earliest
	if !v.o.Since.IsZero() {
		start = v.o.Since.UnixMilli()
	}
	return begun.UnixMilli() <= start+MaxClockSkew.Milliseconds()
}
