package habilitation

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
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
	// maxLoggedIDs bounds the ids named in one log message.
	maxLoggedIDs = 20
)

// WatchOptions configures a Watcher.
type WatchOptions struct {
	// Log (may be nil) receives PII-free messages about reloads and refused
	// updates: ids and counts, never field values. err is nil for a
	// successful reload and non-nil for every problem.
	Log func(msg string, err error)
	// Check (may be nil) vets every parsed registry, at start and on each
	// reload; an error refuses the registry as a parse error does. Pass
	// (*Registry).CheckProduction in production.
	Check func(*Registry) error
}

// States of Status.State.
const (
	// StateOK: the registry in force is the file's.
	StateOK = "ok"
	// StateRefused: the file on disk was refused (parse error or check
	// failure); the previous registry is in force, with the removals and
	// revocations the refused file carries applied.
	StateRefused = "refused"
	// StateMissing: the file was deleted; the registry in force is empty.
	StateMissing = "missing"
	// StateUnreadable: the file could not be read (permission, I/O, not a
	// regular file); the registry in force is kept.
	StateUnreadable = "unreadable"
)

// errNotRegular: the registry path (after symbolic links) is not a regular
// file.
var errNotRegular = errors.New("habilitation: the registry path is not a regular file")

// Status describes the outcome of the last poll. It holds no personal data.
type Status struct {
	State string    // StateOK, StateRefused, StateMissing or StateUnreadable
	Since time.Time // when State began
	// Restricted is, in StateRefused, how many habilitations of the last
	// registry read from the file the refused file(s) removed or revoked;
	// 0 in other states.
	Restricted int
}

// Watcher holds the current registry and reloads it when its file changes.
// Current and Status are lock-free; Poll and Run may be called from any
// goroutine.
type Watcher struct {
	path     string
	interval time.Duration
	logf     func(msg string, err error)
	check    func(*Registry) error
	cur      atomic.Pointer[Registry]
	status   atomic.Pointer[Status]

	mu      sync.Mutex // guards the fields below
	modTime time.Time  // stat of the last version read
	size    int64
	racy    bool
	fileReg *Registry // the last registry read from the file (empty once it is missing)
	curSum  [32]byte  // SHA-256 of the file whose registry is in force, zero when none
	badSum  [32]byte  // SHA-256 of the last refused content
	badErr  error
	readErr string // last read error reported, "" when none
}

