package caddyplugin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/retry"
)

// retryCount reads caddy_passerelle_provider_retries_total{provider, outcome}.
func retryCount(t *testing.T, provider, outcome string) float64 {
	t.Helper()
	return pipelineCounter(t, "caddy_passerelle_provider_retries_total", map[string]string{"provider": provider, "outcome": outcome})
}

// freshBudgets gives a test retry budgets of their own: they live for the
// process.
func freshBudgets(t *testing.T) {
	t.Helper()
	budgets.reset()
	t.Cleanup(budgets.reset)
}

// dialFailure is what reverse_proxy returns when it cannot connect: Caddy's
// own HTTP transport dialling a closed port, its error as a handler error.
func dialFailure(t *testing.T) error {
	t.Helper()
	tr := new(reverseproxy.HTTPTransport)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := tr.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	_, err = tr.RoundTrip(httptest.NewRequest(http.MethodGet, "http://"+addr+"/", nil))
	if err == nil || !unsentError(err) {
		t.Fatalf("closed port: %v, not a dial error", err)
	}
	return caddyhttp.Error(http.StatusBadGateway, err)
}

// TestE09_RetryOnlyUnsentWithinBudget: a provider call that could not be
// sent is retried once, after a delay; a call whose answer had begun, or
// that failed otherwise, is not; and retries stop at the provider's budget
// (here its floor, 3, for 5 calls).
func TestE09_RetryOnlyUnsentWithinBudget(t *testing.T) {
	freshGuards(t)
	freshBudgets(t)
	f := newFixture(t)
	dialErr := dialFailure(t)
	var calls atomic.Int32
	serve := func(answer func(n int32, w http.ResponseWriter) error) int {
		calls.Store(0)
		return f.serveWith(t, context.Background(), testToken, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			return answer(calls.Add(1), w)
		})).Code
	}
	ok := func(w http.ResponseWriter) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(unitBody))
		return nil
	}

	before := retryCount(t, "CNAV", "retried")
	if code := serve(func(n int32, w http.ResponseWriter) error {
		if n == 1 {
			return dialErr
		}
		return ok(w)
	}); code != http.StatusOK || calls.Load() != 2 {
		t.Fatalf("connection refused once: status %d after %d calls, want 200 after 2", code, calls.Load())
	}
	if got := retryCount(t, "CNAV", "retried") - before; got != 1 {
		t.Fatalf("retried counted %v times", got)
	}

	for name, fail := range map[string]func(w http.ResponseWriter) error{
		"answer begun": func(w http.ResponseWriter) error {
			w.WriteHeader(http.StatusOK)
			return dialErr // as if: only the headers' arrival stops a retry
		},
		"cut mid-body": func(w http.ResponseWriter) error {
			w.WriteHeader(http.StatusOK)
			return caddyhttp.Error(http.StatusBadGateway, errors.New("body cut"))
		},
		"timeout": func(http.ResponseWriter) error {
			return caddyhttp.Error(http.StatusGatewayTimeout, context.DeadlineExceeded)
		},
	} {
		if code := serve(func(_ int32, w http.ResponseWriter) error { return fail(w) }); code < 500 || calls.Load() != 1 {
			t.Errorf("%s: status %d after %d calls, want an error after 1", name, code, calls.Load())
		}
	}

	// A new configuration with new guards and budgets: the circuit is
	// closed and no retry spent.
	freshGuards(t)
	freshBudgets(t)
	f = newFixture(t)
	exhausted := retryCount(t, "CNAV", "budget_exhausted")
	attempts := 0
	for range 5 { // the circuit opens after 5 failures
		if code := serve(func(int32, http.ResponseWriter) error { return dialErr }); code != http.StatusGatewayTimeout && code != http.StatusBadGateway {
			t.Fatalf("provider down: status %d", code)
		}
		attempts += int(calls.Load())
	}
	if attempts != 5+retry.DefaultFloor {
		t.Fatalf("%d attempts for 5 calls to a provider down, want %d (one retry each within the budget's floor)", attempts, 5+retry.DefaultFloor)
	}
	if got := retryCount(t, "CNAV", "budget_exhausted") - exhausted; got != 5-retry.DefaultFloor {
		t.Fatalf("budget_exhausted counted %v times, want %d", got, 5-retry.DefaultFloor)
	}
}
