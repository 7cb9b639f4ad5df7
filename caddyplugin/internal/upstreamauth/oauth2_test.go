package upstreamauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

const (
	tokenCanary  = "CANARYUPSTREAMTOKEN"
	secretCanary = "CANARYCLIENTSECRET"
)

// tokenEndpoint is a stub OAuth2 token endpoint.
type tokenEndpoint struct {
	*httptest.Server
	calls     atomic.Int64
	expiresIn atomic.Int64
	delay     time.Duration
	mu        sync.Mutex
	handler   func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	e := &tokenEndpoint{}
	e.expiresIn.Store(300)
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := e.calls.Add(1)
		time.Sleep(e.delay)
		e.mu.Lock()
		h := e.handler
		e.mu.Unlock()
		if h != nil && h(w, r) {
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok || id != "passerelle" || secret != secretCanary || r.PostFormValue("grant_type") != "client_credentials" ||
			r.PostFormValue("scope") != "read write" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"%s-%d","token_type":"Bearer","expires_in":%d}`, tokenCanary, n, e.expiresIn.Load())
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *tokenEndpoint) setHandler(h func(w http.ResponseWriter, r *http.Request) bool) {
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Now()} }

func sealSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// testConfig is the configuration of newSource's sources, before their
// modifications.
func testConfig(e *tokenEndpoint) OAuth2Config {
	return OAuth2Config{
		Name: "cnaf", TokenURL: e.URL + "/token", ClientID: "passerelle", ClientSecret: secretCanary,
		Scopes: []string{"read", "write"}, Timeout: time.Second,
	}
}

// sharedKey is the Redis key of the token that newSource's sources share
// under seal.
func sharedKey(e *tokenEndpoint, seal []byte) string {
	return newSharedStore(nil, seal, sharedIdentity(testConfig(e)), time.Second).key
}

func newSource(t *testing.T, e *tokenEndpoint, mod ...func(*OAuth2Config)) Source {
	t.Helper()
	cfg := testConfig(e)
	for _, m := range mod {
		m(&cfg)
	}
	s, err := NewOAuth2(cfg)
	if err != nil {
		t.Fatalf("NewOAuth2: %v", err)
	}
	return s
}

func apply(t *testing.T, s Source) string {
	t.Helper()
	h := http.Header{}
	if err := s.Apply(context.Background(), h); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return h.Get("Authorization")
}

func bearer(n int) string { return fmt.Sprintf("Bearer %s-%d", tokenCanary, n) }

// sent is the header of a request that carried the Authorization value v.
func sent(v string) http.Header { return http.Header{"Authorization": {v}} }

func TestNewOAuth2_Config(t *testing.T) {
	e := newTokenEndpoint(t)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	ok := OAuth2Config{Name: "p", TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: secretCanary}
	for name, mod := range map[string]func(*OAuth2Config){
		"no name":            func(c *OAuth2Config) { c.Name = "" },
		"relative url":       func(c *OAuth2Config) { c.TokenURL = "/token" },
		"plain http":         func(c *OAuth2Config) { c.TokenURL = "http://auth.example/token" },
		"url with userinfo":  func(c *OAuth2Config) { c.TokenURL = "https://u:p@auth.example/token" },
		"redis without seal": func(c *OAuth2Config) { c.Redis = rdb },
		"short seal":         func(c *OAuth2Config) { c.Redis, c.SealSecret = rdb, make([]byte, 16) },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := NewOAuth2(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err = %v", name, err)
		} else if strings.Contains(err.Error(), secretCanary) {
			t.Errorf("%s: error shows the secret", name)
		}
	}
	noSecret := ok
	noSecret.ClientSecret = ""
	if _, err := NewOAuth2(noSecret); !errors.Is(err, ErrBadConfig) {
		t.Errorf("no secret: err = %v", err)
	}
	if _, err := NewOAuth2(ok); err != nil {
		t.Fatal(err)
	}
	s := newSource(t, e) // no network in the constructor
	if e.calls.Load() != 0 {
		t.Fatal("constructor called the token endpoint")
	}
	if str := fmt.Sprint(s); strings.Contains(str, secretCanary) {
		t.Fatal("String shows the client secret")
	}
}

// req: B11
func TestB11_OneFetchForConcurrentApply(t *testing.T) {
	e := newTokenEndpoint(t)
	e.delay = 50 * time.Millisecond
	s := newSource(t, e)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			h := http.Header{}
			if err := s.Apply(context.Background(), h); err != nil {
				t.Error(err)
				return
			}
			if got := h.Get("Authorization"); got != bearer(1) {
				t.Errorf("Authorization %q", got)
			}
		})
	}
	wg.Wait()
	if n := e.calls.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	if apply(t, s) != bearer(1) || e.calls.Load() != 1 {
		t.Fatal("cached token not reused")
	}
}

// req: B11
func TestB11_CancelledCallerDoesNotFailOthers(t *testing.T) {
	e := newTokenEndpoint(t)
	e.delay = 100 * time.Millisecond
	s := newSource(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- s.Apply(ctx, http.Header{}) }()
	time.Sleep(20 * time.Millisecond)
	second := make(chan string, 1)
	go func() { second <- apply(t, s) }()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTokenUnavailable) {
		t.Fatalf("first caller: %v", err)
	}
	if got := <-second; got != bearer(1) {
		t.Fatalf("second caller got %q", got)
	}
	if e.calls.Load() != 1 {
		t.Fatalf("token requests = %d", e.calls.Load())
	}
}

// req: B11
func TestB11_RefreshBeforeExpiry(t *testing.T) {
	for _, tc := range []struct {
		expiresIn int64
		refresh   time.Duration // expires_in - max(10%, 5s)
	}{
		{expiresIn: 100, refresh: 90 * time.Second},
		{expiresIn: 3600, refresh: 3240 * time.Second},
		{expiresIn: 20, refresh: 15 * time.Second},
	} {
		t.Run(fmt.Sprint(tc.expiresIn), func(t *testing.T) {
			e := newTokenEndpoint(t)
			e.expiresIn.Store(tc.expiresIn)
			c := newClock()
			s := newSource(t, e, func(cfg *OAuth2Config) { cfg.Now = c.Now })
			if apply(t, s) != bearer(1) {
				t.Fatal("first token")
			}
			c.Advance(tc.refresh - time.Millisecond)
			if apply(t, s) != bearer(1) || e.calls.Load() != 1 {
				t.Fatal("refreshed too early")
			}
			c.Advance(time.Millisecond)
			if apply(t, s) != bearer(2) || e.calls.Load() != 2 {
				t.Fatal("not refreshed at expires_in minus the margin")
			}
		})
	}

	t.Run("lifetime within the margin is not cached", func(t *testing.T) {
		e := newTokenEndpoint(t)
		e.expiresIn.Store(4)
		s := newSource(t, e)
		apply(t, s)
		apply(t, s)
		if e.calls.Load() != 2 {
			t.Fatalf("token requests = %d, want 2", e.calls.Load())
		}
	})
}

// req: B11, I09
func TestB11_InvalidateRefetches(t *testing.T) {
	mr := miniredis.RunT(t)
	e := newTokenEndpoint(t)
	seal := sealSecret()
	s := newSource(t, e, func(c *OAuth2Config) { c.Redis, c.SealSecret = client(t, mr), seal })
	if apply(t, s) != bearer(1) {
		t.Fatal("first token")
	}
	if len(mr.Keys()) != 1 {
		t.Fatalf("redis keys %v", mr.Keys())
	}
	s.Invalidate(context.Background(), sent(bearer(1))) // the provider answered 401
	if len(mr.Keys()) != 0 {
		t.Fatal("Invalidate left the shared token")
	}
	if apply(t, s) != bearer(2) || e.calls.Load() != 2 {
		t.Fatal("no refetch after Invalidate")
	}
}

// req: I09, B11
func TestI09_TokenEndpointDown(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter, r *http.Request) bool{
		"500": func(w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, "down", http.StatusInternalServerError)
			return true
		},
		"401 echoing the secret": func(w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, `{"error":"invalid_client","error_description":"`+secretCanary+`"}`, http.StatusUnauthorized)
			return true
		},
		"redirect": func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/elsewhere" {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"access_token":"redirected","token_type":"Bearer","expires_in":300}`)
				return true
			}
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			return true
		},
		"oversized": func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"x","token_type":"Bearer","expires_in":300,"pad":"%s"}`, strings.Repeat("a", 17<<10))
			return true
		},
		"header injection": func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"abc\r\nX-Admin: 1","token_type":"Bearer","expires_in":300}`)
			return true
		},
		"not bearer": func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"abc","token_type":"mac","expires_in":300}`)
			return true
		},
		"garbage": func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `<html>`)
			return true
		},
		"slow": func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
			}
			return true
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			e := newTokenEndpoint(t)
			e.setHandler(h)
			clk := newClock()
			s := newSource(t, e, func(c *OAuth2Config) { c.Timeout, c.Now = 200*time.Millisecond, clk.Now })
			hdr := http.Header{}
			start := time.Now()
			err := s.Apply(context.Background(), hdr)
			if !errors.Is(err, ErrTokenUnavailable) {
				t.Fatalf("err = %v, want ErrTokenUnavailable", err)
			}
			t.Logf("error: %v", err)
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %s", d)
			}
			if len(hdr) != 0 {
				t.Fatalf("header set on failure: %v", hdr)
			}
			if strings.Contains(err.Error(), secretCanary) || strings.Contains(err.Error(), "redirected") {
				t.Fatalf("error leaks the answer: %v", err)
			}
			// The endpoint recovers: errors were not cached (past the
			// pause that follows a failure, FetchBackoffMin).
			e.setHandler(nil)
			clk.Advance(FetchBackoffMin)
			if got := apply(t, s); !strings.HasPrefix(got, "Bearer "+tokenCanary) {
				t.Fatalf("after recovery %q", got)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		e := newTokenEndpoint(t)
		s := newSource(t, e)
		e.Close()
		if err := s.Apply(context.Background(), http.Header{}); !errors.Is(err, ErrTokenUnavailable) {
			t.Fatalf("err = %v", err)
		}
	})
}

func client(t *testing.T, mr *miniredis.Miniredis) redis.UniversalClient {
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true, MaxRetries: 1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 50 * time.Millisecond, WriteTimeout: 50 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// req: B11
func TestB11_SharedAcrossInstances(t *testing.T) {
	mr := miniredis.RunT(t)
	e := newTokenEndpoint(t)
	c := newClock()
	seal := sealSecret()
	shared := func(cfg *OAuth2Config) { cfg.Redis, cfg.SealSecret, cfg.Now = client(t, mr), seal, c.Now }
	a, b := newSource(t, e, shared), newSource(t, e, shared)
	if apply(t, a) != bearer(1) || apply(t, b) != bearer(1) {
		t.Fatal("second instance did not reuse the token")
	}
	if e.calls.Load() != 1 {
		t.Fatalf("token requests = %d, want 1", e.calls.Load())
	}
	// TTL = remaining lifetime minus margin: 300s - 30s.
	key := mr.Keys()[0]
	if ttl := mr.TTL(key); ttl <= 269*time.Second || ttl > 270*time.Second {
		t.Fatalf("TTL %s, want about 270s", ttl)
	}

	t.Run("another provider name or secret does not open it", func(t *testing.T) {
		for _, mod := range []func(*OAuth2Config){
			func(cfg *OAuth2Config) { cfg.Redis, cfg.SealSecret = client(t, mr), sealSecret() },
		} {
			before := e.calls.Load()
			other := newSource(t, e, mod)
			apply(t, other)
			if e.calls.Load() != before+1 {
				t.Fatal("a token sealed under another secret was used")
			}
		}
	})

	t.Run("tampered value is not used", func(t *testing.T) {
		key := sharedKey(e, seal)
		v, _ := mr.Get(key)
		_ = mr.Set(key, v[:len(v)-1]+string(v[len(v)-1]^1))
		before := e.calls.Load()
		apply(t, newSource(t, e, shared))
		if e.calls.Load() != before+1 {
			t.Fatal("tampered shared token used")
		}
	})

	t.Run("redis down degrades to per-instance fetching", func(t *testing.T) {
		mr2 := miniredis.RunT(t)
		rdb := client(t, mr2)
		mr2.Close()
		before := e.calls.Load()
		s := newSource(t, e, func(cfg *OAuth2Config) { cfg.Redis, cfg.SealSecret = rdb, seal })
		start := time.Now()
		if got := apply(t, s); !strings.HasPrefix(got, "Bearer "+tokenCanary) {
			t.Fatalf("got %q", got)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("took %s", d)
		}
		got := apply(t, s)
		if e.calls.Load() != before+1 {
			t.Fatal("token not cached in memory while Redis is down")
		}
		s.Invalidate(context.Background(), sent(got)) // must not block or panic
		if apply(t, s) == got || e.calls.Load() != before+2 {
			t.Fatal("Invalidate with Redis down kept the refused token")
		}
	})
}

// req: B11 — a Redis dump holds no raw token nor client secret.
func TestB11_RedisDumpHasNoToken(t *testing.T) {
	mr := miniredis.RunT(t)
	e := newTokenEndpoint(t)
	seal := sealSecret()
	for _, name := range []string{"cnaf", "cnous", "ants"} {
		apply(t, newSource(t, e, func(c *OAuth2Config) { c.Name, c.Redis, c.SealSecret = name, client(t, mr), seal }))
	}
	keys := mr.Keys()
	if len(keys) != 3 {
		t.Fatalf("keys %v", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, KeyPrefix) || len(k) != len(KeyPrefix)+64 || strings.Contains(k, "cnaf") {
			t.Fatalf("key %q", k)
		}
		v, _ := mr.Get(k)
		for _, c := range []string{tokenCanary, secretCanary, "Bearer"} {
			if strings.Contains(v, c) || strings.Contains(k, c) {
				t.Fatalf("%q found in Redis", c)
			}
		}
	}
}

// req: B11
// TestB11_OneFetchForTheCluster: concurrent first requests on two instances
// sharing one Redis make one token request for the whole cluster.
func TestB11_OneFetchForTheCluster(t *testing.T) {
	mr := miniredis.RunT(t)
	e := newTokenEndpoint(t)
	e.delay = 100 * time.Millisecond
	c := newClock()
	seal := sealSecret()
	shared := func(cfg *OAuth2Config) { cfg.Redis, cfg.SealSecret, cfg.Now = client(t, mr), seal, c.Now }
	a, b := newSource(t, e, shared), newSource(t, e, shared)
	var wg sync.WaitGroup
	for i := range 40 {
		src := []Source{a, b}[i%2]
		wg.Go(func() {
			if got := apply(t, src); got != bearer(1) {
				t.Errorf("got %q", got)
			}
		})
	}
	wg.Wait()
	if n := e.calls.Load(); n != 1 {
		t.Fatalf("token requests = %d for two instances, want 1", n)
	}
}
