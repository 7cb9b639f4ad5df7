package auditseal

import (
	"slices"
	"testing"
	"time"
)

// TestKeyChangedUnderSameID: a key changed across a restart without a new
// key id (the gateway refuses it within one process only) leaves a trail
// of two streams under one id and two keys. Given the old key only, the
// new stream's records read as altered; given both, each stream verifies
// under its own and the trail holds. A stream verifies under one key: a
// record sealed into the old stream under the other key (whoever holds
// either key cannot write into the other's stream) reads as altered.
func TestKeyChangedUnderSameID(t *testing.T) {
	const id = "rotated-not-renamed"
	oldKey, newKey := testKey, []byte("another-key-0123456789abcdef0123456789abcdef")
	t0 := time.Now().Add(-time.Hour)
	before := newSealer(oldKey, id, streamBegun(t0))
	after := newSealer(newKey, id, streamBegun(t0.Add(time.Minute)))
	lines := append(trail(before, records(3)...), trail(after, records(3)...)...)

	r := verifyWith(t, Options{Keys: map[string][][]byte{id: {oldKey}}}, lines)
	if r.OK() || r.Counts[KindAltered] != 3 || r.Verified != 3 {
		t.Errorf("old key only: %+v, want the 3 new records altered", r)
	}
	for _, tc := range []struct {
		keys [][]byte
		want []int // each stream's key number
	}{{[][]byte{oldKey, newKey}, []int{1, 2}}, {[][]byte{newKey, oldKey}, []int{2, 1}}} {
		r = verifyWith(t, Options{Keys: map[string][][]byte{id: tc.keys}}, lines)
		if !r.OK() || r.Verified != 6 || len(r.Streams) != 2 {
			t.Fatalf("both keys: %+v, want 6 verified in 2 streams", r)
		}
		if got := []int{r.Streams[0].Key, r.Streams[1].Key}; !slices.Equal(got, tc.want) {
			t.Errorf("streams verified under keys %v, want %v", got, tc.want)
		}
	}

	// The old stream's boot and next sequence number, sealed under the
	// new key.
	forger := newSealer(newKey, id, before.stream)
	forged := trail(forger, records(1)...)
	r = verifyWith(t, Options{Keys: map[string][][]byte{id: {oldKey, newKey}}}, slices.Concat(lines, forged))
	if r.OK() || r.Counts[KindAltered] != 1 {
		t.Errorf("a record sealed into the old stream under the new key: %+v, want it altered", r)
	}
}
