package caddyplugin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestG02_PseudonymKeySeparateFromCacheSecret: the audit pseudonym key
// must not be the cache secret, given as the same reference or as another
// one holding the same value; distinct keys load.
// req: G02
func TestG02_PseudonymKeySeparateFromCacheSecret(t *testing.T) {
	dir := t.TempDir()
	habs := filepath.Join(dir, "h.yaml")
	if err := os.WriteFile(habs, []byte("habilitations:\n  - {id: a, label: A, siret: \"13002526500013\", modalities: [france_connect], france_connect_client_ids: [\"fs\"], scopes: [cnaf_quotient_familial]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const shared = "g02-canary-secret-0123456789abcdef0123456789"
	t.Setenv("G02_CACHE_SECRET", shared)
	t.Setenv("G02_SAME_VALUE", shared)
	t.Setenv("G02_PSEUDO_KEY", "g02-another-key-0123456789abcdef0123456789ab")
	for _, tc := range []struct {
		pseudo string
		ok     bool
	}{
		{"{env.G02_CACHE_SECRET}", false},
		{"{env.G02_SAME_VALUE}", false},
		{"{env.G02_PSEUDO_KEY}", true},
	} {
		app := &App{Mode: ModeSandbox, Habilitations: habs,
			FranceConnect: FranceConnectConfig{Issuer: "http://127.0.0.1:1/api/v2", ClientID: "fd", ClientSecret: "unit-fd-secret"},
			Cache:         CacheConfig{Secret: "{env.G02_CACHE_SECRET}", MaxEntries: 1602},
			Audit:         AuditConfig{PseudonymKey: tc.pseudo}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := app.Provision(ctx)
		cancel()
		_ = app.Cleanup()
		if (err == nil) != tc.ok {
			t.Errorf("pseudonym key %s: %v", tc.pseudo, err)
		}
		if err != nil && (strings.Contains(err.Error(), shared) || !strings.Contains(err.Error(), "must differ from the cache secret")) {
			t.Errorf("pseudonym key %s: error %q", tc.pseudo, err)
		}
	}
}

// TestG02_PseudonymKeySeparateFromSealKey: a configuration whose audit
// pseudonym key is the audit trail's seal key (which the auditors hold) is
// refused at load, through Caddy's own order (the logs, so their sealers,
// before the apps); distinct keys load.
// req: G02
func TestG02_PseudonymKeySeparateFromSealKey(t *testing.T) {
	dir := t.TempDir()
	habs := filepath.Join(dir, "h.yaml")
	if err := os.WriteFile(habs, []byte("habilitations:\n  - {id: a, label: A, siret: \"13002526500013\", modalities: [france_connect], france_connect_client_ids: [\"fs\"], scopes: [cnaf_quotient_familial]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const sealKey = "g02-seal-key-canary-0123456789abcdef0123456789"
	t.Setenv("G02S_SEAL_KEY", sealKey)
	t.Setenv("G02S_SAME_VALUE", sealKey)
	t.Setenv("G02S_PSEUDO_KEY", "g02-pseudonym-key-0123456789abcdef0123456789")
	for _, tc := range []struct {
		pseudo string
		ok     bool
	}{
		{"{env.G02S_SAME_VALUE}", false},
		{"{env.G02S_PSEUDO_KEY}", true},
	} {
		cfg, _ := json.Marshal(map[string]any{
			"admin": map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
			"logging": map[string]any{"logs": map[string]any{"audit": map[string]any{
				"include": []string{"passerelle.audit"},
				"writer":  map[string]any{"output": "discard"},
				"encoder": map[string]any{"format": "passerelle_sealed", "key": "{env.G02S_SEAL_KEY}", "key_id": "g02s"},
			}}},
			"apps": map[string]any{"passerelle": map[string]any{
				"mode": "sandbox", "habilitations": habs,
				"franceconnect": map[string]any{"issuer": "http://127.0.0.1:1/api/v2", "client_id": "fd", "client_secret": "unit-fd-secret"},
				"cache":         map[string]any{"secret": "g02-cache-secret-0123456789abcdef0123456789", "max_entries": 1602},
				"audit":         map[string]any{"pseudonym_key": tc.pseudo},
			}},
		})
		err := caddy.Load(cfg, true)
		_ = caddy.Stop()
		if (err == nil) != tc.ok {
			t.Errorf("pseudonym key %s: %v", tc.pseudo, err)
		}
		if err != nil && (strings.Contains(err.Error(), sealKey) || !strings.Contains(err.Error(), "must differ from the audit seal key")) {
			t.Errorf("pseudonym key %s: error %q", tc.pseudo, err)
		}
	}
}
