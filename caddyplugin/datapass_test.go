package caddyplugin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/caddyserver/caddy/v2"

	"github.com/passerelle-gw/passerelle/config/datapass"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// TestDataPassSecrets: both webhook secrets need 16 bytes at least (a short
// previous secret would be guessed in a few HMACs).
func TestDataPassSecrets(t *testing.T) {
	dir := t.TempDir()
	habs := filepath.Join(dir, "h.yaml")
	if err := os.WriteFile(habs, []byte("habilitations:\n  - {id: a, datapass_id: \"7\", label: A, siret: \"13002526500013\", modalities: [france_connect], scopes: [cnaf_quotient_familial]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secret, previous string
		ok               bool
	}{
		{"a-webhook-secret-of-32-bytes-ok!", "", true},
		{"a-webhook-secret-of-32-bytes-ok!", "the-previous-one-16+", true},
		{"short", "", false},
		{"a-webhook-secret-of-32-bytes-ok!", "x", false},
	} {
		app := &App{Mode: ModeSandbox, Habilitations: habs,
			FranceConnect: FranceConnectConfig{Issuer: "http://127.0.0.1:1/api/v2", ClientID: "fd", ClientSecret: "unit-fd-secret"},
			DataPass:      &DataPassConfig{Secret: tc.secret, PreviousSecret: tc.previous}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := app.Provision(ctx)
		cancel()
		if (err == nil) != tc.ok {
			t.Errorf("secret %d bytes, previous %d bytes: %v", len(tc.secret), len(tc.previous), err)
		}
		if err != nil && (strings.Contains(err.Error(), tc.secret) || tc.previous != "" && strings.Contains(err.Error(), tc.previous)) {
			t.Errorf("the error quotes a secret: %v", err)
		}
		_ = app.Cleanup()
	}
}

// req: C12, C13
// TestRedisStoreAwaitsFirstResync: with Redis and DataPass's API, each
// configuration's store refuses a bound habilitation that has no record in
// its Redis (restarted empty, the record deleted, another Redis since the
// reload) until its own resync, instead of serving it on the file's word,
// even in a process that resynced before; without the API nothing can
// bring a lost record back, and the file governs (the documented limit).
func TestRedisStoreAwaitsFirstResync(t *testing.T) {
	mr := miniredis.RunT(t)
	dir := t.TempDir()
	habs := filepath.Join(dir, "h.yaml")
	if err := os.WriteFile(habs, []byte("habilitations:\n  - {id: a, datapass_id: \"7\", label: A, siret: \"13002526500013\", modalities: [france_connect], scopes: [cnaf_quotient_familial]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PASSERELLE_TEST_DP_API_SECRET", "a-datapass-api-client-secret")
	const apiURL = "https://datapass.invalid"
	served := func(api *DataPassAPIConfig) (bool, habilitation.LiveReadiness) {
		t.Helper()
		app := &App{Mode: ModeSandbox, Habilitations: habs,
			FranceConnect: FranceConnectConfig{Issuer: "http://127.0.0.1:1/api/v2", ClientID: "fd", ClientSecret: "unit-fd-secret"},
			Cache:         CacheConfig{Secret: "a-cache-secret-of-32-bytes-at-least!", Redis: &RedisConfig{Addrs: []string{mr.Addr()}}},
			DataPass:      &DataPassConfig{Secret: "a-webhook-secret-of-32-bytes-ok!", API: api}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		if err := app.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		defer app.Cleanup()
		h, ok := app.registry.Current().ByID("a")
		_, _, readiness := app.datapass.store.Live().LiveSnapshot()
		return ok && !h.Revoked, readiness
	}
	api := &DataPassAPIConfig{URL: apiURL, ClientID: "passerelle", ClientSecret: "{env.PASSERELLE_TEST_DP_API_SECRET}"}
	lastResyncs.Delete(apiURL)
	t.Cleanup(func() { lastResyncs.Delete(apiURL) })
	if ok, r := served(api); ok || r != habilitation.LiveUnresynced {
		t.Fatalf("before the first resync: served %v, readiness %v; want refused, unresynced", ok, r)
	}
	// A reload in a process that has resynced before (its store may read
	// another Redis, or one that lost the record since).
	lastResyncs.Store(apiURL, time.Now())
	if ok, r := served(api); ok || r != habilitation.LiveUnresynced {
		t.Fatalf("a reload after a resync: served %v, readiness %v; want refused, unresynced", ok, r)
	}
	if ok, r := served(nil); !ok || r != habilitation.LiveRead {
		t.Fatalf("without an API: served %v, readiness %v", ok, r)
	}
}

// TestMemoryStoreKey: a reload naming the same habilitations file another
// way keeps the same records, and so does a Kubernetes ConfigMap update
// (the mounted path stays, the links behind it move to a new directory);
// a store waiting for its resync is another.
func TestMemoryStoreKey(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"..2026_01_01_a", "..2026_01_02_b"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, v, "h.yaml"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// ConfigMap layout: h.yaml → ..data/h.yaml, ..data → ..<timestamp>.
	if err := os.Symlink("..2026_01_01_a", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "h.yaml")
	if err := os.Symlink(filepath.Join("..data", "h.yaml"), file); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	a := memoryStore(file, false)
	if memoryStore("h.yaml", false) != a || memoryStore("./h.yaml", false) != a || memoryStore(dir+"/x/../h.yaml", false) != a {
		t.Fatal("the same file, spelt another way, gets another store")
	}
	// The ConfigMap is updated: ..data now points at the new directory.
	if err := os.Rename(filepath.Join(dir, "..data"), filepath.Join(dir, "..data_old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2026_01_02_b", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if memoryStore(file, false) != a {
		t.Fatal("a ConfigMap update lost the records (the store is keyed by the link's target)")
	}
	if w := memoryStore(file, true); w == a || w.Live().LiveReady() {
		t.Fatal("a store waiting for its resync must be its own, not ready")
	}
}

// TestRedisStoreInForce: a configuration that starts adopts the narrowings
// the store in force applied alone and takes its place; one that stops
// while in force (a failed start) gives the place back, with its own
// narrowings; one that was replaced changes nothing when it stops.
func TestRedisStoreInForce(t *testing.T) {
	key := storeKey(filepath.Join(t.TempDir(), "h.yaml"))
	a, b, c := datapass.NewRedis(nil), datapass.NewRedis(nil), datapass.NewRedis(nil)
	startRedisStore(key, a)
	if redisStoreInForce(key) != a {
		t.Fatal("a is not in force after its start")
	}
	startRedisStore(key, b)
	stopRedisStore(key, a) // the replaced configuration stops
	if redisStoreInForce(key) != b {
		t.Fatal("the replaced configuration's stop took the place back")
	}
	startRedisStore(key, c)
	stopRedisStore(key, c) // c failed to start
	if redisStoreInForce(key) != b {
		t.Fatal("a failed start left its store in force")
	}
	stopRedisStore(key, c) // Cleanup after Stop
	if redisStoreInForce(key) != b {
		t.Fatal("a second stop changed the store in force")
	}
}

// TestDataPassWebhookChunkedCloses: a delivery framed by Transfer-Encoding
// closes its connection after the answer (SECURITY.md D11).
func TestDataPassWebhookChunkedCloses(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/datapass/webhook", nil)
	r.TransferEncoding = []string{"chunked"}
	w := httptest.NewRecorder()
	if err := new(DataPassHandler).ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Connection") != "close" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}
