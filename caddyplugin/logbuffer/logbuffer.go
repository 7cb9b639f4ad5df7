// Package logbuffer is a Caddy log writer that keeps log lines in memory and
// hands them to another writer in batches: one write system call for many
// records instead of one per record, the way nginx's `access_log … buffer=`
// and Envoy's file access logs work. The audit trail writes one record per
// request; on a busy gateway the unbuffered write is a measurable part of a
// request's cost.
//
// Caddyfile, inside a `log` block:
//
//	log audit {
//	    include passerelle.audit
//	    output passerelle_buffered {
//	        flush_interval 1s     # longest time a line waits in memory (default 1s)
//	        buffer_size    64KiB  # a batch this large is written at once (default 64KiB)
//	        output file /var/log/passerelle/audit.log
//	    }
//	}
//
// The inner `output` takes any Caddy log writer (file, net, stderr, stdout…)
// with its usual options; stderr when omitted.
//
// What a buffer costs: lines not yet written are lost if the process dies
// abruptly (SIGKILL, power loss), at most flush_interval of them. A
// graceful stop or a config reload writes them first. A batch the inner
// writer refuses is dropped and the error reported, as an unbuffered writer
// would have lost the same lines. Buffered writers on one inner writer
// (same file) share it; do not also point an unbuffered output at it.
package logbuffer

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
)

// LostBatches counts the batches the inner writer refused on a timed flush,
// where nobody waits for the error (a full buffer's error goes back to the
// logger, which reports it). The passerelle app registers it on Caddy's
// metrics registry; deploy/prometheus/alerts.yaml alerts on any increase.
var LostBatches = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "passerelle", Name: "log_batches_lost_total",
	Help: "Batches of log lines (the audit trail's, when buffered) that the inner log writer refused and that were lost.",
})

func init() {
	caddy.RegisterModule(Writer{})
}

// Defaults and bounds of a Writer.
const (
	DefaultFlushInterval = time.Second
	DefaultBufferSize    = 64 << 10
	minFlushInterval     = 10 * time.Millisecond
	maxBufferSize        = 64 << 20
)

