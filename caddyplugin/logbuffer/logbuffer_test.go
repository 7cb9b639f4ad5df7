package logbuffer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/logging" // the file writer
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sink records every Write it receives, as separate calls.
type sink struct {
	mu     sync.Mutex
	writes [][]byte
	fail   int // fail the next n writes
	closed bool
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return 0, errors.New("sink refused")
	}
	s.writes = append(s.writes, bytes.Clone(p))
	return len(p), nil
}

func (s *sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *sink) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes)
}

func (s *sink) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(bytes.Join(s.writes, nil))
}

func line(i int) []byte { return fmt.Appendf(nil, `{"n":%03d}`+"\n", i) }

// TestBatches: lines wait in memory and reach the inner writer in one
// write, in order.
func TestBatches(t *testing.T) {
	s := new(sink)
	b := New(s, Options{Size: 4096, Interval: time.Hour})
	var want strings.Builder
	for i := range 10 {
		want.Write(line(i))
		if n, err := b.Write(line(i)); n != len(line(i)) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if s.calls() != 0 {
		t.Fatalf("%d writes before the buffer was full or flushed", s.calls())
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.calls() != 1 || s.all() != want.String() {
		t.Fatalf("%d writes holding %q, want one holding %q", s.calls(), s.all(), want.String())
	}
	if err := b.Close(); err != nil || !s.closed {
		t.Fatalf("Close: %v, inner closed %v", err, s.closed)
	}
}

// TestWritesWhenFull: reaching the buffer size writes the batch at once,
// whatever the interval.
func TestWritesWhenFull(t *testing.T) {
	s := new(sink)
	b := New(s, Options{Size: 3 * len(line(0)), Interval: time.Hour})
	defer b.Close()
	for i := range 3 {
		_, _ = b.Write(line(i))
	}
	waitFor(t, func() bool { return s.calls() > 0 })
	if s.calls() != 1 || s.all() != string(line(0))+string(line(1))+string(line(2)) {
		t.Fatalf("full buffer: %d writes holding %q", s.calls(), s.all())
	}
	_, _ = b.Write(line(3))
	if s.calls() != 1 {
		t.Fatal("a line was written before the buffer was full again")
	}
}

// TestFlushesOnInterval: a line waits at most about the flush interval.
func TestFlushesOnInterval(t *testing.T) {
	s := new(sink)
	b := New(s, Options{Size: 1 << 20, Interval: 20 * time.Millisecond})
	defer b.Close()
	_, _ = b.Write(line(1))
	deadline := time.Now().Add(5 * time.Second)
	for s.calls() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the line was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s.all() != string(line(1)) {
		t.Fatalf("written: %q", s.all())
	}
}

// TestCloseWritesWhatWaits: a graceful stop loses nothing; a later line is
// refused, not written to a closed writer.
func TestCloseWritesWhatWaits(t *testing.T) {
	s := new(sink)
	b := New(s, Options{Size: 1 << 20, Interval: time.Hour})
	_, _ = b.Write(line(1))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if s.all() != string(line(1)) || !s.closed {
		t.Fatalf("after Close: %q, closed %v", s.all(), s.closed)
	}
	if _, err := b.Write(line(2)); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("a write after Close: %v", err)
	}
	if s.all() != string(line(1)) {
		t.Fatalf("a line reached the closed writer: %q", s.all())
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestCloseRacingWriters: writers racing with Close either see their line
// refused or find it written, once, and each writer's lines keep their
// order; nothing reaches the inner writer after it was closed.
func TestCloseRacingWriters(t *testing.T) {
	for range 50 {
		s := new(closingSink)
		b := New(s, Options{Size: 256, Interval: time.Millisecond})
		var wg sync.WaitGroup
		accepted := make([][]int, 4)
		for w := range 4 {
			wg.Go(func() {
				for i := range 200 {
					if _, err := b.Write(fmt.Appendf(nil, "%d %d\n", w, i)); err == nil {
						accepted[w] = append(accepted[w], i)
					}
				}
			})
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if s.afterClose.Load() {
			t.Fatal("a write reached the inner writer after it was closed")
		}
		got := make([][]int, 4)
		for l := range strings.Lines(s.all()) {
			var w, i int
			if _, err := fmt.Sscanf(l, "%d %d", &w, &i); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			got[w] = append(got[w], i)
		}
		for w := range 4 {
			if !slices.Equal(got[w], accepted[w]) {
				t.Fatalf("writer %d: accepted %v, written %v", w, accepted[w], got[w])
			}
		}
	}
}

// closingSink flags a write after Close.
type closingSink struct {
	sink
	afterClose atomic.Bool
}

func (c *closingSink) Write(p []byte) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.afterClose.Store(true)
	}
	return c.sink.Write(p)
}

// TestInnerWriterShared: two buffered writers on one file (a reload that
// changes flush_interval) share one open inner writer, closed with the last
// of them.
func TestInnerWriterShared(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	raw := json.RawMessage(`{"output":"passerelle_test_counting"}`)
	opened.Store(0)
	closedCount.Store(0)
	a := &Writer{FlushInterval: caddy.Duration(time.Hour), WriterRaw: raw}
	b := &Writer{FlushInterval: caddy.Duration(time.Minute), WriterRaw: raw}
	for _, w := range []*Writer{a, b} {
		if err := w.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.WriterKey() == b.WriterKey() {
		t.Fatal("two flush intervals share a buffered writer key")
	}
	wa, err := a.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	wb, err := b.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	if opened.Load() != 1 {
		t.Fatalf("the inner writer was opened %d times, want once", opened.Load())
	}
	_ = wa.Close()
	if closedCount.Load() != 0 {
		t.Fatal("the inner writer was closed while still in use")
	}
	_ = wb.Close()
	if closedCount.Load() != 1 {
		t.Fatalf("inner writer closed %d times after its last user, want once", closedCount.Load())
	}
}

// TestRefusedBatchIsKept (SECURITY.md I11): a batch the inner writer
// refuses is kept and written first at the next flush, before the lines
// that came meanwhile; the refusal is counted, nothing is lost.
func TestRefusedBatchIsKept(t *testing.T) {
	s := &sink{fail: 1}
	b := New(s, Options{Size: 1 << 20, Interval: time.Hour})
	defer b.Close()
	failures, lost := counter(WriteFailures), counter(LostLines)
	_, _ = b.Write(line(1))
	if err := b.Flush(); err == nil {
		t.Fatal("the refused batch was not reported")
	}
	_, _ = b.Write(line(2))
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.calls() != 1 || s.all() != string(line(1))+string(line(2)) {
		t.Fatalf("%d writes holding %q, want lines 1 and 2 in one", s.calls(), s.all())
	}
	if got := counter(WriteFailures) - failures; got != 1 {
		t.Fatalf("%v refusals counted, want 1", got)
	}
	if got := counter(LostLines) - lost; got != 0 {
		t.Fatalf("%v lines counted lost", got)
	}
}

// partialSink takes the first half of the first write, then refuses it.
type partialSink struct {
	sink
	done bool
}

func (p *partialSink) Write(b []byte) (int, error) {
	if !p.done {
		p.done = true
		half := len(b) / 2
		_, _ = p.sink.Write(b[:half])
		return half, io.ErrShortWrite
	}
	return p.sink.Write(b)
}

// TestPartialWrite: after a partial write, the rest of the batch is
// written, and only the rest.
func TestPartialWrite(t *testing.T) {
	s := new(partialSink)
	b := New(s, Options{Size: 1 << 20, Interval: time.Hour})
	defer b.Close()
	var want strings.Builder
	for i := range 7 {
		want.Write(line(i))
		_, _ = b.Write(line(i))
	}
	if err := b.Flush(); err == nil {
		t.Fatal("the partial write was not reported")
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.all() != want.String() {
		t.Fatalf("written %q, want %q", s.all(), want.String())
	}
}

// TestRefusesWhenFull (SECURITY.md G09, I11): while the inner writer refuses
// lines, the buffer keeps them; with MaxPending lines waiting it refuses
// (Refusing: data routes answer 503), keeps up to twice as many (the
// requests already past the check), drops and counts the next, and stops
// refusing once the writer took them, in order. While the writer refuses,
// only the periodic flush tries it again, not every writer.
func TestRefusesWhenFull(t *testing.T) {
	s := &sink{fail: 1 << 30}
	b := New(s, Options{Size: 1, Interval: time.Hour, MaxPending: 5})
	defer b.Close()
	lost := counter(LostLines)
	_, _ = b.Write(line(0)) // a full batch: written at once, refused
	waitFor(t, func() bool { return b.failing.Load() })
	for i := 1; i < 4; i++ {
		_, _ = b.Write(line(i))
	}
	if Refusing() {
		t.Fatal("refusing with 4 of 5 lines waiting")
	}
	_, _ = b.Write(line(4))
	if !Refusing() {
		t.Fatal("not refusing with 5 of 5 lines waiting")
	}
	for i := 5; i < 11; i++ {
		if n, err := b.Write(line(i)); err != nil || n != len(line(i)) {
			t.Fatalf("Write beyond the bound: %d, %v (zap would print an error per line)", n, err)
		}
	}
	if got := counter(LostLines) - lost; got != 1 {
		t.Fatalf("%v lines lost, want 1 (the 11th, beyond twice max_pending)", got)
	}
	s.mu.Lock()
	tries := 1<<30 - s.fail
	s.fail = 0
	s.mu.Unlock()
	if tries != 1 {
		t.Fatalf("the refusing writer was tried %d times, want once", tries)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range 10 {
		want.Write(line(i))
	}
	if s.all() != want.String() {
		t.Fatalf("written %q, want %q", s.all(), want.String())
	}
	if Refusing() {
		t.Fatal("still refusing once the writer took the lines")
	}
}

// TestDropWhenFull: with on_full drop, a full buffer drops new lines and
// never refuses data routes.
func TestDropWhenFull(t *testing.T) {
	s := &sink{fail: 1 << 30}
	b := New(s, Options{Size: 1 << 20, Interval: time.Hour, MaxPending: 3, Drop: true})
	defer b.Close()
	lost := counter(LostLines)
	for i := range 5 {
		_, _ = b.Write(line(i))
	}
	if Refusing() {
		t.Fatal("a drop buffer refuses data routes")
	}
	if got := counter(LostLines) - lost; got != 2 {
		t.Fatalf("%v lines lost, want 2", got)
	}
}

// stallSink blocks every write until release is closed.
type stallSink struct {
	sink
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (s *stallSink) Write(p []byte) (int, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.sink.Write(p)
}

// TestStalledWriterBlocksNoWriter: a sink that stops answering holds no
// writer (a request never waits for the audit trail); the buffer fills and
// refuses, then drains once the sink answers again.
func TestStalledWriterBlocksNoWriter(t *testing.T) {
	s := &stallSink{release: make(chan struct{}), entered: make(chan struct{})}
	b := New(s, Options{Size: 1, Interval: 10 * time.Millisecond, MaxPending: 50})
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 60 {
			_, _ = b.Write(line(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a writer waited for the stalled sink")
	}
	<-s.entered
	if !Refusing() {
		t.Fatal("not refusing with the sink stalled and the buffer full")
	}
	close(s.release)
	deadline := time.Now().Add(10 * time.Second)
	for Refusing() || strings.Count(s.all(), "\n") != 60 {
		if time.Now().After(deadline) {
			t.Fatalf("after the stall: refusing %v, %d lines written", Refusing(), strings.Count(s.all(), "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCloseCountsRefusedLines: lines the writer still refuses at Close are
// counted lost, and the buffer no longer refuses data routes.
func TestCloseCountsRefusedLines(t *testing.T) {
	s := &sink{fail: 1 << 30}
	b := New(s, Options{Size: 1 << 20, Interval: time.Hour, MaxPending: 2})
	lost := counter(LostLines)
	for i := range 3 {
		_, _ = b.Write(line(i))
	}
	if !Refusing() {
		t.Fatal("not refusing")
	}
	if err := b.Close(); err == nil {
		t.Fatal("Close did not report the refused lines")
	}
	if got := counter(LostLines) - lost; got != 3 {
		t.Fatalf("%v lines counted lost at Close, want 3", got)
	}
	if Refusing() {
		t.Fatal("a closed buffer still refuses data routes")
	}
}

// TestConcurrentWritersKeepLinesWhole: under concurrent writers, full
// buffers and periodic flushes, every line arrives once and whole.
func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	s := new(sink)
	b := New(s, Options{Size: 512, Interval: time.Millisecond})
	var wg sync.WaitGroup
	const writers, each = 8, 500
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, _ = b.Write(fmt.Appendf(nil, `{"w":%d,"i":%d}`+"\n", w, i))
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for l := range strings.Lines(s.all()) {
		var v struct{ W, I int }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not whole: %v", l, err)
		}
		if seen[l] {
			t.Fatalf("line %q written twice", l)
		}
		seen[l] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d lines written, want %d", len(seen), writers*each)
	}
}

func readFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	return string(data), err
}

// counter reads a counter's value.
func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// limitSink refuses any write larger than max (a file writer's roll_size)
// and, first, fail writes.
