//go:build !linux

package clock

// Read returns ErrUnsupported: only Linux's adjtimex is read.
func Read() (State, error) { return State{}, ErrUnsupported }
