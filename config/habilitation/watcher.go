package habilitation

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultInterval is the polling interval when none is given.
	DefaultInterval = 5 * time.Second
	// MaxInterval bounds the delay before a registry change (e.g. a
	// revocation) applies (SECURITY C02).
	MaxInterval = 5 * time.Minute
	// racyWindow: a file modified this recently may change again without a
	// visible mtime change, so it is re-read on the next poll.
	racyWindow = 2 * time.Second
)

// Watcher holds the current registry and reloads it when its file changes.
// Current is lock-free; Poll and Run may be called from any goroutine.
type Watcher struct {
	path     string
	interval time.Duration
	logf     func(msg string, err error)
	cur      atomic.Pointer[Registry]

	mu      sync.Mutex // guards the fields below
	modTime time.Time  // stat of the last version read
	size    int64
	racy    bool
	curSum  [32]byte // SHA-256 of the current registry's file
	badSum  [32]byte // SHA-256 of the last refused content
	badErr  error
	readErr string // last read error reported, "" when none
}

// NewWatcher loads the registry at path once and returns a Watcher serving it.
// It fails when the file is missing or invalid: Passerelle does not start
// without a valid registry. interval ≤ 0 means DefaultInterval; an interval
// above MaxInterval is refused. logf (may be nil) receives PII-free messages
// about reloads and refused updates.
func NewWatcher(path string, interval time.Duration, logf func(msg string, err error)) (*Watcher, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if interval > MaxInterval {
		return nil, fmt.Errorf("habilitation: reload interval %s exceeds the %s bound", interval, MaxInterval)
	}
	if logf == nil {
		logf = func(string, error) {}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("habilitation: %w", err)
	}
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	r, err := Parse(data)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, interval: interval, logf: logf}
	w.cur.Store(r)
	w.curSum = sha256.Sum256(data)
	w.record(fi)
	return w, nil
}

// Current returns the registry in force. It never returns nil.
func (w *Watcher) Current() *Registry { return w.cur.Load() }

// Interval returns the polling interval.
func (w *Watcher) Interval() time.Duration { return w.interval }

// Run polls the file every interval until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = w.Poll()
		}
	}
}

// Poll checks the file once: when its mtime, size or SHA-256 changed and the
// new content parses, the registry is swapped and changed is true. An
// unreadable or invalid file keeps the previous registry; the error is
// returned, and reported to logf once per distinct problem.
func (w *Watcher) Poll() (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	fi, err := os.Stat(w.path)
	if err != nil {
		return false, w.readFailed(fmt.Errorf("habilitation: %w", err))
	}
	if !w.racy && fi.ModTime().Equal(w.modTime) && fi.Size() == w.size {
		return false, nil
	}
	data, err := readFile(w.path)
	if err != nil {
		return false, w.readFailed(err)
	}
	w.readErr = ""
	w.record(fi)
	sum := sha256.Sum256(data)
	if sum == w.curSum {
		return false, nil
	}
	if w.badErr != nil && sum == w.badSum {
		return false, w.badErr
	}
	r, err := Parse(data)
	if err != nil {
		w.badSum, w.badErr = sum, err
		w.logf("habilitation: registry update refused, previous registry kept", err)
		return false, err
	}
	w.cur.Store(r)
	w.curSum, w.badErr = sum, nil
	w.logf(fmt.Sprintf("habilitation: registry reloaded (%d habilitations)", r.Len()), nil)
	return true, nil
}

func (w *Watcher) record(fi os.FileInfo) {
	w.modTime, w.size = fi.ModTime(), fi.Size()
	w.racy = time.Since(fi.ModTime()) < racyWindow
}

func (w *Watcher) readFailed(err error) error {
	if msg := err.Error(); msg != w.readErr {
		w.readErr = msg
		w.logf("habilitation: registry file unreadable, previous registry kept", err)
	}
	// Force a full read once the file is back.
	w.modTime, w.size = time.Time{}, -1
	return err
}
