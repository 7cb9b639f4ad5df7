// Package memguard tells when the process's memory nears its limit, so
// that the gateway refuses new requests (503) before the Go runtime spends
// all its time collecting or the kernel kills it (SECURITY.md F09, I16).
//
// The limit is the Go memory limit (GOMEMLIMIT; Caddy sets it to 90 % of
// the cgroup's memory limit, or of the host's memory without one). The
// measure is what the process would hold right after a collection: the
// live heap at the last collection, plus the runtime's memory that is not
// heap objects nor free heap (stacks, metadata, buffers). Not the memory
// mapped: the runtime lets the heap grow up to the limit on purpose and
// keeps freed pages a while, so that figure sits near the limit on a
// healthy process. A sampler reads it a few times a second; above the high
// watermark (90 % of the limit) the guard reports pressure, until it falls
// under the low one (80 %). Without a limit, or under 64 MiB (a limit set
// for something else), the guard never reports pressure. The request path
// only reads an atomic flag.
package memguard

import (
	"math"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Watermarks, as fractions of the memory limit.
const (
	High = 0.90
	Low  = 0.80
)

// Reader returns the memory in use and the limit, in bytes; limit 0 or
// math.MaxInt64: no limit.
type Reader func() (inUse, limit uint64)

// Guard reports memory pressure.
type Guard struct {
	read     Reader
	pressure atomic.Bool
}

// New returns a guard over read (RuntimeReader when nil); call Sample, or
// Run, to update it.
func New(read Reader) *Guard {
	if read == nil {
		read = RuntimeReader
	}
	return &Guard{read: read}
}

// Pressure reports whether new requests should be refused.
func (g *Guard) Pressure() bool { return g.pressure.Load() }

// Sample reads the memory once and updates the pressure flag; it returns
// the flag.
func (g *Guard) Sample() bool {
	inUse, limit := g.read()
	if limit == 0 || limit >= math.MaxInt64 {
		g.pressure.Store(false)
		return false
	}
	switch used := float64(inUse) / float64(limit); {
	case used >= High:
		g.pressure.Store(true)
	case used < Low:
		g.pressure.Store(false)
	}
	return g.pressure.Load()
}

// Run samples every interval until stop is closed.
func (g *Guard) Run(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		g.Sample()
		select {
		case <-t.C:
		case <-stop:
			return
		}
	}
}

// minLimit: a smaller limit is not the container's.
const minLimit = 64 << 20

// runtimeSamples are the runtime/metrics RuntimeReader reads.
var runtimeSamples = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/gc/gomemlimit:bytes",
}

// RuntimeReader reads what the process would hold right after a
// collection (the live heap plus the runtime's memory outside the heap's
// objects and free pages) and the Go memory limit.
func RuntimeReader() (inUse, limit uint64) {
	s := make([]metrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	live, total, released, free, objects, unused, l := v(0), v(1), v(2), v(3), v(4), v(5), v(6)
	inUse = live
	if other := total - released - free - objects - unused; other < total {
		inUse += other
	}
	if l < minLimit {
		return inUse, 0
	}
	return inUse, l
}
