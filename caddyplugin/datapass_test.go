package caddyplugin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
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

// TestMemoryStoreKey: a reload naming the same habilitations file another
// way keeps the same records; a store waiting for its resync is another.
func TestMemoryStoreKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "h.yaml")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	a := memoryStore(file, false)
	if memoryStore("h.yaml", false) != a || memoryStore("./h.yaml", false) != a || memoryStore(link, false) != a {
		t.Fatal("the same file, spelt another way, gets another store")
	}
	if w := memoryStore(file, true); w == a || w.Live().LiveReady() {
		t.Fatal("a store waiting for its resync must be its own, not ready")
	}
}
