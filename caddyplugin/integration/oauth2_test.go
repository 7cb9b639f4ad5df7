package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tokenEndpoint is an OAuth2 client-credentials endpoint that hands out
// numbered tokens, after delay, and counts its calls.
type tokenEndpoint struct {
	srv   *httptest.Server
	calls atomic.Int64
	delay atomic.Int64 // nanoseconds before each answer
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	te := new(tokenEndpoint)
	te.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := te.calls.Add(1)
		time.Sleep(time.Duration(te.delay.Load()))
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"upstream-token-%d","token_type":"Bearer","expires_in":3600}`, n)
	}))
	t.Cleanup(te.srv.Close)
	return te
}

// TestB11_OAuth2CredentialFetchedOnceAndRefreshedOn401: the platform's
// client-credentials token is fetched once for many requests, sent in
// Authorization, and on a provider 401 refreshed once and the call retried.
func TestB11_OAuth2CredentialFetchedOnceAndRefreshedOn401(t *testing.T) {
	te := newTokenEndpoint(t)
	rec := newRecorder(t)
	start(t, options{MaxEntries: 5001, Recorder: rec.srv.URL, OAuth2URL: te.srv.URL})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
				t.Errorf("status %d: %s", a.status, a.body)
			}
		}()
	}
	wg.Wait()
	if n := te.calls.Load(); n != 1 {
		t.Fatalf("%d token fetches for 20 requests, want 1", n)
	}
	if got := rec.last(t).Header.Get("Authorization"); got != "Bearer upstream-token-1" {
		t.Fatalf("provider got Authorization %q", got)
	}

	// The provider refuses the token once: one refresh, one retry, success.
	rec.mu.Lock()
	rec.refuse = "Bearer upstream-token-1"
	rec.mu.Unlock()
	before := rec.count()
	if a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("status %d after a provider 401: %s", a.status, a.body)
	}
	if rec.count()-before != 2 || te.calls.Load() != 2 {
		t.Fatalf("want one refused call, one refresh and one retry; got %d calls, %d fetches", rec.count()-before, te.calls.Load())
	}
	if got := rec.last(t).Header.Get("Authorization"); got != "Bearer upstream-token-2" {
		t.Fatalf("retry used Authorization %q", got)
	}
}

// TestI09_TokenEndpointDown: without its credential a request never leaves;
// the caller gets 503.
func TestI09_TokenEndpointDown(t *testing.T) {
	te := newTokenEndpoint(t)
	te.srv.Close()
	rec := newRecorder(t)
	start(t, options{MaxEntries: 5002, Recorder: rec.srv.URL, OAuth2URL: te.srv.URL})
	a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if a.status != 503 {
		t.Fatalf("status %d, want 503: %s", a.status, a.body)
	}
	if rec.count() != 0 {
		t.Fatal("a request left without its credential")
	}
}
