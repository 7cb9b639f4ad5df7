package habilitation

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// entryWith is one block-style entry "a" with extra fields (indented lines).
func entryWith(extra string) string {
	return "habilitations:\n  - id: a\n    label: A\n    siret: \"13002526500013\"\n    scopes: [s]\n" + extra
}

func digestOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TestModalitiesRequired: a habilitation without modalities is refused, the
// error naming the entry, the field and the allowed values.
func TestModalitiesRequired(t *testing.T) {
	_, err := Parse([]byte(entryWith("    api_token_sha256: [\"" + digestOf("tok") + "\"]\n")))
	want := `habilitations[0] (id "a"): modalities: required (a non-empty list among france_connect, identite, identifiant)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// TestModalitiesInvalid: empty, null, scalar, unknown (any case or spelling),
// repeated or non-string modalities are refused, naming the entry and the
// position, never echoing the value.
func TestModalitiesInvalid(t *testing.T) {
	for _, tt := range []struct{ value, want string }{
		{"[]", "modalities: must be a non-empty list among france_connect, identite, identifiant"},
		{"~", "modalities: must be a non-empty list"},
		{"", "modalities: must be a non-empty list"},
		{"identite", "modalities: must be a non-empty list"},
		{"{identite: true}", "modalities: must be a non-empty list"},
		{"[[identite]]", "modalities: must be a non-empty list"},
		{"[IDENTITE]", "modalities[0]: must be one of france_connect, identite, identifiant"},
		{"[france-connect]", "modalities[0]: must be one of"},
		{"[\"identite \"]", "modalities[0]: must be one of"},
		{"[identite, sk_live_secretvalue]", "modalities[1]: must be one of"},
		{"[identite, identifiant, identite]", "modalities[2]: repeats modalities[0]"},
		{"[api_token]", "modalities[0]: must be one of"},
		{"[\"*\"]", "modalities[0]: must be one of"},
	} {
		_, err := Parse([]byte(entryWith("    modalities: " + tt.value + "\n")))
		if err == nil || !strings.Contains(err.Error(), `habilitations[0] (id "a"): `+tt.want) {
			t.Errorf("modalities %s: err = %v, want %q", tt.value, err, tt.want)
			continue
		}
		for _, v := range []string{"sk_live", "IDENTITE", "france-connect", "api_token"} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("modalities %s: error echoes a value: %v", tt.value, err)
			}
		}
	}
	_, err := Parse([]byte(entryWith("    modalities: [identite]\n    modalities: [france_connect]\n")))
	if err == nil || !strings.Contains(err.Error(), `field "modalities" repeated`) {
		t.Errorf("repeated field: %v", err)
	}
}

// TestAllows: each habilitation opens exactly the modalities it lists, by
// exact comparison; a credential alone opens nothing.
func TestAllows(t *testing.T) {
	const token = "pa_modalities-canary"
	r := mustParse(t, `habilitations:
  - {id: fc, label: a, siret: "13002526500013", scopes: [s], modalities: [france_connect], france_connect_client_ids: [`+fsClientID+`], api_token_sha256: ["`+digestOf(token)+`"]}
  - {id: idt, label: b, siret: "13002526500013", scopes: [s], modalities: [identite]}
  - {id: all, label: c, siret: "13002526500013", scopes: [s], modalities: [identifiant, identite, france_connect]}
`)
	want := map[string][]string{
		"fc":  {ModalityFranceConnect},
		"idt": {ModalityIdentite},
		"all": {ModalityFranceConnect, ModalityIdentite, ModalityIdentifiant},
	}
	for id, ms := range want {
		h, ok := r.ByID(id)
		if !ok {
			t.Fatalf("%s missing", id)
		}
		for _, m := range []string{ModalityFranceConnect, ModalityIdentite, ModalityIdentifiant} {
			allowed := false
			for _, x := range ms {
				allowed = allowed || x == m
			}
			if h.Allows(m) != allowed {
				t.Errorf("%s.Allows(%q) = %v", id, m, !allowed)
			}
		}
		for _, m := range []string{"", "IDENTITE", "identite ", " identite", "Identite", "france-connect", "*", "identite\x00"} {
			if h.Allows(m) {
				t.Errorf("%s.Allows(%q) = true", id, m)
			}
		}
	}
	// The API token of a FranceConnect-only habilitation still introspects
	// but opens neither the identite nor the identifiant modality.
	h, ok := r.ByAPIToken(token)
	if !ok || h.ID != "fc" || h.Allows(ModalityIdentite) || h.Allows(ModalityIdentifiant) {
		t.Errorf("ByAPIToken = %v, %v: a token opened a modality not granted", h, ok)
	}
	var nilH *Habilitation
	if nilH.Allows(ModalityFranceConnect) {
		t.Error("nil habilitation allows")
	}
}
