// Package shed refuses calls to a dependency that is saturated or failing,
// at once, instead of letting them queue (SECURITY.md F07, I06): a cap on
// the calls in flight (a counter: a call never waits for a place), and a
// circuit breaker (github.com/sony/gobreaker)
// that opens after consecutive failures, refuses every call while open,
// then lets one probe through.
package shed

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// The refusals of Enter.
var (
	// ErrBusy: the calls in flight are at the cap.
	ErrBusy = errors.New("shed: too many calls in flight")
	// ErrOpen: the circuit is open (or half-open with its probe out).
	ErrOpen = errors.New("shed: circuit open")
)

// Settings of a Guard.
type Settings struct {
	// Name names the dependency in OnStateChange.
	Name string
	// MaxInFlight caps the calls in flight (0: no cap).
	MaxInFlight int64
	// Failures is the number of consecutive failures that opens the
	// circuit (0: no circuit breaker).
	Failures uint32
	// OpenFor is how long the circuit stays open before one probe.
	OpenFor time.Duration
	// Forget clears the failures counted while the circuit is closed
	// every Forget (0: never; failures spread over days then add up).
	Forget time.Duration
	// OnStateChange, when set, is told when the circuit opens (open true)
	// and when it closes again.
	OnStateChange func(name string, open bool)
}

// Guard admits calls to one dependency. Its methods are safe for
// concurrent use.
type Guard struct {
	max      atomic.Int64 // 0: no cap; SetMax changes it
	inFlight atomic.Int64 // admitted calls not yet Done
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// New returns a Guard with the settings.
func New(s Settings) *Guard {
	g := new(Guard)
	g.SetMax(s.MaxInFlight)
	if s.Failures > 0 {
		st := gobreaker.Settings{
			Name:        s.Name,
			MaxRequests: 1, // one probe when half-open
			Timeout:     s.OpenFor,
			Interval:    s.Forget,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.Failures },
			// A call the caller abandoned says nothing of the dependency.
			IsExcluded: func(err error) bool { return errors.Is(err, errAbandoned) },
		}
		if f := s.OnStateChange; f != nil {
			st.OnStateChange = func(name string, from, to gobreaker.State) {
				switch {
				case to == gobreaker.StateOpen && from != gobreaker.StateOpen:
					f(name, true)
				case to == gobreaker.StateClosed:
					f(name, false)
				}
			}
		}
		g.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
	}
	return g
}

// Outcomes of a call, for Ticket.Done.
type Outcome int

const (
	Success   Outcome = iota // the dependency answered
	Failure                  // it failed: counts towards opening the circuit
	Abandoned                // the caller gave up: not counted
)

var (
	errFailure   = errors.New("shed: failure")
	errAbandoned = errors.New("shed: abandoned")
)

// Ticket is one admitted call; Done must be called once when it ends.
type Ticket struct {
	g    *Guard
	done func(error)
}

// Enter admits a call, or refuses it with ErrBusy or ErrOpen. A nil Guard
// admits every call.
func (g *Guard) Enter() (Ticket, error) {
	if g == nil {
		return Ticket{}, nil
	}
	if n, limit := g.inFlight.Add(1), g.max.Load(); limit > 0 && n > limit {
		g.inFlight.Add(-1)
		return Ticket{}, ErrBusy
	}
	t := Ticket{g: g}
	if g.cb != nil {
		done, err := g.cb.Allow()
		if err != nil {
			g.release()
			return Ticket{}, ErrOpen
		}
		t.done = done
	}
	return t, nil
}

// Done ends the call with its outcome.
func (t Ticket) Done(o Outcome) {
	if t.g == nil {
		return
	}
	if t.done != nil {
		switch o {
		case Failure:
			t.done(errFailure)
		case Abandoned:
			t.done(errAbandoned)
		default:
			t.done(nil)
		}
	}
	t.g.release()
}

func (g *Guard) release() { g.inFlight.Add(-1) }

// SetMax changes the cap on calls in flight (0 or less: no cap). Calls
// already admitted are not refused; past a lowered cap, new calls are
// until enough of them ended.
func (g *Guard) SetMax(n int64) { g.max.Store(max(n, 0)) }

// InFlight returns the calls admitted and not yet done.
func (g *Guard) InFlight() int64 { return g.inFlight.Load() }

// Max returns the cap on calls in flight (0: no cap).
func (g *Guard) Max() int64 { return g.max.Load() }

// Open reports whether the circuit is open now.
func (g *Guard) Open() bool {
	return g != nil && g.cb != nil && g.cb.State() == gobreaker.StateOpen
}
