package fcverify

import (
	"errors"
	"sync"
	"testing"
)

// TestFactsDerived: a value is computed once per key and shared; another
// key replaces it; an error is returned and never memoised.
func TestFactsDerived(t *testing.T) {
	f := &Facts{Active: true, Sub: "s"}
	calls := 0
	compute := func(v string) func() (string, error) {
		return func() (string, error) { calls++; return v, nil }
	}
	keyA, keyB := new(int), new(int)
	for range 3 {
		if v, err := f.Derived(keyA, compute("a")); v != "a" || err != nil {
			t.Fatalf("Derived(A) = %q, %v", v, err)
		}
	}
	if calls != 1 {
		t.Fatalf("computed %d times for one key, want 1", calls)
	}
	if v, _ := f.Derived(keyB, compute("b")); v != "b" {
		t.Fatalf("Derived(B) = %q, want b (not A's value)", v)
	}
	if v, _ := f.Derived(keyA, compute("a2")); v != "a2" || calls != 3 {
		t.Fatalf("Derived(A) after B = %q after %d computations, want a2 after 3", v, calls)
	}
	boom := errors.New("boom")
	failing := func() (string, error) { calls++; return "partial", boom }
	keyC := new(int)
	if v, err := f.Derived(keyC, failing); v != "" || !errors.Is(err, boom) {
		t.Fatalf("failing Derived = %q, %v", v, err)
	}
	if v, err := f.Derived(keyC, compute("c")); v != "c" || err != nil {
		t.Fatalf("Derived after an error = %q, %v: the error was memoised", v, err)
	}
}

// TestFactsDerivedConcurrent: requests sharing cached facts read and
// replace the memo at once (run with -race); each gets its own key's value.
func TestFactsDerivedConcurrent(t *testing.T) {
	f := &Facts{Active: true}
	keys := []*int{new(int), new(int), new(int)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := (g + i) % len(keys)
				want := string(rune('a' + k))
				if v, _ := f.Derived(keys[k], func() (string, error) { return want, nil }); v != want {
					t.Errorf("key %d: got %q, want %q", k, v, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
