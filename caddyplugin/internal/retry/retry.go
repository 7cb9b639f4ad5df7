// Package retry bounds the retries of provider calls (SECURITY.md E09): a
// call is retried at most once, only when it was never sent (the connection
// could not be made), after a random delay (jitter) that fits in the call's
// deadline, and only while the provider's retry budget allows it: retries
// stay under a share of its calls over the last minute (10 %), with a small
// floor so that a quiet provider can still retry now and then. A provider
// that refuses connections therefore sees at most 10 % more attempts, never
// a retry storm.
package retry

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Defaults of a provider's budget and delay.
const (
	DefaultRatio    = 0.1         // retries per call
	DefaultFloor    = 3           // retries a minute whatever the traffic
	DefaultWindow   = time.Minute // the sliding window counted
	DefaultMaxDelay = 100 * time.Millisecond
)

// Budget caps the retries of one provider to Ratio of its calls over a
// sliding window, and at least Floor retries a window. It is safe for
// concurrent use; its zero value is not: use NewBudget.
type Budget struct {
	ratio  float64
	floor  float64
	window time.Duration

	mu    sync.Mutex
	start time.Time // start of the current window
	// calls and retries of the current and the previous window.
	calls, retries         float64
	prevCalls, prevRetries float64
}

// NewBudget returns a budget of ratio retries per call over window, at
// least floor retries a window.
func NewBudget(ratio float64, floor int, window time.Duration) *Budget {
	return &Budget{ratio: ratio, floor: float64(floor), window: window}
}

// Call counts one call (a first attempt; retries are counted by Take).
func (b *Budget) Call(now time.Time) {
	b.mu.Lock()
	b.roll(now)
	b.calls++
	b.mu.Unlock()
}

// Take reports whether one more retry fits in the budget, and counts it
// when it does.
func (b *Budget) Take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	// The previous window counts in proportion to what of it is still
	// within the last window's length.
	rest := 1 - float64(now.Sub(b.start))/float64(b.window)
	calls := b.calls + b.prevCalls*rest
	retries := b.retries + b.prevRetries*rest
	if retries+1 > max(b.floor, b.ratio*calls) {
		return false
	}
	b.retries++
	return true
}

// roll moves the windows on to the one holding now.
func (b *Budget) roll(now time.Time) {
	switch elapsed := now.Sub(b.start); {
	case elapsed < b.window:
	case elapsed < 2*b.window:
		b.prevCalls, b.prevRetries = b.calls, b.retries
		b.calls, b.retries = 0, 0
		b.start = b.start.Add(b.window)
	default: // idle for a whole window or more (or the first call)
		b.prevCalls, b.prevRetries, b.calls, b.retries = 0, 0, 0, 0
		b.start = now
	}
}

// Jitter returns a random delay in [0, maxDelay): retries of calls that
// failed together do not reach the provider together.
func Jitter(maxDelay time.Duration) time.Duration {
	if maxDelay <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(maxDelay)))
}

// Wait sleeps d before a retry. It reports false, at once, when d would
// not fit before ctx's deadline, and as soon as ctx ends: the call is then
// not retried.
func Wait(ctx context.Context, d time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
