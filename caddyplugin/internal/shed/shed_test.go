package shed

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestSetMax: a new cap applies to the next call, counting the calls
// already in flight, admitted under the old one; 0 lifts the cap.
func TestSetMax(t *testing.T) {
	g := New(Settings{MaxInFlight: 2})
	var in []Ticket
	enter := func() error {
		tk, err := g.Enter()
		if err == nil {
			in = append(in, tk)
		}
		return err
	}
	for i, want := range []error{nil, nil, ErrBusy} {
		if err := enter(); !errors.Is(err, want) {
			t.Fatalf("call %d under cap 2: %v, want %v", i+1, err, want)
		}
	}
	g.SetMax(3)
	if err := enter(); err != nil || g.Max() != 3 {
		t.Fatalf("raised to 3: %v", err)
	}
	g.SetMax(1)
	in[0].Done(Success)
	if !errors.Is(enter(), ErrBusy) {
		t.Fatal("lowered to 1 with 2 calls in flight: admitted")
	}
	in[1].Done(Success)
	in[2].Done(Success)
	if err := enter(); err != nil {
		t.Fatalf("lowered to 1, none in flight: %v", err)
	}
	g.SetMax(0)
	for range 100 {
		if err := enter(); err != nil {
			t.Fatalf("no cap: %v", err)
		}
	}
	// From no cap to a cap: the calls admitted without one count.
	g.SetMax(101)
	if !errors.Is(enter(), ErrBusy) {
		t.Fatal("cap 101 with 101 calls in flight: admitted")
	}
	for _, tk := range in[len(in)-2:] {
		tk.Done(Success)
	}
	if err := enter(); err != nil {
		t.Fatalf("cap 101 with 99 calls in flight: %v", err)
	}
}

// TestCapRefusesAtOnce: past MaxInFlight, Enter refuses at once (no
// queue); an ended call frees its place.
func TestCapRefusesAtOnce(t *testing.T) {
	g := New(Settings{MaxInFlight: 2})
	a, err1 := g.Enter()
	b, err2 := g.Enter()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := g.Enter(); !errors.Is(err, ErrBusy) {
		t.Fatalf("third call: %v", err)
	}
	a.Done(Success)
	c, err := g.Enter()
	if err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	b.Done(Failure)
	c.Done(Abandoned)
	var wg sync.WaitGroup
	var admitted, refused sync.Map
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tk, err := g.Enter(); err == nil {
				admitted.Store(i, tk)
			} else {
				refused.Store(i, err)
			}
		}()
	}
	wg.Wait()
	n := 0
	admitted.Range(func(_, v any) bool { n++; v.(Ticket).Done(Success); return true })
	if n != 2 {
		t.Fatalf("%d calls in flight at once, cap 2", n)
	}
}

// TestCircuitOpensProbesAndCloses (I06): five consecutive failures open
// the circuit; every call is refused while it is open; after OpenFor one
// probe goes through while others are refused; its success closes the
// circuit, its failure opens it again. Abandoned calls and successes in
// between do not count as failures.
func TestCircuitOpensProbesAndCloses(t *testing.T) {
	var mu sync.Mutex
	var changes []bool
	g := New(Settings{Name: "CNAV", Failures: 5, OpenFor: 200 * time.Millisecond, OnStateChange: func(name string, open bool) {
		mu.Lock()
		defer mu.Unlock()
		if name != "CNAV" {
			t.Errorf("name %q", name)
		}
		changes = append(changes, open)
	}})
	call := func(o Outcome) error {
		tk, err := g.Enter()
		if err == nil {
			tk.Done(o)
		}
		return err
	}
	for range 4 {
		_ = call(Failure)
	}
	_ = call(Success) // resets the consecutive count
	for range 4 {
		_ = call(Failure)
	}
	_ = call(Abandoned) // not counted
	if g.Open() {
		t.Fatal("open before five consecutive failures")
	}
	_ = call(Failure)
	if !g.Open() {
		t.Fatal("closed after five consecutive failures")
	}
	for range 3 {
		if err := call(Success); !errors.Is(err, ErrOpen) {
			t.Fatalf("while open: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	probe, err := g.Enter()
	if err != nil {
		t.Fatalf("the probe: %v", err)
	}
	if _, err := g.Enter(); !errors.Is(err, ErrOpen) {
		t.Fatalf("a second call beside the probe: %v", err)
	}
	probe.Done(Failure)
	if !g.Open() {
		t.Fatal("a failed probe did not open the circuit again")
	}
	time.Sleep(300 * time.Millisecond)
	if err := call(Success); err != nil {
		t.Fatalf("second probe: %v", err)
	}
	if g.Open() || call(Success) != nil {
		t.Fatal("a successful probe did not close the circuit")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 3 || !changes[0] || !changes[1] || changes[2] {
		t.Fatalf("state changes %v, want open, open, closed", changes)
	}
}

// TestOpenCircuitFreesItsPlace: a call refused by the open circuit does not
// keep a place under the cap.
func TestOpenCircuitFreesItsPlace(t *testing.T) {
	g := New(Settings{MaxInFlight: 1, Failures: 1, OpenFor: time.Hour})
	tk, _ := g.Enter()
	tk.Done(Failure)
	for range 3 {
		if _, err := g.Enter(); !errors.Is(err, ErrOpen) {
			t.Fatalf("%v, want ErrOpen (not ErrBusy: no place held)", err)
		}
	}
}

// TestNilGuardAdmits: a dependency without a guard is never refused.
func TestNilGuardAdmits(t *testing.T) {
	var g *Guard
	tk, err := g.Enter()
	if err != nil || g.Open() {
		t.Fatal(err)
	}
	tk.Done(Failure)
}

// TestFailuresForgotten: failures further apart than Forget do not add up
// to open the circuit.
func TestFailuresForgotten(t *testing.T) {
	g := New(Settings{Failures: 2, OpenFor: time.Hour, Forget: 100 * time.Millisecond})
	fail := func() {
		tk, err := g.Enter()
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(Failure)
	}
	fail()
	time.Sleep(250 * time.Millisecond)
	fail()
	if g.Open() {
		t.Fatal("two failures a Forget apart opened the circuit")
	}
	fail()
	if !g.Open() {
		t.Fatal("two consecutive failures within Forget left it closed")
	}
}
