package clock

import "golang.org/x/sys/unix"

// Read returns the clock's state (adjtimex(2) with no mode: a read).
func Read() (State, error) {
	var tx unix.Timex
	ret, err := unix.Adjtimex(&tx)
	if err != nil {
		return State{}, err
	}
	return fromTimex(ret, tx.Status, int64(tx.Maxerror)), nil
}
