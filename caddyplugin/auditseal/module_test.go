package auditseal

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/logging" // json, console, filter
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func keyFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit-seal.key")
	if err := os.WriteFile(path, append(bytes.Clone(testKey), '\n'), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func provision(t *testing.T, e *Encoder) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return e.Provision(ctx)
}

// TestEncoderSealsRecords: records logged through zap with the encoder,
// fields added by With included, verify under the key as the key file
// holds it (its line end removed, as Caddy reads {file.path}).
func TestEncoderSealsRecords(t *testing.T) {
	e := &Encoder{Key: "{file." + keyFile(t, 0o600) + "}", KeyID: "module-test"}
	if err := provision(t, e); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	logger := zap.New(zapcore.NewCore(e, zapcore.AddSync(&out), zap.InfoLevel)).Named("passerelle.audit")
	logger.Info("access decision", zap.String("decision", "allow"), zap.Int("provider_status", 200))
	logger.With(zap.String("instance", "gw-1")).Info("access decision", zap.Strings("scopes", []string{"a", "b"}))
	logger.Info("access decision")

	v := NewVerifier(Options{Keys: map[string][][]byte{"module-test": {testKey}}})
	if err := v.Read("audit.log", bytes.NewReader(out.Bytes())); err != nil {
		t.Fatal(err)
	}
	if r := v.Report(); !r.OK() || r.Verified != 3 {
		t.Fatalf("%+v\n%s", r, out.String())
	}
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["logger"] != "passerelle.audit" || rec["seal_key"] != "module-test" {
			t.Fatalf("not a JSON record with its seal: %s (%v)", line, err)
		}
	}
	if !strings.Contains(out.String(), `"instance":"gw-1"`) {
		t.Fatalf("the With field is missing: %s", out.String())
	}
}

// TestEncoderRefuses: a literal key, a key file others can read, an empty
// reference, a short key, an inner encoder that does not write JSON.
func TestEncoderRefuses(t *testing.T) {
	t.Setenv("PASSERELLE_TEST_SEAL_EMPTY", "")
	t.Setenv("PASSERELLE_TEST_SEAL_SHORT", "short")
	for _, tc := range []struct {
		name string
		e    *Encoder
		want string
	}{
		{"a literal key", &Encoder{Key: string(testKey), KeyID: "k"}, "never a literal"},
		{"a literal around a reference", &Encoder{Key: "x{env.HOME}", KeyID: "k"}, "never a literal"},
		// Stat would check "<file>}x" while the replacer reads "<file>".
		{"a decoy after the reference", &Encoder{Key: "{file." + keyFile(t, 0o644) + "}x}", KeyID: "k"}, "never a literal"},
		{"a key file others read", &Encoder{Key: "{file." + keyFile(t, 0o644) + "}", KeyID: "k"}, "chmod 600"},
		{"no key file", &Encoder{Key: "{file./nonexistent/seal.key}", KeyID: "k"}, "unreadable"},
		{"an empty variable", &Encoder{Key: "{env.PASSERELLE_TEST_SEAL_EMPTY}", KeyID: "k"}, "empty"},
		{"a short key", &Encoder{Key: "{env.PASSERELLE_TEST_SEAL_SHORT}", KeyID: "k"}, "32 bytes"},
		{"a bad key id", &Encoder{Key: "{file." + keyFile(t, 0o600) + "}", KeyID: "a b"}, "key id"},
		{"console inside", &Encoder{Key: "{file." + keyFile(t, 0o600) + "}", KeyID: "k",
			WrappedRaw: json.RawMessage(`{"format":"console"}`)}, "one JSON object a line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := provision(t, tc.e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(testKey)) {
				t.Fatal("the error quotes the key")
			}
		})
	}
}

// TestCaddyfile: the options, the inner encoder, the refusals.
func TestCaddyfile(t *testing.T) {
	var e Encoder
	d := caddyfile.NewTestDispenser(`passerelle_sealed {
		key {file./etc/passerelle/audit-seal.key}
		key_id 2026-12
		wrap filter {
			wrap json
			fields {
				instance delete
			}
		}
	}`)
	if err := e.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if e.Key != "{file./etc/passerelle/audit-seal.key}" || e.KeyID != "2026-12" || !strings.Contains(string(e.WrappedRaw), `"format":"filter"`) {
		t.Fatalf("%+v %s", e, e.WrappedRaw)
	}
	for in, want := range map[string]string{
		"passerelle_sealed extra":                                        "wrong argument count",
		"passerelle_sealed {\n key_id k\n}":                              "required",
		"passerelle_sealed {\n key {env.K}\n}":                           "required",
		"passerelle_sealed {\n key {env.K} more\n key_id k\n}":           "wrong argument count",
		"passerelle_sealed {\n key {env.K}\n key_id k\n colour red\n}":   "unknown passerelle_sealed option",
		"passerelle_sealed {\n key {env.K}\n key_id k\n wrap nowhere\n}": "nowhere",
		"passerelle_sealed {\n wrap passerelle_sealed\n}":                "cannot wrap itself",
	} {
		var e Encoder
		err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
