package logbuffer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/logging" // the file writer
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
	b := New(s, 4096, time.Hour)
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
	b := New(s, 3*len(line(0)), time.Hour)
	defer b.Close()
	for i := range 3 {
		_, _ = b.Write(line(i))
	}
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
	b := New(s, 1<<20, 20*time.Millisecond)
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

// TestCloseWritesWhatWaits: a graceful stop loses nothing; later lines go
// straight through.
func TestCloseWritesWhatWaits(t *testing.T) {
	s := new(sink)
	b := New(s, 1<<20, time.Hour)
	_, _ = b.Write(line(1))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if s.all() != string(line(1)) || !s.closed {
		t.Fatalf("after Close: %q, closed %v", s.all(), s.closed)
	}
	_, _ = b.Write(line(2))
	if s.all() != string(line(1))+string(line(2)) {
		t.Fatalf("a write after Close: %q", s.all())
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestRefusedBatchIsNotSticky: a batch the inner writer refuses is reported
// and dropped; the next batches are written (bufio.Writer would refuse every
// later write).
func TestRefusedBatchIsNotSticky(t *testing.T) {
	s := &sink{fail: 1}
	b := New(s, 1<<20, time.Hour)
	defer b.Close()
	_, _ = b.Write(line(1))
	if err := b.Flush(); err == nil {
		t.Fatal("the refused batch was not reported")
	}
	_, _ = b.Write(line(2))
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.all() != string(line(2)) {
		t.Fatalf("written: %q", s.all())
	}
}

// TestConcurrentWritersKeepLinesWhole: under concurrent writers, full
// buffers and periodic flushes, every line arrives once and whole.
func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	s := new(sink)
	b := New(s, 512, time.Millisecond)
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
		output file /var/log/passerelle/audit.log {
			roll_size 10MiB
		}
	}`)
	if err := w.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if time.Duration(w.FlushInterval) != 250*time.Millisecond || w.BufferSize != 128<<10 {
		t.Fatalf("options: %v %d", time.Duration(w.FlushInterval), w.BufferSize)
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
		"passerelle_buffered {\n flush_interval soon\n}":               "flush_interval",
		"passerelle_buffered {\n buffer_size 0\n}":                     "buffer_size",
		"passerelle_buffered {\n buffer_size 1GiB\n}":                  "buffer_size",
		"passerelle_buffered {\n buffer_szie 1KiB\n}":                  "unknown passerelle_buffered option",
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
	if time.Duration(w.FlushInterval) != DefaultFlushInterval || w.BufferSize != DefaultBufferSize || w.String() != "buffered stderr" {
		t.Fatalf("defaults: %v %d %q", time.Duration(w.FlushInterval), w.BufferSize, w.String())
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

	if err := (&Writer{BufferSize: -1}).Provision(ctx); err == nil {
		t.Fatal("a negative buffer size was accepted")
	}
}

func readFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	return string(data), err
}
