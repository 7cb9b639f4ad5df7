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
//	        max_pending    10000  # lines kept while the writer refuses them (default 10000)
//	        on_full        refuse # or drop (default refuse)
//	        output file /var/log/passerelle/audit.log
//	    }
//	}
//
// The inner `output` takes any Caddy log writer (file, net, stderr, stdout…)
// with its usual options; stderr when omitted.
//
// When the inner writer refuses a batch (a full disk, a log collector down),
// the batch is kept and tried again every flush_interval; nothing is lost
// while at most max_pending lines wait. With max_pending lines waiting,
// `on_full refuse` makes Passerelle's data routes answer 503
// audit_unavailable until the writer takes lines again (SECURITY.md G09,
// I11: no access to personal data goes untraced); `on_full drop` drops the
// new lines instead. Writes are at most buffer_size long: keep it below the
// inner file writer's roll_size (1 MiB at least), which refuses longer ones.
// Lines handed to the next buffer at a reload may reach the log after
// lines that buffer wrote first. Lost lines are counted
// (caddy_passerelle_log_lines_lost_total) and reported on stderr.
//
// What a buffer costs: lines not yet written are lost if the process dies
// abruptly (SIGKILL, power loss), at most flush_interval of them while the
// writer works. A graceful stop or a config reload writes them first.
// Buffered writers on one inner writer (same file) share it; do not also
// point an unbuffered output at it.
package logbuffer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the buffered writers; the passerelle app registers them on
// Caddy's metrics registry, and deploy/prometheus/alerts.yaml alerts on
// them.
var (
	// LostLines counts the lines dropped: beyond the bound while the inner
	// writer refused them or could not keep up, or still refused at Close.
	LostLines = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "log_lines_lost_total",
		Help: "Log lines (the audit trail's, when buffered) dropped because the inner log writer refused them or could not keep up.",
	})
	// WriteFailures counts the batches the inner writer refused (kept and
	// tried again).
	WriteFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "log_write_failures_total",
		Help: "Batches of log lines the inner log writer refused; they are kept and tried again.",
	})
	// RefusingGauge is 1 while Refusing: data routes answer 503.
	RefusingGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "audit_refusing",
		Help: "1 while a buffered log writer with on_full refuse is full: data routes answer 503 audit_unavailable.",
	}, func() float64 {
		if Refusing() {
			return 1
		}
		return 0
	})
)

func init() {
	caddy.RegisterModule(Writer{})
}

// Defaults and bounds of a Writer.
const (
	DefaultFlushInterval = time.Second
	DefaultBufferSize    = 64 << 10
	minFlushInterval     = 10 * time.Millisecond
	maxBufferSize        = 64 << 20
	maxPendingLimit      = 1_000_000

	onFullRefuse = "refuse"
	onFullDrop   = "drop"
)

// Writer is the `passerelle_buffered` log writer module.
type Writer struct {
	// FlushInterval bounds how long a line waits in memory (default 1s).
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`
	// BufferSize is the batch size, in bytes, written as soon as reached
	// (default 64 KiB).
	BufferSize int `json:"buffer_size,omitempty"`
	// MaxPending is how many lines are kept while the inner writer refuses
	// them or cannot keep up (default 10 000).
	MaxPending int `json:"max_pending,omitempty"`
	// OnFull is what happens with MaxPending lines waiting: "refuse" (the
	// default: data routes answer 503 until the writer takes lines again)
	// or "drop" (new lines are dropped).
	OnFull string `json:"on_full,omitempty"`
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
	if w.MaxPending == 0 {
		w.MaxPending = DefaultMaxPending
	}
	if w.OnFull == "" {
		w.OnFull = onFullRefuse
	}
	if time.Duration(w.FlushInterval) < minFlushInterval || w.BufferSize < 1 || w.BufferSize > maxBufferSize {
		return fmt.Errorf("passerelle_buffered: flush_interval must be at least %v and buffer_size from 1 B to 64 MiB", minFlushInterval)
	}
	if w.MaxPending < 1 || w.MaxPending > maxPendingLimit || (w.OnFull != onFullRefuse && w.OnFull != onFullDrop) {
		return fmt.Errorf("passerelle_buffered: max_pending must be from 1 to %d lines and on_full refuse or drop", maxPendingLimit)
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
	return fmt.Sprintf("passerelle_buffered:%d:%d:%d:%s:%s", time.Duration(w.FlushInterval), w.BufferSize, w.MaxPending, w.OnFull, w.inner.WriterKey())
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
		return &sharedWriter{WriteCloser: inner}, err
	})
	if err != nil {
		return nil, err
	}
	release := &pooled{sharedWriter: v.(*sharedWriter), key: key}
	return New(release, Options{Size: w.BufferSize, Interval: time.Duration(w.FlushInterval),
		MaxPending: w.MaxPending, Drop: w.OnFull == onFullDrop}), nil
}

// innerWriters holds the open inner writers, by their writer key.
var innerWriters = caddy.NewUsagePool()

// sharedWriter is an inner writer in the pool, with the lines a closed
// buffer on it could not write, kept for the next buffer on it (a reload
// that changes a buffer's settings opens the new buffer before it closes
// the old one). It is closed when its last user lets it go.
type sharedWriter struct {
	io.WriteCloser

	mu    sync.Mutex
	carry []byte
	lines int
	full  bool // counted in refusing until taken
}

func (s *sharedWriter) handOver(lines []byte, count int, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.carry = append(s.carry, lines...)
	s.lines += count
	if full && !s.full {
		s.full = true
		refusing.Add(1)
	}
}

func (s *sharedWriter) takeOver() ([]byte, int, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines == 0 && len(s.carry) == 0 {
		return nil, 0, nil
	}
	lines, count, full := s.carry, s.lines, s.full
	s.carry, s.lines, s.full = nil, 0, false
	return lines, count, func() {
		if full {
			refusing.Add(-1)
		}
	}
}

// Destruct implements caddy.Destructor: lines still kept are lost, and a
// panicking inner writer (Caddy's net writer that never connected) does
// not take the process down.
func (s *sharedWriter) Destruct() (err error) {
	if _, count, taken := s.takeOver(); taken != nil {
		taken()
		LostLines.Add(float64(count))
		fmt.Fprintf(os.Stderr, "%s passerelle_buffered: %d log lines lost: their writer closed before taking them\n", stamp(), count)
	}
	defer func() {
		if recover() != nil {
			err = errors.New("passerelle_buffered: the inner log writer panicked while closing")
		}
	}()
	return s.WriteCloser.Close()
}

// pooled is one buffer's use of a shared inner writer: closing it gives the
// use back.
type pooled struct {
	*sharedWriter
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
//	    max_pending    <lines>
//	    on_full        refuse|drop
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
		case "max_pending":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v, err := strconv.Atoi(d.Val())
			if err != nil || v < 1 || v > maxPendingLimit {
				return d.Errf("max_pending: a number of lines from 1 to %d is required, got %q", maxPendingLimit, d.Val())
			}
			w.MaxPending = v
		case "on_full":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if v := d.Val(); v != onFullRefuse && v != onFullDrop {
				return d.Errf("on_full: refuse or drop, got %q", v)
			}
			w.OnFull = d.Val()
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

// Interface guards.
var (
	_ caddy.Provisioner     = (*Writer)(nil)
	_ caddy.WriterOpener    = (*Writer)(nil)
	_ caddyfile.Unmarshaler = (*Writer)(nil)
	_ io.WriteCloser        = (*Buffer)(nil)
	_ caddy.Destructor      = (*sharedWriter)(nil)
	_ carrier               = (*pooled)(nil)
)
