package logbuffer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

type limitSink struct {
	sink
	max int
}

func (l *limitSink) Write(p []byte) (int, error) {
	if len(p) > l.max {
		return 0, fmt.Errorf("write length %d exceeds maximum file size %d", len(p), l.max)
	}
	return l.sink.Write(p)
}

// TestBacklogWrittenInChunks: a backlog gathered while the writer refused
// lines is written in writes of at most the buffer size, cut at line ends:
// a file writer that refuses a write larger than its roll_size takes it.
func TestBacklogWrittenInChunks(t *testing.T) {
	s := &limitSink{sink: sink{fail: 1}, max: 4096}
	b := New(s, Options{Size: 4096, Interval: time.Hour, MaxPending: 10_000})
	defer b.Close()
	rec := append(bytes.Repeat([]byte("x"), 700), '\n')
	_, _ = b.Write(rec)
	if b.Flush() == nil {
		t.Fatal("the first write was not refused")
	}
	for range 200 { // 140 KB while the writer refused lines
		_, _ = b.Write(rec)
	}
	if err := b.Flush(); err != nil {
		t.Fatalf("the backlog was not taken: %v", err)
	}
	if got := strings.Count(s.all(), "\n"); got != 201 || Refusing() || b.pending != 0 {
		t.Fatalf("%d lines written, refusing %v, pending %d", got, Refusing(), b.pending)
	}
	for _, w := range s.writes {
		if len(w) > 4096 || w[len(w)-1] != '\n' {
			t.Fatalf("a write of %d bytes not cut at a line end", len(w))
		}
	}
}

// zeroSink takes nothing and says nothing the first time, as Caddy's net
// writer does while it waits to dial again.
type zeroSink struct {
	sink
	silent bool
}

func (z *zeroSink) Write(p []byte) (int, error) {
	if !z.silent {
		z.silent = true
		return 0, nil
	}
	return z.sink.Write(p)
}

// TestShortWriteWithoutError: a write that takes nothing without an error
// is a refusal: the lines are kept, not counted written.
func TestShortWriteWithoutError(t *testing.T) {
	s := new(zeroSink)
	b := New(s, Options{Size: 1 << 20, Interval: time.Hour, MaxPending: 2})
	defer b.Close()
	_, _ = b.Write(line(1))
	_, _ = b.Write(line(2))
	if err := b.Flush(); !errors.Is(err, io.ErrShortWrite) || !Refusing() {
		t.Fatalf("a silent short write: %v, refusing %v", err, Refusing())
	}
	if err := b.Flush(); err != nil || s.all() != string(line(1))+string(line(2)) || Refusing() {
		t.Fatalf("after: %v, %q, refusing %v", err, s.all(), Refusing())
	}
}

// TestMultiLineEntriesCounted: lines are counted by their ends, whatever
// each Write holds, so a partial write of a multi-line entry leaves the
// count right and the buffer drains to zero.
func TestMultiLineEntriesCounted(t *testing.T) {
	s := new(partialSink)
	b := New(s, Options{Size: 1 << 20, Interval: time.Hour, MaxPending: 5})
	defer b.Close()
	_, _ = b.Write([]byte("a\nb\nc\nd\ne\nf\n"))
	_, _ = b.Write([]byte("g\n"))
	if !Refusing() {
		t.Fatal("7 lines of 5 and not refusing")
	}
	_ = b.Flush()
	_ = b.Flush()
	if s.all() != "a\nb\nc\nd\ne\nf\ng\n" || b.pending != 0 || Refusing() {
		t.Fatalf("written %q, pending %d, refusing %v", s.all(), b.pending, Refusing())
	}
}