// Writer is the `passerelle_buffered` log writer module.
type Writer struct {
	// FlushInterval bounds how long a line waits in memory (default 1s).
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`
	// BufferSize is the batch size, in bytes, written as soon as reached
	// (default 64 KiB).
	BufferSize int `json:"buffer_size,omitempty"`
	// WriterRaw is the writer that receives the batches (default stderr).
	// Its JSON key is "writer": "output" names this module itself in the
	// enclosing log.
	WriterRaw json.RawMessage `json:"writer,omitempty" caddy:"namespace=caddy.logging.writers inline_key=output"`

	inner caddy.WriterOpener
}

// CaddyModule returns the Caddy module information.
func (Writer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.logging.writers.passerelle_buffered", New: func() caddy.Module { return new(Writer) }}
}

// Provision loads the inner writer and applies the defaults.
func (w *Writer) Provision(ctx caddy.Context) error {
	if w.FlushInterval == 0 {
		w.FlushInterval = caddy.Duration(DefaultFlushInterval)
	}
	if w.BufferSize == 0 {
		w.BufferSize = DefaultBufferSize
	}
	if time.Duration(w.FlushInterval) < minFlushInterval || w.BufferSize < 1 || w.BufferSize > maxBufferSize {
		return fmt.Errorf("passerelle_buffered: flush_interval must be at least %v and buffer_size from 1 B to 64 MiB", minFlushInterval)
	}
	if w.WriterRaw == nil {
		w.inner = caddy.StderrWriter{}
		return nil
	}
	mod, err := ctx.LoadModule(w, "WriterRaw")
	if err != nil {
		return fmt.Errorf("passerelle_buffered: loading the inner writer: %w", err)
	}
	w.inner = mod.(caddy.WriterOpener)
	return nil
}

// String describes the writer for humans.
func (w *Writer) String() string { return "buffered " + w.inner.String() }

// WriterKey identifies the configuration: Caddy keeps one open writer per
// key across config reloads.
func (w *Writer) WriterKey() string {
	return fmt.Sprintf("passerelle_buffered:%d:%d:%s", time.Duration(w.FlushInterval), w.BufferSize, w.inner.WriterKey())
}

// OpenWriter opens the inner writer and starts the periodic flush.
//
// Inner writers are shared by key: while a reload changes flush_interval,
// the old and new buffers (two writer keys) write to one open file, not two
// handles rotating it each on its own.
func (w *Writer) OpenWriter() (io.WriteCloser, error) {
	key := w.inner.WriterKey()
	v, _, err := innerWriters.LoadOrNew(key, func() (caddy.Destructor, error) {
		inner, err := w.inner.OpenWriter()
		return sharedWriter{inner}, err
	})
	if err != nil {
		return nil, err
	}
	release := &pooled{WriteCloser: v.(sharedWriter), key: key}
	return New(release, w.BufferSize, time.Duration(w.FlushInterval)), nil
}

// innerWriters holds the open inner writers, by their writer key.
var innerWriters = caddy.NewUsagePool()

// sharedWriter is an inner writer in the pool; it is closed when its last
// user lets it go.
type sharedWriter struct{ io.WriteCloser }

// Destruct implements caddy.Destructor.
func (s sharedWriter) Destruct() error { return s.WriteCloser.Close() }

// pooled is one buffer's use of a shared inner writer: closing it gives the
// use back.
type pooled struct {
	io.WriteCloser
	key string
}

func (p *pooled) Close() error {
	_, err := innerWriters.Delete(p.key)
	return err
}

// UnmarshalCaddyfile sets up the writer from Caddyfile tokens:
//
//	output passerelle_buffered {
//	    flush_interval <duration>
//	    buffer_size    <size>
//	    output         <writer> [<args…>] [{ … }]
//	}
func (w *Writer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "flush_interval":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v, err := caddy.ParseDuration(d.Val())
			if err != nil || v < minFlushInterval {
				return d.Errf("flush_interval: a duration of at least %v is required, got %q", minFlushInterval, d.Val())
			}
			w.FlushInterval = caddy.Duration(v)
		case "buffer_size":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v, err := humanize.ParseBytes(d.Val())
			if err != nil || v == 0 || v > maxBufferSize {
				return d.Errf("buffer_size: a size from 1 B to 64 MiB is required, got %q", d.Val())
			}
			w.BufferSize = int(v)
		case "output":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			var wo caddy.WriterOpener
			switch name { // Caddy's own standard streams have no Caddyfile unmarshaler
			case "stdout":
				wo = caddy.StdoutWriter{}
			case "stderr":
				wo = caddy.StderrWriter{}
			case "discard":
				wo = caddy.DiscardWriter{}
			case "passerelle_buffered":
				return d.Err("output: passerelle_buffered cannot wrap itself")
			default:
				unm, err := caddyfile.UnmarshalModule(d, "caddy.logging.writers."+name)
				if err != nil {
					return err
				}
				var ok bool
				if wo, ok = unm.(caddy.WriterOpener); !ok {
					return d.Errf("output: module %s is not a log writer", name)
				}
			}
			w.WriterRaw = caddyconfig.JSONModuleObject(wo, "output", name, nil)
		default:
			return d.Errf("unknown passerelle_buffered option %q", d.Val())
		}
	}
	return nil
}

// Buffer batches writes to an io.WriteCloser. It is safe for concurrent use;
// each Write is kept whole, in order.
type Buffer struct {
	inner io.WriteCloser
	size  int

	mu     sync.Mutex // guards buf and closed
	buf    []byte
	closed bool // Close began: Write refuses new lines

	flushMu sync.Mutex // one flush at a time, so batches keep their order
	spare   []byte     // the batch being written, reused; guarded by flushMu

	stop chan struct{}
	done chan struct{}
}

// New returns a Buffer that writes to inner whenever size bytes are waiting
// and at least every interval.
func New(inner io.WriteCloser, size int, interval time.Duration) *Buffer {
	b := &Buffer{inner: inner, size: size, buf: make([]byte, 0, size), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop(interval)
	return b
}

func (b *Buffer) loop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := b.Flush(); err != nil {
				LostBatches.Inc()
				// Nobody waits for this batch: say so where zap reports its
				// own write errors.
				fmt.Fprintf(os.Stderr, "%s passerelle_buffered: a batch of log lines was lost: %v\n", time.Now().UTC().Format(time.RFC3339), err)
			}
		case <-b.stop:
			return
		}
	}
}

// Write keeps p for the next batch; it writes the batch when it reaches the
// buffer size. p is copied. After Close, Write fails with os.ErrClosed.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, os.ErrClosed
	}
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= b.size
	b.mu.Unlock()
	if full {
		if err := b.flush(true); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// Flush writes what is waiting. Writers are not held during the write
// system call: they fill a fresh batch meanwhile.
func (b *Buffer) Flush() error { return b.flush(false) }

// Sync writes what is waiting and syncs the inner writer when it can. (Caddy
// hands zap its own wrapper of a log writer, so zap's Sync before a Fatal
// exit does not reach here: such lines wait for the next flush.)
func (b *Buffer) Sync() error {
	if err := b.Flush(); err != nil {
		return err
	}
	if s, ok := b.inner.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

// flush writes the waiting batch; onlyIfFull skips it when another writer
// flushed while this one waited (no trickle of tiny batches).
func (b *Buffer) flush(onlyIfFull bool) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	return b.flushLocked(onlyIfFull)
}

// flushLocked needs flushMu.
func (b *Buffer) flushLocked(onlyIfFull bool) error {
	b.mu.Lock()
	if onlyIfFull && len(b.buf) < b.size {
		b.mu.Unlock()
		return nil
	}
	batch := b.buf
	b.buf = b.spare[:0]
	b.mu.Unlock()
	if len(batch) == 0 {
		b.spare = batch
		return nil
	}
	_, err := b.inner.Write(batch)
	if cap(batch) > 4*b.size {
		batch = make([]byte, 0, b.size) // one burst does not pin a large array
	}
	b.spare = batch[:0]
	return err
}

// Close stops the periodic flush, writes what is waiting, last, and
// closes the inner writer.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true // no line joins the buffer from now on
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	err := b.flushLocked(false)
	if err != nil {
		LostBatches.Inc() // as in loop: Caddy only prints a Close error
	}
	if cerr := b.inner.Close(); err == nil {
		err = cerr
	}
	return err
}

// Interface guards.
var (
	_ caddy.Provisioner     = (*Writer)(nil)
	_ caddy.WriterOpener    = (*Writer)(nil)
	_ caddyfile.Unmarshaler = (*Writer)(nil)
	_ io.WriteCloser        = (*Buffer)(nil)
	_ caddy.Destructor      = sharedWriter{}
)
