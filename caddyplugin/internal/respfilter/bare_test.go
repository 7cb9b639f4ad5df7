package respfilter

import (
	"errors"
	"testing"
)

// TestBare_V2Answers: on answers without envelope, only the released
// top-level members (and released paths below them) remain; the C06
// refusals still apply.
func TestBare_V2Answers(t *testing.T) {
	p, err := CompileBare([]string{"quotientFamilial", "annee", "mois", "enfants[].prenoms", "adresse.codePostalVille"})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"regime":"CNAF","allocataires":[{"nomNaissance":"CANARY"}],"enfants":[{"prenoms":"LEA","sexe":"F"}],` +
		`"adresse":{"identite":"Monsieur CANARY","codePostalVille":"75002 PARIS"},"quotientFamilial":2550,"annee":2024,"mois":2}`
	got, err := Filter(nil, []byte(body), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"enfants":[{"prenoms":"LEA"}],"adresse":{"codePostalVille":"75002 PARIS"},"quotientFamilial":2550,"annee":2024,"mois":2}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	none, err := CompileBare(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Filter(nil, []byte(body), none, Options{}); err != nil || string(got) != `{}` {
		t.Errorf("nothing released: %s %v", got, err)
	}

	for name, bad := range map[string]string{
		"array at the top":  `[{"quotientFamilial":1}]`,
		"duplicate member":  `{"quotientFamilial":1,"quotientFamilial":2}`,
		"trailing value":    `{"annee":1} {"annee":2}`,
		"empty body":        ``,
		"invalid UTF-8":     "{\"annee\":\"\xff\"}",
		"dropped duplicate": `{"x":{"a":1,"a":2},"annee":1}`,
		// Error answers sent with status 200: not an empty success.
		"v2 error":           `{"error":"not_found","reason":"CANARY","message":"Dossier allocataire inexistant."}`,
		"v3 errors":          `{"errors":[{"code":"37003","title":"CANARY"}]}`,
		"escaped error name": `{"annee":2024,"\u0065rror":"not_found"}`,
	} {
		if _, err := Filter(nil, []byte(bad), p, Options{}); !errors.Is(err, ErrUnfilterable) {
			t.Errorf("%s: err = %v, want ErrUnfilterable", name, err)
		}
	}
	deep := `{"annee":` + nest(40) + `}`
	if _, err := Filter(nil, []byte(deep), p, Options{}); !errors.Is(err, ErrUnfilterable) {
		t.Errorf("too deep: %v", err)
	}
	if _, err := CompileBare([]string{"x.", "", "a..b"}); err == nil {
		t.Error("malformed bare paths compiled")
	}
	if _, err := Compile([]string{"quotientFamilial"}); err == nil {
		t.Error("an enveloped allow-list accepted a path outside data, links, meta")
	}
}

func nest(n int) string {
	s := "1"
	for range n {
		s = "[" + s + "]"
	}
	return s
}
