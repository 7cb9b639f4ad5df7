package retry

import (
	"context"
	"testing"
	"time"
)

// TestE09_BudgetTenPercent: over a busy minute, retries stay at 10 % of
// the calls; the floor lets a quiet provider retry a few times only.
func TestE09_BudgetTenPercent(t *testing.T) {
	b := NewBudget(DefaultRatio, DefaultFloor, DefaultWindow)
	now := time.Unix(1_800_000_000, 0)
	granted := 0
	for i := range 1000 { // 1000 calls in 50 s, each wanting a retry
		at := now.Add(time.Duration(i) * 50 * time.Millisecond)
		b.Call(at)
		if b.Take(at) {
			granted++
		}
	}
	if granted < 95 || granted > 100 {
		t.Fatalf("%d retries for 1000 calls in a minute, want 10 %%", granted)
	}

	quiet := NewBudget(DefaultRatio, DefaultFloor, DefaultWindow)
	granted = 0
	for i := range 10 {
		at := now.Add(time.Duration(i) * time.Second)
		quiet.Call(at)
		if quiet.Take(at) {
			granted++
		}
	}
	if granted != DefaultFloor {
		t.Fatalf("%d retries for 10 calls, want the floor, %d", granted, DefaultFloor)
	}
}

// TestE09_BudgetSlides: spent retries count in the next window in
// proportion to its age, and are forgotten after an idle window.
func TestE09_BudgetSlides(t *testing.T) {
	b := NewBudget(0.1, 0, time.Minute)
	now := time.Unix(1_800_000_000, 0)
	for range 100 {
		b.Call(now)
	}
	for range 10 {
		if !b.Take(now) {
			t.Fatal("retry refused within 10 % of the calls")
		}
	}
	if b.Take(now) {
		t.Fatal("11th retry for 100 calls granted")
	}
	// 30 s into the next window, half of the previous one still counts:
	// 50 calls and 5 retries; 50 new calls make 100 and 5 more retries fit.
	later := now.Add(90 * time.Second)
	for range 50 {
		b.Call(later)
	}
	granted := 0
	for b.Take(later) {
		granted++
	}
	if granted != 5 {
		t.Fatalf("%d retries granted after half a window, want 5", granted)
	}
	idle := later.Add(3 * time.Minute)
	if b.Take(idle) {
		t.Fatal("a retry granted with no call in the last minute and no floor")
	}
}

// TestE09_WaitInsideDeadline: the jitter stays below its maximum and
// varies; no retry is made when the delay would not fit before the
// deadline, or once the call is gone.
func TestE09_WaitInsideDeadline(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 100 {
		d := Jitter(100 * time.Millisecond)
		if d < 0 || d >= 100*time.Millisecond {
			t.Fatalf("jitter %v outside [0, 100ms)", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Fatalf("%d distinct delays in 100: no jitter", len(seen))
	}
	start := time.Now()
	if !Wait(context.Background(), 20*time.Millisecond) || time.Since(start) < 20*time.Millisecond {
		t.Fatal("Wait without a deadline did not wait its delay")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	if Wait(ctx, 2*time.Second) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("a delay past the deadline was waited (%v)", time.Since(start))
	}
	if !Wait(ctx, time.Millisecond) {
		t.Fatal("a delay within the deadline was refused")
	}
	gone, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if Wait(gone, time.Second) {
		t.Fatal("Wait granted a retry to a cancelled call")
	}
}
