package caddyplugin

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/clock"
)

// TestClockState: the clock's metrics as the kernel tells them, and a
// state that cannot be read exported as not synchronised (SECURITY.md
// G11: the alert then fires instead of watching nothing).
func TestClockState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state clock.State
		err   error
		want  string
	}{
		{"synchronised", clock.State{Synchronised: true, MaxError: 250 * time.Millisecond}, nil,
			"caddy_passerelle_clock_max_error_seconds 0.25\ncaddy_passerelle_clock_synchronised 1\n"},
		{"not synchronised", clock.State{MaxError: 16 * time.Second}, nil,
			"caddy_passerelle_clock_max_error_seconds 16\ncaddy_passerelle_clock_synchronised 0\n"},
		{"cannot be read", clock.State{}, errors.New("operation not permitted"),
			"caddy_passerelle_clock_synchronised 0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(clockState{func() (clock.State, error) { return tc.state, tc.err }})
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			for _, f := range families { // sorted by name
				for _, m := range f.GetMetric() {
					got.WriteString(f.GetName() + " " + strconv.FormatFloat(m.GetGauge().GetValue(), 'g', -1, 64) + "\n")
				}
			}
			if got.String() != tc.want {
				t.Fatalf("exported\n%s\nwant\n%s", got.String(), tc.want)
			}
		})
	}
}
