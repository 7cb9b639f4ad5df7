package logbuffer

import (
	"encoding/json"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

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
