package datapass

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Records in Redis are sealed: "v1." + hex HMAC-SHA256 + "." + the
// record's JSON, the MAC keyed by the store's first key (NewRedis) over the
// request number and the JSON. Whoever can write to Redis but does not
// hold a key cannot grant access (SECURITY.md §2, as B02 for the token
// cache): a record whose seal checks under none of the store's keys is
// ErrCorrupt. One sealed under a later key (the previous webhook secret's,
// during a rotation) is read, and sealed again under the first (Reload).
//
// A record written before records were sealed (bare JSON) is read only
// when it grants nothing (inactive): a revocation survives the upgrade, a
// grant is ignored (the file governs until DataPass's next event or
// resync writes it again, sealed).
const sealVersion = "v1."

// sealRecord returns the value stored for rec.
func sealRecord(key []byte, rec Record) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(sealVersion)+2*sha256.Size+1+len(b))
	out = append(out, sealVersion...)
	out = hex.AppendEncode(out, recordMAC(key, rec.RequestID, b))
	out = append(out, '.')
	return append(out, b...), nil
}

// opened is a record read from Redis.
type opened struct {
	Record
	use    bool // false: an unsealed grant, ignored
	reseal bool // sealed under a later key, or not sealed: to seal again
}

// openRecord reads the value stored for request id under keys, or
// ErrCorrupt.
func openRecord(keys [][]byte, id string, raw []byte) (opened, error) {
	var r Record
	rest, sealed := bytes.CutPrefix(raw, []byte(sealVersion))
	if !sealed {
		if json.Unmarshal(raw, &r) != nil || r.RequestID != id {
			return opened{}, ErrCorrupt
		}
		return opened{Record: r, use: !r.Active, reseal: !r.Active}, nil
	}
	mac, body, ok := splitSealed(rest)
	if !ok {
		return opened{}, ErrCorrupt
	}
	got := make([]byte, sha256.Size)
	if _, err := hex.Decode(got, mac); err != nil {
		return opened{}, ErrCorrupt
	}
	for i, key := range keys {
		if hmac.Equal(got, recordMAC(key, id, body)) {
			if json.Unmarshal(body, &r) != nil || r.RequestID != id {
				return opened{}, ErrCorrupt
			}
			return opened{Record: r, use: true, reseal: i > 0}, nil
		}
	}
	return opened{}, ErrCorrupt
}

// claimed returns what a sealed record that does not open says it is, its
// seal unchecked: only to order it, never to serve it. A record sealed
// under a key this instance does not hold (another instance's new webhook
// secret, during a rotation) may be later than this instance's copy. ok is
// false for a value that is not a sealed record of request id (garbage).
func claimed(id string, raw []byte) (Record, bool) {
	rest, ok := bytes.CutPrefix(raw, []byte(sealVersion))
	if !ok {
		return Record{}, false
	}
	var r Record
	if _, body, ok := splitSealed(rest); !ok || json.Unmarshal(body, &r) != nil || r.RequestID != id {
		return Record{}, false
	}
	if r.FiredAt > time.Now().Add(MaxClockAhead).UnixNano() {
		// Later than any event the webhook accepts: a forgery, not a
		// record of another key; it orders nothing.
		return Record{}, false
	}
	return r, true
}

// splitSealed splits what follows sealVersion in a sealed record: the hex
// seal, of its length, and the record's JSON.
func splitSealed(rest []byte) (mac, body []byte, ok bool) {
	mac, body, ok = bytes.Cut(rest, []byte("."))
	return mac, body, ok && len(mac) == hex.EncodedLen(sha256.Size)
}

// recordMAC is the seal of a record's JSON under request number id.
func recordMAC(key []byte, id string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("passerelle datapass record\x00"))
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write(body)
	return h.Sum(nil)
}
