package habilitation

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type logRec struct {
	mu   sync.Mutex
	msgs []string
	errs []error
}

func (l *logRec) logf(msg string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msg)
	l.errs = append(l.errs, err)
}

func (l *logRec) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

const revokedSample = `habilitations:
  - id: "12345"
    label: "Mairie de Montreuil — portail famille"
    siret: "21930048000015"
    modalities: [france_connect]
    france_connect_client_ids: ["` + fsClientID + `"]
    scopes: [cnaf_quotient_familial]
    revoked: true
`

func TestC02_NoStartWithoutValidRegistry(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewWatcher(filepath.Join(dir, "missing.yaml"), 0, WatchOptions{}); err == nil {
		t.Error("started without a registry file")
	}
	p := filepath.Join(dir, "h.yaml")
	writeFile(t, p, "habilitations:\n  - {id: 1}")
	if _, err := NewWatcher(p, 0, WatchOptions{}); err == nil {
		t.Error("started with an invalid registry")
	}
	writeFile(t, p, sample)
	if _, err := NewWatcher(p, MaxInterval+time.Second, WatchOptions{}); err == nil {
		t.Error("interval above the bound accepted")
	}
	w, err := NewWatcher(p, 0, WatchOptions{})
	if err != nil || w.Interval() != DefaultInterval || w.Current().Len() != 2 {
		t.Fatalf("NewWatcher = %v, %v", w, err)
	}
}

// An invalid update that lists every habilitation, grants what it granted
// and revokes none changes nothing: the previous registry stays in force, and each distinct problem is
// logged once, without values.
func TestC02_InvalidUpdateKeepsPrevious(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h.yaml")
	writeFile(t, p, sample)
	var log logRec
	w, err := NewWatcher(p, time.Second, WatchOptions{Log: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	before := w.Current()
	for i, bad := range []string{
		"",                                   // truncated write
		"habilitations:\n  - {id: \"12345\"", // syntax error
		// The same grants, and a field the format does not know.
		strings.Replace(sample, "    revoked: false\n", "    revoked: false\n    client_secret: \"Zm9vYmFyYmF6cXV4c2VjcmV0\"\n", 1),
	} {
		writeFile(t, p, bad)
		changed, err := w.Poll()
		if changed || err == nil {
			t.Fatalf("update %d: changed=%v err=%v", i, changed, err)
		}
		if w.Current() != before {
			t.Fatalf("update %d: registry replaced by an invalid one", i)
		}
		if st := w.Status(); st.State != StateRefused || st.Restricted != 0 {
			t.Fatalf("update %d: status %+v", i, st)
		}
		// The same bad content is reported once.
		if _, err := w.Poll(); err == nil {
			t.Fatalf("update %d: repeated poll lost the error", i)
		}
	}
	if n := log.count(); n != 3 {
		t.Errorf("logf called %d times, want 3: %v", n, log.msgs)
	}
	for i, m := range log.msgs {
		if !strings.Contains(m, "previous registry kept") || log.errs[i] == nil {
			t.Errorf("log %d = %q, %v", i, m, log.errs[i])
		}
		if strings.Contains(m+log.errs[i].Error(), "Zm9vYmFy") || strings.Contains(m+log.errs[i].Error(), "Montreuil") {
			t.Errorf("log %d echoes a value: %q %v", i, m, log.errs[i])
		}
	}
	// Back to a valid file: swapped.
	writeFile(t, p, revokedSample)
	if changed, err := w.Poll(); !changed || err != nil || w.Status().State != StateOK {
		t.Fatalf("valid update after errors: changed=%v err=%v status=%+v", changed, err, w.Status())
	}
}

func TestC02_ValidUpdateSwaps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h.yaml")
	writeFile(t, p, sample)
	var log logRec
	w, err := NewWatcher(p, time.Second, WatchOptions{Log: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if h, ok := w.Current().ByClientID(fsClientID); !ok || !h.ActiveAt(now) {
		t.Fatal("habilitation should be active before the update")
	}
	// Unchanged file: no swap.
	if changed, err := w.Poll(); changed || err != nil {
		t.Fatalf("unchanged: %v %v", changed, err)
	}
	old := w.Current()
	writeFile(t, p, revokedSample)
	if changed, err := w.Poll(); !changed || err != nil {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if w.Current() == old || w.Current().Len() != 1 {
		t.Fatal("registry not swapped")
	}
	if h, ok := w.Current().ByClientID(fsClientID); !ok || h.ActiveAt(now) {
		t.Fatal("revocation not applied")
	}
	if old.Len() != 2 {
		t.Error("the previous registry was mutated")
	}
	if n := log.count(); n != 1 || !strings.Contains(log.msgs[0], "reloaded (1 habilitations)") || log.errs[0] != nil {
		t.Errorf("logs = %v %v", log.msgs, log.errs)
	}
	// Same content rewritten (new mtime): no swap.
	writeFile(t, p, revokedSample)
	cur := w.Current()
	if changed, _ := w.Poll(); changed || w.Current() != cur {
		t.Error("rewrite with identical content swapped the registry")
	}
}

// Run applies a revocation within the polling interval, while readers use
// Current concurrently.
func TestC02_RunAppliesRevocation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h.yaml")
	writeFile(t, p, sample)
	w, err := NewWatcher(p, 10*time.Millisecond, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
					if r := w.Current(); r == nil {
						t.Error("nil registry")
						return
					}
				}
			}
		}()
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	writeFile(t, p, revokedSample)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if h, _ := w.Current().ByClientID(fsClientID); h != nil && !h.ActiveAt(now) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revocation not applied by Run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	readers.Wait()
}
