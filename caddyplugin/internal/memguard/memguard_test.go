package memguard

import (
	"math"
	"runtime"
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

// TestF09_RuntimeReader: the runtime reader counts live memory, not the
// heap the runtime keeps: 96 MiB kept alive raise the measure by about
// that much, garbage does not; with the limit under what is live the guard
// reports pressure, without a limit it does not, and Run keeps sampling.
// A limit under 64 MiB is not taken for the container's.
func TestF09_RuntimeReader(t *testing.T) {
	runtime.GC()
	before, _ := RuntimeReader()
	ballast := make([]byte, 96<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	for range 50 {
		_ = make([]byte, 1<<20) // garbage
	}
	runtime.GC()
	inUse, _ := RuntimeReader()
	if grew := int64(inUse) - int64(before); grew < 90<<20 || grew > 110<<20 {
		t.Fatalf("96 MiB kept alive: the measure grew by %d MiB", grew>>20)
	}
	prev := debug.SetMemoryLimit(int64(inUse)) // live memory at 100 % of it
	defer debug.SetMemoryLimit(prev)
	g := New(nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { g.Run(time.Millisecond, stop); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !g.Pressure() {
		if time.Now().After(deadline) {
			t.Fatal("no pressure with live memory at the memory limit")
		}
		time.Sleep(time.Millisecond)
	}
	debug.SetMemoryLimit(32 << 20)
	for g.Pressure() {
		if time.Now().After(deadline) {
			t.Fatal("pressure under a 32 MiB limit, which is not the container's")
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-done
	runtime.KeepAlive(ballast)
}