// TestReloadHandsOverRefusedLines: a reload that changes a buffer's
// settings closes the old buffer while its writer still refuses lines:
// they go to the new buffer on the same inner writer, data routes stay
// refused meanwhile, nothing is lost, and they are written once the writer
// takes lines again. The last user closing the inner writer counts what is
// still kept as lost.
func TestReloadHandsOverRefusedLines(t *testing.T) {
	s := &sink{fail: 1 << 30}
	const key = "passerelle_test_handover"
	for range 2 {
		if _, _, err := innerWriters.LoadOrNew(key, func() (caddy.Destructor, error) { return &sharedWriter{WriteCloser: s}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := innerWriters.References(key)
	if v != 2 {
		t.Fatalf("%d users of the inner writer", v)
	}
	shared := func() *sharedWriter {
		w, _, _ := innerWriters.LoadOrNew(key, nil)
		_, _ = innerWriters.Delete(key)
		return w.(*sharedWriter)
	}()
	old := New(&pooled{sharedWriter: shared, key: key}, Options{Size: 1 << 20, Interval: time.Hour, MaxPending: 3})
	nw := New(&pooled{sharedWriter: shared, key: key}, Options{Size: 1 << 20, Interval: time.Hour, MaxPending: 4})
	lost := counter(LostLines)
	for i := range 3 {
		_, _ = old.Write(line(i))
	}
	_ = old.Close()
	if !Refusing() || counter(LostLines) != lost || s.closed {
		t.Fatalf("after the old buffer closed: refusing %v, lost %v, inner closed %v", Refusing(), counter(LostLines)-lost, s.closed)
	}
	_, _ = nw.Write(line(3))
	_ = nw.Flush() // takes the lines over; the writer still refuses them
	if !Refusing() {
		t.Fatal("the new buffer holds 4 of 4 lines and does not refuse")
	}
	s.mu.Lock()
	s.fail = 0
	s.mu.Unlock()
	if err := nw.Flush(); err != nil || s.all() != string(line(0))+string(line(1))+string(line(2))+string(line(3)) || Refusing() {
		t.Fatalf("after the writer recovered: %v, %q, refusing %v", err, s.all(), Refusing())
	}

	// Shutdown while lines are still refused: counted lost once.
	s.mu.Lock()
	s.fail = 1 << 30
	s.mu.Unlock()
	_, _ = nw.Write(line(4))
	_ = nw.Close()
	if got := counter(LostLines) - lost; got != 1 || Refusing() || !s.closed {
		t.Fatalf("at shutdown: %v lost, refusing %v, inner closed %v", got, Refusing(), s.closed)
	}
}

// TestCloseBoundedOnStalledWriter: a reload or a stop does not wait for a
// write that never returns (a collector that stopped reading: Caddy's net
// writer sets no deadline).
func TestCloseBoundedOnStalledWriter(t *testing.T) {
	defer func(w time.Duration) { closeWait = w }(closeWait)
	closeWait = 50 * time.Millisecond
	s := &stallSink{release: make(chan struct{}), entered: make(chan struct{})}
	defer close(s.release)
	b := New(s, Options{Size: 1, Interval: 10 * time.Millisecond, MaxPending: 50})
	_, _ = b.Write(line(1))
	<-s.entered
	done := make(chan error)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if !errors.Is(err, errStalled) {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a stalled write")
	}
}

// TestAbandonedWriteFailingLate: a write Close left behind (stalled) that
// fails afterwards neither brings the refusal back nor keeps its lines:
// they are counted lost; a late tick does not take over lines handed to
// the next buffer.
func TestAbandonedWriteFailingLate(t *testing.T) {
	defer func(w time.Duration) { closeWait = w }(closeWait)
	closeWait = 50 * time.Millisecond
	s := &failAfterStall{release: make(chan struct{}), entered: make(chan struct{})}
	const key = "passerelle_test_abandoned"
	shared, _, _ := innerWriters.LoadOrNew(key, func() (caddy.Destructor, error) { return &sharedWriter{WriteCloser: s}, nil })
	_, _, _ = innerWriters.LoadOrNew(key, nil) // the next buffer's use
	b := New(&pooled{sharedWriter: shared.(*sharedWriter), key: key}, Options{Size: 1 << 20, Interval: 10 * time.Millisecond, MaxPending: 3})
	lost := counter(LostLines)
	for i := range 3 {
		_, _ = b.Write(line(i))
	}
	<-s.entered
	if err := b.Close(); !errors.Is(err, errStalled) {
		t.Fatalf("Close: %v", err)
	}
	shared.(*sharedWriter).handOver(line(9), 1, false) // another buffer's lines, for the next one
	close(s.release)                                   // the stalled write fails now
	waitFor(t, func() bool { return counter(LostLines)-lost == 3 })
	time.Sleep(50 * time.Millisecond) // ticks of the closed buffer, if any
	_ = b.Flush()                     // a late Flush or Sync
	if Refusing() {
		t.Fatal("the abandoned write brought the refusal back")
	}
	if _, count, taken := shared.(*sharedWriter).takeOver(); taken == nil || count != 1 {
		t.Fatal("the closed buffer took over lines handed to the next one")
	}
	_, _ = innerWriters.Delete(key)
}

// failAfterStall blocks its first write until release, then refuses it.
type failAfterStall struct {
	sink
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (f *failAfterStall) Write(p []byte) (int, error) {
	first := false
	f.once.Do(func() { first = true; close(f.entered) })
	if first {
		<-f.release
		return 0, errors.New("connection reset")
	}
	return f.sink.Write(p)
}

// panicCloser panics when closed, as Caddy's net writer does when it never
// connected.
type panicCloser struct{ sink }

func (*panicCloser) Close() error { panic("nil connection") }

// TestDestructReleasesAndContains: the last user closing an inner writer
// releases the refusal of lines still kept (counted lost), and a panicking
// inner Close is an error, not a crash.
func TestDestructReleasesAndContains(t *testing.T) {
	w := &sharedWriter{WriteCloser: new(panicCloser)}
	lost := counter(LostLines)
	w.handOver(line(1), 1, true)
	if !Refusing() {
		t.Fatal("full lines handed over do not refuse")
	}
	if err := w.Destruct(); err == nil {
		t.Fatal("a panicking Close reported no error")
	}
	if Refusing() || counter(LostLines)-lost != 1 {
		t.Fatalf("after Destruct: refusing %v, %v lost", Refusing(), counter(LostLines)-lost)
	}
}
