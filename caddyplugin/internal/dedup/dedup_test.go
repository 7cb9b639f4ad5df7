package dedup

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"
)

type value struct{ s string }

func TestSameKeySharesOneValue(t *testing.T) {
	var tab Table[value]
	var made atomic.Int32
	mk := func() (*value, error) {
		made.Add(1)
		time.Sleep(20 * time.Millisecond) // the others arrive while it is made
		return &value{"x"}, nil
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	got := make([]*value, 8)
	for i := range got {
		wg.Go(func() {
			<-start
			v, err := tab.Get("k", mk)
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	close(start) // every caller at once, none of them finding a value
	wg.Wait()
	for _, v := range got[1:] {
		if v != got[0] {
			t.Fatal("concurrent callers of one key got different values")
		}
	}
	if n := made.Load(); n != 1 {
		t.Fatalf("made %d values for one key", n)
	}
	b, err := tab.Get("other", mk)
	if err != nil {
		t.Fatal(err)
	}
	if b == got[0] {
		t.Fatal("two keys share a value")
	}
	if n := made.Load(); n != 2 {
		t.Fatalf("made %d values for 2 keys", n)
	}
	runtime.KeepAlive(got)
	runtime.KeepAlive(b)
}

func TestErrorKeepsNothing(t *testing.T) {
	var tab Table[value]
	boom := errors.New("boom")
	if _, err := tab.Get("k", func() (*value, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if tab.Len() != 0 {
		t.Fatal("a failed make left an entry")
	}
	if _, err := tab.Get("k", func() (*value, error) { return nil, nil }); err == nil {
		t.Fatal("a make with neither value nor error: no error")
	}
	v, err := tab.Get("k", func() (*value, error) { return &value{"ok"}, nil })
	if err != nil || v.s != "ok" {
		t.Fatalf("after an error: %v, %v", v, err)
	}
}

// A value nobody holds any more is collected, its entry forgotten, and the
// next Get makes a new one: the table keeps nothing alive.
func TestUnheldValueIsCollected(t *testing.T) {
	var tab Table[value]
	var made atomic.Int32
	mk := func() (*value, error) { made.Add(1); return &value{"big"}, nil }
	if _, err := tab.Get("k", mk); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tab.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an unheld value's entry is still there after 10 s of GC")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := tab.Get("k", mk); err != nil {
		t.Fatal(err)
	}
	if n := made.Load(); n != 2 {
		t.Fatalf("made %d values, want 2 (the first one collected)", n)
	}
}

// The cleanup of a collected value leaves a newer value of the same key in
// place: it runs some time after the collection, maybe after a Get made the
// key's next value.
func TestCleanupSparesNewerValue(t *testing.T) {
	var tab Table[value]
	stale := weak.Make(&value{"old"})
	held, err := tab.Get("k", func() (*value, error) { return &value{"new"}, nil })
	if err != nil {
		t.Fatal(err)
	}
	tab.forget(entry[value]{"k", stale})
	v, err := tab.Get("k", func() (*value, error) { return &value{"newer"}, nil })
	if err != nil {
		t.Fatal(err)
	}
	if v != held {
		t.Fatalf("got %q: an older value's cleanup removed the value still held", v.s)
	}
	tab.forget(entry[value]{"k", weak.Make(held)})
	if tab.Len() != 0 {
		t.Fatal("the cleanup of the value in the table left its entry")
	}
}