// NewWatcher loads the registry at path once and returns a Watcher serving it.
// It fails when the file is missing or invalid, or when opts.Check refuses
// it: Passerelle does not start without a valid registry. interval ≤ 0 means
// DefaultInterval; an interval above MaxInterval is refused.
func NewWatcher(path string, interval time.Duration, opts WatchOptions) (*Watcher, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if interval > MaxInterval {
		return nil, fmt.Errorf("habilitation: reload interval %s exceeds the %s bound", interval, MaxInterval)
	}
	w := &Watcher{path: path, interval: interval, logf: opts.Log, check: opts.Check}
	if w.logf == nil {
		w.logf = func(string, error) {}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("habilitation: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotRegular
	}
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	r, err := w.parse(data)
	if err != nil {
		return nil, err
	}
	w.cur.Store(r)
	w.fileReg = r
	w.curSum = sha256.Sum256(data)
	w.record(fi)
	w.setState(StateOK, 0)
	return w, nil
}

// Current returns the registry in force. It never returns nil.
func (w *Watcher) Current() *Registry { return w.cur.Load() }

// Status returns the outcome of the last poll.
func (w *Watcher) Status() Status { return *w.status.Load() }

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

// Poll checks the file once; changed reports whether Current changed.
//
// When the file's mtime, size or SHA-256 changed and the new content parses
// and passes the check, it becomes the registry in force. A refused content
// (the error is returned) still narrows the registry in force: habilitations
// whose id it no longer lists are removed, those it marks revoked are revoked
// (see the package documentation). A deleted file empties the registry; any
// other read error keeps it. Each distinct problem is reported to the log
// once.
func (w *Watcher) Poll() (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	fi, err := os.Stat(w.path)
	if err != nil {
		return w.readFailed(fmt.Errorf("habilitation: %w", err))
	}
	if !fi.Mode().IsRegular() {
		// A directory, a FIFO (whose open would block the poll), a
		// device: unreadable, the registry in force stays.
		return w.readFailed(errNotRegular)
	}
	if !w.racy && fi.ModTime().Equal(w.modTime) && fi.Size() == w.size {
		if w.state() == StateRefused {
			return false, w.badErr
		}
		return false, nil
	}
	data, err := readFile(w.path)
	if err != nil {
		return w.readFailed(err)
	}
	w.readErr = ""
	w.record(fi)
	sum := sha256.Sum256(data)
	if sum == w.curSum {
		w.setState(StateOK, 0) // e.g. readable again, unchanged
		return false, nil
	}
	if w.state() == StateRefused && sum == w.badSum {
		return false, w.badErr
	}
	r, err := w.parse(data)
	if err == nil {
		w.cur.Store(r)
		w.fileReg, w.curSum, w.badErr = r, sum, nil
		w.setState(StateOK, 0)
		w.logf(fmt.Sprintf("habilitation: registry reloaded (%d habilitations)", r.Len()), nil)
		return true, nil
	}
	return w.refused(data, sum, err)
}

// parse parses data and runs the check.
func (w *Watcher) parse(data []byte) (*Registry, error) {
	r, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if w.check != nil {
		if err := w.check(r); err != nil {
			return nil, fmt.Errorf("habilitation: registry refused by the check: %w", err)
		}
	}
	return r, nil
}

// refused keeps the registry in force, narrowed by what the refused content
// removes or revokes.
func (w *Watcher) refused(data []byte, sum [32]byte, err error) (bool, error) {
	w.badSum, w.badErr = sum, err
	prev := w.cur.Load()
	next, ids := prev, []string(nil)
	in, readable := readIntent(data)
	if readable {
		next, ids = restrict(prev, in)
	}
	if next != prev {
		w.cur.Store(next)
		w.curSum = [32]byte{}
	}
	w.setState(StateRefused, narrowed(w.fileReg, next))
	msg := "habilitation: registry update refused, previous registry kept"
	switch {
	case !readable:
		msg += " (no habilitations list readable in the new file: nothing revoked or removed)"
	case len(ids) > 0:
		msg += fmt.Sprintf("; as the new file asks, %d habilitation(s) revoked, removed or narrowed: %s", len(ids), quoteIDs(ids))
	}
	w.logf(msg, err)
	return next != prev, err
}

// readFailed handles a stat or read error: a missing file empties the
// registry, any other error keeps it.
func (w *Watcher) readFailed(err error) (bool, error) {
	// Force a full read once the file is back.
	w.modTime, w.size = time.Time{}, -1
	if errors.Is(err, fs.ErrNotExist) {
		w.readErr = ""
		if w.state() == StateMissing {
			return false, err
		}
		empty := newRegistry(nil)
		w.cur.Store(empty)
		w.fileReg, w.curSum = empty, [32]byte{}
		w.setState(StateMissing, 0)
		w.logf("habilitation: registry file missing, every habilitation removed", err)
		return true, err
	}
	if msg := err.Error(); msg != w.readErr {
		w.readErr = msg
		w.logf("habilitation: registry file unreadable, previous registry kept", err)
	}
	w.setState(StateUnreadable, 0)
	return false, err
}

func (w *Watcher) record(fi os.FileInfo) {
	w.modTime, w.size = fi.ModTime(), fi.Size()
	w.racy = time.Since(fi.ModTime()) < racyWindow
}

func (w *Watcher) state() string { return w.status.Load().State }

// setState records the outcome of a poll; Since changes with the state only.
func (w *Watcher) setState(state string, restricted int) {
	since := time.Now()
	if old := w.status.Load(); old != nil && old.State == state {
		since = old.Since
	}
	w.status.Store(&Status{State: state, Since: since, Restricted: restricted})
}

// quoteIDs lists ids (valid ids of the registry in force) for a log message.
func quoteIDs(ids []string) string {
	q := make([]string, 0, min(len(ids), maxLoggedIDs)+1)
	for i, id := range ids {
		if i == maxLoggedIDs {
			q = append(q, fmt.Sprintf("and %d more", len(ids)-i))
			break
		}
		q = append(q, fmt.Sprintf("%q", id))
	}
	return strings.Join(q, ", ")
}
