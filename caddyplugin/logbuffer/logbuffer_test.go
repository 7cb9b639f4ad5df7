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
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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

var opened, closedCount atomic.Int32

// countingWriter is a log writer module that counts its opens and closes.
type countingWriter struct{}

func (countingWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.logging.writers.passerelle_test_counting", New: func() caddy.Module { return new(countingWriter) }}
}
func (countingWriter) String() string    { return "counting" }
func (countingWriter) WriterKey() string { return "passerelle_test_counting" }
func (countingWriter) OpenWriter() (io.WriteCloser, error) {
	opened.Add(1)
	return countingCloser{}, nil
}

type countingCloser struct{}

func (countingCloser) Write(p []byte) (int, error) { return len(p), nil }
func (countingCloser) Close() error                { closedCount.Add(1); return nil }

func init() { caddy.RegisterModule(countingWriter{}) }

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

// TestCaddyfile: the options, the nested writer with its own block, and
// the refusals.
func TestCaddyfile(t *testing.T) {
	var w Writer
	d := caddyfile.NewTestDispenser(`passerelle_buffered {
		flush_interval 250ms
		buffer_size 128KiB
		max_pending 500
		on_full drop
		output file /var/log/passerelle/audit.log {
			roll_size 10MiB
		}
	}`)
	if err := w.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if time.Duration(w.FlushInterval) != 250*time.Millisecond || w.BufferSize != 128<<10 || w.MaxPending != 500 || w.OnFull != "drop" {
		t.Fatalf("options: %v %d %d %q", time.Duration(w.FlushInterval), w.BufferSize, w.MaxPending, w.OnFull)
	}
	var inner map[string]any
	if err := json.Unmarshal(w.WriterRaw, &inner); err != nil {
		t.Fatal(err)
	}
	if inner["output"] != "file" || inner["filename"] != "/var/log/passerelle/audit.log" || inner["roll_size_mb"] == nil {
		t.Fatalf("inner writer: %s", w.WriterRaw)
	}

	for in, want := range map[string]string{
		`passerelle_buffered extra`:                                    "wrong argument count",
		"passerelle_buffered {\n flush_interval 0s\n}":                 "flush_interval",
		"passerelle_buffered {\n flush_interval 1ms\n}":                "flush_interval",
		"passerelle_buffered {\n flush_interval soon\n}":               "flush_interval",
		"passerelle_buffered {\n buffer_size 0\n}":                     "buffer_size",
		"passerelle_buffered {\n buffer_size 1GiB\n}":                  "buffer_size",
		"passerelle_buffered {\n buffer_szie 1KiB\n}":                  "unknown passerelle_buffered option",
		"passerelle_buffered {\n max_pending 0\n}":                     "max_pending",
		"passerelle_buffered {\n max_pending many\n}":                  "max_pending",
		"passerelle_buffered {\n max_pending\n}":                       "wrong argument count",
		"passerelle_buffered {\n on_full block\n}":                     "on_full",
		"passerelle_buffered {\n on_full\n}":                           "wrong argument count",
		"passerelle_buffered {\n output passerelle_buffered\n}":        "cannot wrap itself",
		"passerelle_buffered {\n output nowhere\n}":                    "nowhere",
		"passerelle_buffered {\n output\n}":                            "wrong argument count",
		"passerelle_buffered {\n output stderr\n flush_interval 1s\n}": "",
	} {
		err := new(Writer).UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q refused: %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: got %v, want an error about %q", in, err, want)
		}
	}
}

// TestProvision: defaults, the inner writer loaded as a module, a key that
// changes with the settings (Caddy reopens the writer when they change).
func TestProvision(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()

	w := new(Writer)
	if err := w.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Duration(w.FlushInterval) != DefaultFlushInterval || w.BufferSize != DefaultBufferSize || w.String() != "buffered stderr" ||
		w.MaxPending != DefaultMaxPending || w.OnFull != "refuse" {
		t.Fatalf("defaults: %v %d %q %d %q", time.Duration(w.FlushInterval), w.BufferSize, w.String(), w.MaxPending, w.OnFull)
	}

	path := t.TempDir() + "/audit.log"
	f := &Writer{FlushInterval: caddy.Duration(time.Hour), WriterRaw: json.RawMessage(`{"output":"file","filename":"` + path + `"}`)}
	if err := f.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.WriterKey(), path) || f.WriterKey() == w.WriterKey() {
		t.Fatalf("writer key %q", f.WriterKey())
	}
	other := &Writer{FlushInterval: caddy.Duration(time.Minute), WriterRaw: f.WriterRaw}
	if err := other.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if other.WriterKey() == f.WriterKey() {
		t.Fatal("two flush intervals share a writer key")
	}
	wc, err := f.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = wc.Write(line(7))
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := readFile(path)
	if err != nil || data != string(line(7)) {
		t.Fatalf("file after Close: %q, %v", data, err)
	}

	for _, bad := range []*Writer{
		{BufferSize: -1}, {BufferSize: maxBufferSize + 1},
		{FlushInterval: caddy.Duration(time.Nanosecond)}, {FlushInterval: -1},
		{MaxPending: -1}, {MaxPending: maxPendingLimit + 1}, {OnFull: "block"},
	} {
		if err := bad.Provision(ctx); err == nil {
			t.Errorf("accepted: buffer_size %d, flush_interval %v", bad.BufferSize, time.Duration(bad.FlushInterval))
		}
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
