package clock

import (
	"runtime"
	"testing"
	"time"
)

// TestFromTimex: synchronised only when the kernel says so both ways (no
// TIME_ERROR, STA_UNSYNC clear); maxerror is in microseconds.
func TestFromTimex(t *testing.T) {
	for _, tc := range []struct {
		ret    int
		status int32
		want   bool
	}{
		{0, 0x2001, true},           // TIME_OK, STA_PLL|STA_NANO: chrony's usual state
		{1, 0x0001, true},           // TIME_INS (leap second pending) is synchronised
		{5, 0x0040, false},          // no daemon: TIME_ERROR and STA_UNSYNC
		{5, 0x0001, false},          // TIME_ERROR alone
		{0, 0x0041, false},          // STA_UNSYNC alone
		{0, 0x0040 | 0x2000, false}, // STA_UNSYNC among other flags
	} {
		if got := fromTimex(tc.ret, tc.status, 0).Synchronised; got != tc.want {
			t.Errorf("ret %d status %#x: synchronised %v, want %v", tc.ret, tc.status, got, tc.want)
		}
	}
	if got := fromTimex(0, 0, 1_500_000).MaxError; got != 1500*time.Millisecond {
		t.Errorf("maxerror 1 500 000 µs: %v", got)
	}
}

// TestRead: the kernel answers on Linux, with an error bound that a
// synchronised clock keeps under the kernel's 16 s cap.
func TestRead(t *testing.T) {
	s, err := Read()
	if runtime.GOOS != "linux" {
		if err != ErrUnsupported {
			t.Fatalf("%s: %v", runtime.GOOS, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxError < 0 || s.MaxError > 16*time.Second {
		t.Fatalf("max error %v", s.MaxError)
	}
	t.Logf("this host's clock: synchronised %v, max error %v", s.Synchronised, s.MaxError)
}
