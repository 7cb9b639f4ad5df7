// Package clock reads whether the system clock is synchronised, as the
// kernel sees it (SECURITY.md G11). FranceConnect tokens live 60 s and the
// gateway checks their iat and exp against this clock: a clock that
// drifts refuses valid tokens or accepts expired ones. NTP daemons
// (chrony, systemd-timesyncd, ntpd) tell the kernel their state through
// adjtimex(2); this package reads it back, without changing anything (no
// privilege needed).
package clock

import (
	"errors"
	"time"
)

// State is the kernel's view of the clock.
type State struct {
	// Synchronised: an NTP daemon keeps the clock synchronised (the
	// kernel's STA_UNSYNC flag is clear and adjtimex does not answer
	// TIME_ERROR).
	Synchronised bool
	// MaxError bounds the clock's error, as the daemon last set it and
	// the kernel has grown it since (16 s once it stops being updated).
	MaxError time.Duration
}

// ErrUnsupported: this system does not tell the clock's state.
var ErrUnsupported = errors.New("clock: synchronisation state not available on this system")

// Kernel values of adjtimex(2).
const (
	timeError = 5    // TIME_ERROR: the clock is not synchronised
	staUnsync = 0x40 // STA_UNSYNC
)

// fromTimex turns adjtimex's answer (its return value, the status flags
// and maxerror in microseconds) into a State.
func fromTimex(ret int, status int32, maxErrorMicros int64) State {
	return State{
		Synchronised: ret != timeError && status&staUnsync == 0,
		MaxError:     time.Duration(maxErrorMicros) * time.Microsecond,
	}
}
