// Package memguard tells when the process's memory nears its limit, so
// that the gateway refuses new requests (503) before the Go runtime spends
// all its time collecting or the kernel kills it (SECURITY.md F09, I16).
//
// The limit is the Go memory limit (GOMEMLIMIT; Caddy sets it to 90 % of
// the cgroup's memory limit when there is one). A sampler reads the memory
// the Go runtime holds from the operating system (runtime/metrics
// /memory/classes/total:bytes less what it released) a few times a
// second; above the high watermark (90 % of the limit) the guard reports
// pressure, until the memory falls under the low one (80 %). Without a
// limit, the guard never reports pressure. The request path only reads an
// atomic flag.
package memguard

import (
	"math"
	"runtime/debug"
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

// runtimeSamples are the runtime/metrics RuntimeReader reads.
var runtimeSamples = []string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"}

// RuntimeReader reads the memory the Go runtime holds from the operating
// system, less what it released, and the Go memory limit.
func RuntimeReader() (inUse, limit uint64) {
	s := []metrics.Sample{{Name: runtimeSamples[0]}, {Name: runtimeSamples[1]}}
	metrics.Read(s)
	total, released := s[0].Value.Uint64(), s[1].Value.Uint64()
	l := debug.SetMemoryLimit(-1) // reads the limit without changing it
	if l <= 0 {
		return total - released, 0
	}
	return total - released, uint64(l)
}
