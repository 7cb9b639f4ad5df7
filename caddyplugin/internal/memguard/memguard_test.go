package memguard

import (
	"math"
	"runtime/debug"
	"testing"
	"time"
)

// TestF09_Watermarks (SECURITY.md F09, I16): pressure from 90 % of the
// limit, kept down to 80 % (no flapping around one threshold), never
// without a limit.
func TestF09_Watermarks(t *testing.T) {
	var inUse, limit uint64 = 0, 1000
	g := New(func() (uint64, uint64) { return inUse, limit })
	for _, step := range []struct {
		inUse uint64
		want  bool
	}{
		{100, false}, {899, false}, {900, true}, {850, true}, {800, true}, {799, false}, {850, false}, {1200, true},
	} {
		inUse = step.inUse
		if got := g.Sample(); got != step.want || g.Pressure() != step.want {
			t.Fatalf("%d of %d: pressure %v, want %v", inUse, limit, got, step.want)
		}
	}
	for _, none := range []uint64{0, math.MaxInt64} {
		limit, inUse = none, 1<<40
		if g.Sample() {
			t.Fatalf("limit %d: pressure", none)
		}
	}
}

// TestF09_RuntimeReader: the runtime reader sees the Go memory limit and
// the memory held; with a limit under what the process holds, the guard
// reports pressure, and Run keeps sampling.
func TestF09_RuntimeReader(t *testing.T) {
	inUse, limit := RuntimeReader()
	if inUse == 0 {
		t.Fatal("no memory in use read")
	}
	if limit != 0 && limit < math.MaxInt64 {
		t.Logf("a memory limit is set: %d", limit)
	}
	prev := debug.SetMemoryLimit(int64(inUse)) // the process is at 100 % of it
	defer debug.SetMemoryLimit(prev)
	g := New(nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { g.Run(time.Millisecond, stop); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !g.Pressure() {
		if time.Now().After(deadline) {
			t.Fatal("no pressure with the process at its memory limit")
		}
		time.Sleep(time.Millisecond)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	for g.Pressure() {
		if time.Now().After(deadline) {
			t.Fatal("pressure without a limit")
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-done
}
