package habilitation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	fsClientID    = "6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950"
	otherClientID = "b5e187b8619b73f12daa2c093e8eafe2789c4017883dff8b66c4bd6eaa451930"
)

const sample = `habilitations:
  - id: "12345"
    label: "Mairie de Montreuil — portail famille"
    siret: "21930048000015"
    modalities: [france_connect, identite]
    france_connect_client_ids: ["` + fsClientID + `"]
    scopes: [cnaf_quotient_familial, cnaf_allocataires]
    valid_from: 2024-01-01
    valid_until: 2027-12-31
    revoked: false
  - id: 678
    label: "DINUM — démonstrateur"
    siret: 13002526500013
    modalities: [identifiant]
    scopes: [cnaf_quotient_familial]
`

func mustParse(t *testing.T, s string) *Registry {
	t.Helper()
	r, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

func TestParseSample(t *testing.T) {
	r := mustParse(t, sample)
	if r.Len() != 2 {
		t.Fatalf("Len = %d", r.Len())
	}
	h, ok := r.ByClientID(fsClientID)
	if !ok || h.ID != "12345" || h.SIRET != "21930048000015" || h.Label != "Mairie de Montreuil — portail famille" {
		t.Fatalf("ByClientID = %+v, %v", h, ok)
	}
	if !h.HasScope("cnaf_allocataires") || h.HasScope("cnaf_adresse") || h.HasScope("") {
		t.Error("HasScope")
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	if want := time.Date(2024, 1, 1, 0, 0, 0, 0, paris); !h.ValidFrom.Equal(want) {
		t.Errorf("ValidFrom = %v", h.ValidFrom)
	}
	if want := time.Date(2028, 1, 1, 0, 0, 0, 0, paris); !h.ValidUntil.Equal(want) {
		t.Errorf("ValidUntil = %v (end of 2027-12-31, Paris)", h.ValidUntil)
	}
	if h2, ok := r.ByID("678"); !ok || h2.SIRET != "13002526500013" || len(h2.FranceConnectClientIDs) != 0 {
		t.Errorf("ByID(678) = %+v", h2)
	}
	for _, bad := range []string{"", strings.ToUpper(fsClientID), fsClientID + " ", " " + fsClientID, otherClientID, "12345"} {
		if _, ok := r.ByClientID(bad); ok {
			t.Errorf("ByClientID(%q) matched", bad)
		}
	}
	var nilR *Registry
	if _, ok := nilR.ByClientID(fsClientID); ok || nilR.Len() != 0 {
		t.Error("nil registry")
	}
	if got := len(r.All()); got != 2 {
		t.Errorf("All = %d", got)
	}
	if r0 := mustParse(t, "habilitations: []"); r0.Len() != 0 {
		t.Error("empty list")
	}
}

func TestByClientIDNoAlloc(t *testing.T) {
	r := mustParse(t, sample)
	if n := testing.AllocsPerRun(100, func() { r.ByClientID(fsClientID); r.ByClientID(otherClientID) }); n != 0 {
		t.Errorf("ByClientID allocates %v times", n)
	}
}

func TestC02_ActiveAt(t *testing.T) {
	r := mustParse(t, `habilitations:
  - {id: "1", label: "active", siret: "21930048000015", scopes: [a], modalities: [france_connect], valid_from: 2024-01-01, valid_until: 2027-12-31}
  - {id: "2", label: "revoked", siret: "21930048000015", scopes: [a], modalities: [france_connect], revoked: true}
  - {id: "3", label: "rfc3339", siret: "21930048000015", scopes: [a], modalities: [france_connect], valid_from: "2025-06-01T08:00:00Z", valid_until: "2025-06-01T12:00:00+02:00"}
  - {id: "4", label: "open", siret: "21930048000015", scopes: [a], modalities: [france_connect]}
`)
	paris, _ := time.LoadLocation("Europe/Paris")
	at := func(y int, m time.Month, d, h, min, s int, loc *time.Location) time.Time {
		return time.Date(y, m, d, h, min, s, 0, loc)
	}
	tests := []struct {
		id   string
		t    time.Time
		want bool
	}{
		{"1", at(2023, 12, 31, 23, 59, 59, paris), false}, // not yet valid
		{"1", at(2023, 12, 31, 23, 0, 0, time.UTC), true}, // 2024-01-01 00:00 Paris
		{"1", at(2024, 1, 1, 0, 0, 0, paris), true},
		{"1", at(2026, 6, 15, 12, 0, 0, time.UTC), true},
		{"1", at(2027, 12, 31, 23, 59, 59, paris), true}, // last second of the last day
		{"1", at(2027, 12, 31, 22, 59, 59, time.UTC), true},
		{"1", at(2028, 1, 1, 0, 0, 0, paris), false}, // expired
		{"1", at(2027, 12, 31, 23, 30, 0, time.UTC), false},
		{"2", at(2026, 1, 1, 0, 0, 0, time.UTC), false}, // revoked
		{"3", at(2025, 6, 1, 7, 59, 59, time.UTC), false},
		{"3", at(2025, 6, 1, 8, 0, 0, time.UTC), true},
		{"3", at(2025, 6, 1, 9, 59, 59, time.UTC), true},
		{"3", at(2025, 6, 1, 10, 0, 0, time.UTC), false}, // 12:00+02:00, exclusive
		{"4", time.Time{}, true},
		{"4", at(2999, 1, 1, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		h, ok := r.ByID(tt.id)
		if !ok {
			t.Fatalf("id %s missing", tt.id)
		}
		if got := h.ActiveAt(tt.t); got != tt.want {
			t.Errorf("id %s ActiveAt(%v) = %v, want %v", tt.id, tt.t, got, tt.want)
		}
	}
	var nilH *Habilitation
	if nilH.ActiveAt(time.Now()) || nilH.HasScope("a") {
		t.Error("nil habilitation")
	}
}

func TestC07_ValidSIRET(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"21930048000015", true},  // Luhn
		{"13002526500013", true},  // DINUM
		{"73282932000074", true},  // Luhn
		{"35600000000048", true},  // La Poste head office (Luhn)
		{"35600000049837", true},  // La Poste establishment: digit sum multiple of 5, Luhn fails
		{"21930048000016", false}, // Luhn fails
		{"35600000049838", false}, // La Poste, sum not multiple of 5
		{"12345678912345", false}, // sum multiple of 5 but not La Poste
		{"00000000000000", false}, // all zeros
		{"2193004800001", false},  // 13 digits
		{"219300480000150", false},
		{"219300480000 15", false},
		{" 21930048000015", false},
		{"21930048000015 ", false},
		{"219 300 480 00015", false},
		{"2193004800001５", false}, // fullwidth digit
		{"１3002526500013", false},
		{"2193004800001\u0661", false}, // Arabic-Indic digit
		{"+1930048000015", false},
		{"-1930048000015", false},
		{"2193004800001a", false},
		{"", false},
		{"21930048000015\x00", false},
	}
	for _, tt := range tests {
		if got := ValidSIRET(tt.s); got != tt.want {
			t.Errorf("ValidSIRET(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestC07_SIRETInRegistry(t *testing.T) {
	base := `habilitations:
  - id: "1"
    label: "x"
    scopes: [a]
    modalities: [identite]
    siret: `
	for _, s := range []string{`"21930048000015"`, `21930048000015`, `"35600000049837"`} {
		if _, err := Parse([]byte(base + s)); err != nil {
			t.Errorf("siret %s: %v", s, err)
		}
	}
	for _, s := range []string{`"21930048000016"`, `"2193004800001"`, `"219300480000150"`, `" 21930048000015"`, `"2193004800001５"`, `21930048000015.0`, `~`, `[21930048000015]`} {
		_, err := Parse([]byte(base + s))
		if err == nil || !strings.Contains(err.Error(), `habilitations[0] (id "1"): siret: not a valid SIRET`) {
			t.Errorf("siret %s: err = %v", s, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", `habilitations:
  - {id: "1", label: x, siret: "21930048000015", scopes: [a], modalities: [france_connect], client_secret: "s3cr3t-value-xyz"}`,
			[]string{`habilitations[0] (id "1"): unknown field "client_secret"`}},
		{"unknown top-level field", "habilitations: []\nextra: 1", []string{`unknown top-level field "extra"`}},
		{"missing required", `habilitations:
  - {id: "7"}`, []string{`habilitations[0] (id "7"): label: required`, `siret: required`, `scopes: required`,
			`modalities: required (a non-empty list among france_connect, identite, identifiant)`}},
		{"entry and field named", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect]}
  - {id: "2", label: b, siret: "21930048000015", scopes: [a], modalities: [france_connect]}
  - {id: "123", label: c, siret: "12345678901234", scopes: [a], modalities: [france_connect]}`, []string{`habilitations[2] (id "123"): siret: not a valid SIRET`}},
		{"duplicate ids", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect]}
  - {id: "1", label: b, siret: "21930048000015", scopes: [a], modalities: [france_connect]}`, []string{`habilitations[1] (id "1"): id: duplicate of habilitations[0] (id "1")`}},
		{"client id paired twice", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect], france_connect_client_ids: [` + fsClientID + `]}
  - {id: "2", label: b, siret: "21930048000015", scopes: [a], modalities: [france_connect], france_connect_client_ids: [` + otherClientID + `, ` + fsClientID + `]}`,
			[]string{`habilitations[1] (id "2"): france_connect_client_ids[1]: already paired with habilitations[0] (id "1")`}},
		{"client id repeated in an entry", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect], france_connect_client_ids: [abc, abc]}`,
			[]string{`france_connect_client_ids[1]: repeats france_connect_client_ids[0]`}},
		{"client id with spaces", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect], france_connect_client_ids: [" abc"]}`,
			[]string{`habilitations[0] (id "1"): france_connect_client_ids[0]: must be`}},
		{"empty scopes", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [], modalities: [france_connect]}`, []string{`scopes: must be a non-empty list`}},
		{"bad scope", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: ["CNAF QF"], modalities: [france_connect]}`, []string{`scopes[0]: must match`}},
		{"bad dates", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect], valid_from: 2024-02-30, valid_until: "demain"}`,
			[]string{`valid_from: not a valid date`, `valid_until: must be a date`}},
		{"until before from", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect], valid_from: 2025-01-01, valid_until: 2024-12-31}`,
			[]string{`valid_until: must be after valid_from`}},
		{"revoked not bool", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect], revoked: "yes"}`, []string{`revoked: must be true or false`}},
		{"revoked tagged yes", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect], revoked: !!bool yes}`, []string{`revoked: must be true or false`}},
		{"revoked tagged on", `habilitations:
  - {id: "1", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect], revoked: !!bool on}`, []string{`revoked: must be true or false`}},
		{"bad id not echoed", `habilitations:
  - {id: "sk_live_0123456789 secret", label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect]}`, []string{`habilitations[0]: id: must be`}},
		{"repeated field", `habilitations:
  - {id: "1", label: a, label: b, siret: "21930048000015", scopes: [a], modalities: [france_connect]}`, []string{`field "label" repeated`}},
		{"entry not a mapping", "habilitations:\n  - 12", []string{`habilitations[0]: must be a mapping`}},
		{"not a list", "habilitations: {}", []string{`"habilitations" must be a list`}},
		{"missing list", "foo: []", []string{`unknown top-level field "foo"`}},
		{"empty file", "", []string{`empty registry file`}},
		{"comment only", "# nothing\n", []string{`empty registry file`}},
		{"null list", "habilitations:", []string{`must be a list`}},
		{"two documents", "habilitations: []\n---\nhabilitations: []", []string{`exactly one YAML document`}},
		{"aliases", "x: &a 1\nhabilitations: []", []string{`aliases are not allowed`}},
		{"merge key", `habilitations:
  - {<<: {id: "1"}, label: a, siret: "21930048000015", scopes: [a], modalities: [france_connect]}`, []string{`habilitations[0]: unknown field (name not shown)`}},
		{"bad yaml", "habilitations: [", []string{`invalid YAML`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse accepted invalid input")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, secret := range []string{"s3cr3t", "sk_live", "demain", "12345678901234", "CNAF QF"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes a value: %q", err)
				}
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`habilitations:
  - {id: "1", label: a, siret: "1", scopes: [a], modalities: [france_connect]}
  - {id: "2", label: "", siret: "21930048000015", scopes: [a], modalities: [france_connect], foo: 1}
  - {id: "3", label: c, siret: "21930048000015", modalities: [identite]}`))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 4 {
		t.Fatalf("want 4 joined errors, got %v", err)
	}
	for _, w := range []string{`habilitations[0] (id "1"): siret`, `habilitations[1] (id "2"): label`, `habilitations[1] (id "2"): unknown field "foo"`, `habilitations[2] (id "3"): scopes: required`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h.yaml")
	if _, err := Load(p); err == nil {
		t.Error("missing file loaded")
	}
	writeFile(t, p, sample)
	r, err := Load(p)
	if err != nil || r.Len() != 2 {
		t.Fatalf("Load = %v, %v", r, err)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestF03_RateLimitField(t *testing.T) {
	base := "habilitations:\n  - id: a\n    label: A\n    siret: \"13002526500013\"\n    scopes: [s]\n    modalities: [identite]\n"
	r, err := Parse([]byte(base + "    rate_limit: \"50/m\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := r.ByID("a")
	if h.RateLimit != (Rate{Requests: 50, Per: time.Minute}) {
		t.Fatalf("rate %+v", h.RateLimit)
	}
	for _, bad := range []string{"0/s", "20", "20/d", "-1/s", "020/s", "1000001/s", "x/s"} {
		if _, err := Parse([]byte(base + "    rate_limit: \"" + bad + "\"\n")); err == nil || !strings.Contains(err.Error(), "rate_limit") {
			t.Errorf("%q accepted or error without the field: %v", bad, err)
		}
	}
}

// TestA19_APITokensStoredAsDigests: API tokens are found by their SHA-256;
// a token, a digest of another case or of another length is refused, and a
// digest held twice is an error.
func TestA19_APITokensStoredAsDigests(t *testing.T) {
	const token = "pa_sandbox-token-canary"
	sum := sha256.Sum256([]byte(token))
	digest := hex.EncodeToString(sum[:])
	base := "habilitations:\n  - id: a\n    label: A\n    siret: \"13002526500013\"\n    scopes: [s]\n    modalities: [identite]\n"
	r, err := Parse([]byte(base + "    api_token_sha256: [\"" + digest + "\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := r.ByAPIToken(token); !ok || h.ID != "a" {
		t.Fatal("token not found by its digest")
	}
	for _, other := range []string{"", digest, token + "x", strings.ToUpper(token)} {
		if _, ok := r.ByAPIToken(other); ok {
			t.Errorf("%q found", other)
		}
	}
	for _, bad := range []string{token, strings.ToUpper(digest), digest[:63]} {
		if _, err := Parse([]byte(base + "    api_token_sha256: [\"" + bad + "\"]\n")); err == nil || strings.Contains(err.Error(), bad) && bad == token {
			t.Errorf("%q accepted or echoed: %v", bad, err)
		}
	}
	two := base + "    api_token_sha256: [\"" + digest + "\"]\n  - id: b\n    label: B\n    siret: \"13002526500013\"\n    scopes: [s]\n    modalities: [identite]\n    api_token_sha256: [\"" + digest + "\"]\n"
	if _, err := Parse([]byte(two)); err == nil || !strings.Contains(err.Error(), "already held") {
		t.Errorf("digest held twice accepted: %v", err)
	}
}
