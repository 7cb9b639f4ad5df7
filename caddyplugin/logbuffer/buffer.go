package logbuffer

import (
	"bytes"
	"errors"
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
// interval, in writes of at most the buffer size cut at line ends (a file
// writer refuses a write larger than its roll_size). What the inner writer
// refuses (an error, or a partial write) is kept, in front of the lines
// that came since, and tried again at the next periodic flush; meanwhile a
// full batch does not trigger a write.
type Buffer struct {
	inner io.WriteCloser
	o     Options

	mu       sync.Mutex // guards the fields below it
	buf      []byte
	bufLines int  // lines ("\n") in buf
	pending  int  // lines accepted and not written yet: bufLines + the batch being written
	full     bool // pending ≥ MaxPending; counted in refusing unless Drop
	lost     int  // lines dropped since the last report
	closed   bool // Close began: Write refuses new lines
	// abandoned: Close gave up waiting for a write under way; if that
	// write fails, its lines are counted lost, not kept.
	abandoned bool

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
			_ = b.flushLocked(true, false)
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
	lines := bytes.Count(p, newline)
	b.buf = append(b.buf, p...)
	b.bufLines += lines
	b.pending += lines
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
	return b.flushLocked(false, false)
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
// writer flushed meanwhile (no trickle of tiny batches). Once Close began,
// only its own flush (final) writes: a late tick must not take over lines
// handed to the next buffer. It needs flushMu.
func (b *Buffer) flushLocked(onlyIfFull, final bool) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed && !final {
		return nil
	}
	b.takeOverLocked()
	b.mu.Lock()
	if onlyIfFull && len(b.buf) < b.o.Size || len(b.buf) == 0 {
		b.mu.Unlock()
		return nil
	}
	batch, lines := b.buf, b.bufLines
	b.buf, b.bufLines = b.spare[:0], 0
	b.mu.Unlock()

	n, err := b.writeChunks(batch)
	b.mu.Lock()
	if err != nil && b.abandoned {
		// Close left this write behind and handed the rest on: what it
		// refused is lost.
		lost := lines - bytes.Count(batch[:n], newline)
		b.lost += lost
		b.mu.Unlock()
		LostLines.Add(float64(lost))
		b.reportLost()
		return err
	}
	if err != nil {
		// The rest goes back in front of the lines that came meanwhile.
		kept := make([]byte, 0, len(batch)-n+len(b.buf))
		b.buf = append(append(kept, batch[n:]...), b.buf...)
		b.bufLines += lines - bytes.Count(batch[:n], newline)
	}
	b.pending = b.bufLines // the batch is written, or back in buf
	b.setFullLocked()
	b.mu.Unlock()

	if cap(batch) > 4*b.o.Size {
		batch = make([]byte, 0, b.o.Size) // one burst does not pin a large array
	}
	b.spare = batch[:0]
	b.noteFailure(err)
	return err
}

// writeChunks writes batch in writes of at most the buffer size, cut after
// a line end (a longer line goes alone), and stops at the first refusal.
// It returns the bytes written.
func (b *Buffer) writeChunks(batch []byte) (int, error) {
	done := 0
	for done < len(batch) {
		chunk := batch[done:]
		if len(chunk) > b.o.Size {
			cut := bytes.LastIndexByte(chunk[:b.o.Size], '\n') + 1
			if cut == 0 {
				cut = bytes.IndexByte(chunk, '\n') + 1
			}
			if cut > 0 {
				chunk = chunk[:cut]
			}
		}
		n, err := b.inner.Write(chunk)
		n = max(0, min(n, len(chunk)))
		done += n
		if err == nil && n < len(chunk) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
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

// closeWait bounds how long Close waits for a write under way.
var closeWait = 3 * time.Second

// Close stops the periodic flush, writes what is waiting, last, and
// closes the inner writer (gives its use back: see sharedWriter). Lines the
// inner writer still refuses go to the next buffer on the same inner
// writer (a reload that changed this buffer's settings), with the refusal
// when they were as many as max_pending; without one, they are lost
// (LostLines). A write under way that does not return within closeWait
// (a collector that stopped reading) is left behind.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true // no line joins the buffer from now on
	b.mu.Unlock()
	close(b.stop)
	err := errStalled
	if b.lockFlush(closeWait) {
		err = b.flushLocked(false, true)
		b.flushMu.Unlock()
	} else {
		b.mu.Lock()
		b.abandoned = true
		b.mu.Unlock()
	}
	b.mu.Lock()
	left, lines, full, stuck := b.buf, b.bufLines, b.full, b.pending-b.bufLines
	b.mu.Unlock()
	if lines > 0 {
		if c, ok := b.inner.(carrier); ok {
			c.handOver(left, lines, full && !b.o.Drop)
		} else {
			LostLines.Add(float64(lines))
			b.mu.Lock()
			b.lost += lines
			b.mu.Unlock()
			b.reportLost()
		}
	}
	if stuck > 0 {
		fmt.Fprintf(os.Stderr, "%s passerelle_buffered: %d log lines are in a write that has not returned\n", stamp(), stuck)
	}
	b.mu.Lock()
	b.pending, b.buf, b.bufLines = 0, nil, 0
	b.setFullLocked()
	b.mu.Unlock()
	if cerr := b.inner.Close(); err == nil {
		err = cerr
	}
	return err
}

// errStalled: Close gave up waiting for a write under way.
var errStalled = errors.New("passerelle_buffered: a write to the log writer did not return")

// lockFlush takes flushMu once the periodic flush has stopped, waiting at
// most wait; false when it could not (a write under way never returned).
func (b *Buffer) lockFlush(wait time.Duration) bool {
	const waiting, taken, abandoned = 0, 1, 2
	var state atomic.Int32
	got := make(chan struct{})
	go func() {
		<-b.done
		b.flushMu.Lock()
		if !state.CompareAndSwap(waiting, taken) {
			b.flushMu.Unlock()
			return
		}
		close(got)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-got:
		return true
	case <-t.C:
		if state.CompareAndSwap(waiting, abandoned) {
			return false
		}
		<-got
		return true
	}
}

// carrier is an inner writer that keeps lines a closed buffer could not
// write for the next buffer on it (sharedWriter, through pooled).
type carrier interface {
	// handOver keeps lines; full: data routes stay refused until they are
	// taken.
	handOver(lines []byte, count int, full bool)
	// takeOver returns the lines kept (nil if none), their count, and what
	// to call once they are in the taker's buffer.
	takeOver() (lines []byte, count int, taken func())
}

// takeOverLocked moves into buf the lines a closed buffer handed over on
// the same inner writer. It needs flushMu.
func (b *Buffer) takeOverLocked() {
	c, ok := b.inner.(carrier)
	if !ok {
		return
	}
	carried, count, taken := c.takeOver()
	if taken == nil {
		return
	}
	b.mu.Lock()
	b.buf = append(carried, b.buf...)
	b.bufLines += count
	b.pending += count
	b.setFullLocked()
	b.mu.Unlock()
	taken()
}
