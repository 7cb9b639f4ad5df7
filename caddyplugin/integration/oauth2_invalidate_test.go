package integration

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// lateProvider refuses the first OAuth2 token: the first request carrying
// it is held until release and then answered 401 (a late 401), any other
// request carrying it gets 401 at once; other tokens get the quotient
// familial. It records the Authorization of every request.
type lateProvider struct {
	srv     *httptest.Server
	held    chan struct{} // closed when the first request is held
	release chan struct{}
	mu      sync.Mutex
	auth    []string
}

func newLateProvider(t *testing.T) *lateProvider {
	p := &lateProvider{held: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		p.mu.Lock()
		p.auth = append(p.auth, auth)
		p.mu.Unlock()
		if auth == "Bearer upstream-token-1" {
			first := false
			once.Do(func() { first = true })
			if first {
				close(p.held)
				select {
				case <-p.release:
				case <-time.After(10 * time.Second):
				}
			}
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, qfBody)
	}))
	t.Cleanup(p.srv.Close)
	t.Cleanup(func() {
		select {
		case <-p.release:
		default:
			close(p.release)
		}
	})
	return p
}

func (p *lateProvider) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.auth[len(p.auth)-1]
}

// TestB11_LateProvider401KeepsTheFreshCredential: the review's attack
// through the real Caddy runtime. Request A leaves with token 1 and its
// 401 comes late; meanwhile request B is refused token 1, which is dropped,
// and succeeds with token 2. A's late 401 is about token 1: the handler
// hands the header it sent to Invalidate, token 2 stays, A's retry uses it,
// and no third token is requested.
func TestB11_LateProvider401KeepsTheFreshCredential(t *testing.T) {
	te := newTokenEndpoint(t)
	p := newLateProvider(t)
	start(t, options{MaxEntries: 5140, Recorder: p.srv.URL, OAuth2URL: te.srv.URL})

	lateA := make(chan answer, 1)
	go func() { lateA <- get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...) }()
	select {
	case <-p.held: // A carries token 1 and waits for its answer
	case <-time.After(10 * time.Second):
		t.Fatal("request A never reached the provider")
	}

	if b := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); b.status != 200 {
		t.Fatalf("request B: status %d: %s", b.status, b.body)
	}
	if te.calls.Load() != 2 || p.last() != "Bearer upstream-token-2" {
		t.Fatalf("after B's 401 and retry: %d token requests, provider last got %q", te.calls.Load(), p.last())
	}

	close(p.release) // A's 401 for token 1 arrives now
	if a := <-lateA; a.status != 200 {
		t.Fatalf("request A: status %d after its late 401: %s", a.status, a.body)
	}
	if n := te.calls.Load(); n != 2 {
		t.Fatalf("%d token requests: A's late 401 for token 1 threw token 2 away", n)
	}
	if got := p.last(); got != "Bearer upstream-token-2" {
		t.Fatalf("A's retry used %q", got)
	}
	if c := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); c.status != 200 || te.calls.Load() != 2 {
		t.Fatalf("request C: status %d, %d token requests", c.status, te.calls.Load())
	}
}
