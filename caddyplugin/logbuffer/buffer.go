package logbuffer

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Options are a Buffer's settings.
type Options struct {
	// Size is the batch size, in bytes, written as soon as reached.
	Size int
	// Interval is the longest time a line waits before a write is tried.
	Interval time.Duration
	// MaxPending is how many lines the buffer keeps while its sink refuses
	// them or cannot keep up (DefaultMaxPending when 0 or less).
	MaxPending int
	// Drop: with MaxPending lines waiting, new lines are dropped and
	// counted. Otherwise (the default) the buffer refuses: Refusing reports
	// it, so that Passerelle's data routes answer 503 until the sink takes
	// lines again, and lines are dropped only beyond twice MaxPending
	// (those of requests already past the check).
	Drop bool
}

// Buffer batches writes to an io.WriteCloser. It is safe for concurrent use;
// each Write is kept whole, in order.
//
// A writer never waits for the inner writer: the buffer's own goroutine
// writes the batches, when one reaches the buffer size and at every
// interval. A batch the inner writer refuses
// (an error, or a partial write) is kept, in front of the lines that came
// since, and tried again at the next periodic flush; meanwhile a full
// batch does not trigger a write.
type Buffer struct {
	inner io.WriteCloser
	o     Options

	mu       sync.Mutex // guards the fields below it
	buf      []byte
	bufLines int  // lines in buf
	pending  int  // lines accepted and not written yet: bufLines + the batch being written
	full     bool // pending ≥ MaxPending; counted in refusing unless Drop
	lost     int  // lines dropped since the last report
	closed   bool // Close began: Write refuses new lines

	failing atomic.Bool // the inner writer refused the last batch

	flushMu sync.Mutex // one write at a time, so batches keep their order
	spare   []byte     // the batch being written, reused; guarded by flushMu

	full1 chan struct{} // a batch reached the buffer size (capacity 1)
	stop  chan struct{}
	done  chan struct{}
}

// DefaultMaxPending is the number of lines a Buffer keeps while its sink
// refuses them: the 10 000 audit records of SECURITY.md G09.
const DefaultMaxPending = 10_000

// refusing counts the buffers that hold MaxPending lines or more and
// refuse (Options.Drop false).
var refusing atomic.Int64

// Refusing reports whether a buffered log writer that refuses when full
// holds as many lines as it may: its sink refuses them, or cannot keep up.
// Passerelle's data routes answer 503 audit_unavailable meanwhile
// (SECURITY.md G09, I11): no access to personal data goes untraced.
func Refusing() bool { return refusing.Load() > 0 }

// New returns a Buffer that writes to inner whenever o.Size bytes are
// waiting and tries at least every o.Interval.
func New(inner io.WriteCloser, o Options) *Buffer {
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	b := &Buffer{inner: inner, o: o, buf: make([]byte, 0, o.Size), full1: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *Buffer) loop() {
	defer close(b.done)
	t := time.NewTicker(b.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush() // flushLocked reports a failing sink
			b.reportLost()
		case <-b.full1:
			b.flushMu.Lock()
			_ = b.flushLocked(true)
			b.flushMu.Unlock()
		case <-b.stop:
			return
		}
	}
}

// Write keeps p for the next batch, and has the batch written when it
// reaches the buffer size. p is copied. A line beyond
// the bound is dropped (counted in LostLines, reported once per interval)
// without an error: zap would print one per line. After Close, Write fails
// with os.ErrClosed.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, os.ErrClosed
	}
	bound := b.o.MaxPending
	if !b.o.Drop {
		bound *= 2
	}
	if b.pending >= bound {
		b.lost++
		b.mu.Unlock()
		LostLines.Inc()
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	b.bufLines++
	b.pending++
	b.setFullLocked()
	write := len(b.buf) >= b.o.Size && !b.failing.Load()
	b.mu.Unlock()
	if write {
		select {
		case b.full1 <- struct{}{}:
		default: // already asked
		}
	}
	return len(p), nil
}

// Flush writes what is waiting; it waits for a write under way. Writers are
// not held during the write system call: they fill a fresh batch meanwhile.
func (b *Buffer) Flush() error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	return b.flushLocked(false)
}

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

// flushLocked writes the waiting batch; onlyIfFull skips it when another
// writer flushed meanwhile (no trickle of tiny batches). It needs flushMu.
func (b *Buffer) flushLocked(onlyIfFull bool) error {
	b.mu.Lock()
	if onlyIfFull && len(b.buf) < b.o.Size || len(b.buf) == 0 {
		b.mu.Unlock()
		return nil
	}
	batch, lines := b.buf, b.bufLines
	b.buf, b.bufLines = b.spare[:0], 0
	b.mu.Unlock()

	n, err := b.inner.Write(batch)
	if err == nil && n < len(batch) {
		err = io.ErrShortWrite
	}
	written := lines
	if err != nil {
		n = max(0, min(n, len(batch)))
		written = bytes.Count(batch[:n], newline)
	}
	b.mu.Lock()
	b.pending -= written
	if err != nil {
		// The rest goes back in front of the lines that came meanwhile.
		kept := make([]byte, 0, len(batch)-n+len(b.buf))
		b.buf = append(append(kept, batch[n:]...), b.buf...)
		b.bufLines += lines - written
	}
	b.setFullLocked()
	b.mu.Unlock()

	if cap(batch) > 4*b.o.Size {
		batch = make([]byte, 0, b.o.Size) // one burst does not pin a large array
	}
	b.spare = batch[:0]
	b.noteFailure(err)
	return err
}

var newline = []byte{'\n'}

// setFullLocked updates full, and refusing with it. It needs mu.
func (b *Buffer) setFullLocked() {
	full := b.pending >= b.o.MaxPending
	if full == b.full {
		return
	}
	b.full = full
	if !b.o.Drop {
		if full {
			refusing.Add(1)
		} else {
			refusing.Add(-1)
		}
	}
}

// noteFailure counts a refused batch, and says on stderr, where zap reports
// its own write errors, when the sink starts and stops refusing.
func (b *Buffer) noteFailure(err error) {
	if err != nil {
		WriteFailures.Inc()
		if !b.failing.Swap(true) {
			fmt.Fprintf(os.Stderr, "%s passerelle_buffered: the log writer refuses lines, kept for a new try: %v\n", stamp(), err)
		}
		return
	}
	if b.failing.Swap(false) {
		fmt.Fprintf(os.Stderr, "%s passerelle_buffered: the log writer takes lines again\n", stamp())
	}
}

// reportLost says on stderr how many lines were dropped since the last
// report.
func (b *Buffer) reportLost() {
	b.mu.Lock()
	lost := b.lost
	b.lost = 0
	b.mu.Unlock()
	if lost > 0 {
		fmt.Fprintf(os.Stderr, "%s passerelle_buffered: %d log lines lost: the buffer held %d lines its writer had not taken\n", stamp(), lost, b.o.MaxPending)
	}
}

func stamp() string { return time.Now().UTC().Format(time.RFC3339) }

// Close stops the periodic flush, writes what is waiting, last, and
// closes the inner writer. Lines the inner writer still refuses are lost
// (counted in LostLines).
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
	b.mu.Lock()
	lost := b.pending
	b.pending, b.buf, b.bufLines = 0, nil, 0
	b.lost += lost
	b.setFullLocked()
	b.mu.Unlock()
	LostLines.Add(float64(lost))
	b.reportLost()
	if cerr := b.inner.Close(); err == nil {
		err = cerr
	}
	return err
}
