package respfilter

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// qfBody is the quotient familial v3 sample of the brief (CNAF, sandbox-like).
const qfBody = `{"data":{"allocataires":[{"nom_naissance":"DUPONT","nom_usage":null,"prenoms":"PAUL LOUIS","date_naissance":"1962-08-24","sexe":"M"}],"enfants":[{"nom_naissance":"DUPONT","nom_usage":null,"prenoms":"PIERRE","date_naissance":"2018-01-10","sexe":"M"}],"adresse":{"destinataire":"Monsieur DUPONT PAUL","numero_libelle_voie":"1 RUE MONTORGUEIL","code_postal_ville":"75002 PARIS","pays":"FRANCE"},"quotient_familial":{"fournisseur":"CNAF","valeur":2550,"annee":2024,"mois":2,"annee_calcul":2024,"mois_calcul":12}},"links":{},"meta":{}}`

// mesriBody is a statut étudiant v3 answer (MESRI), pretty-printed like some
// providers answer, with an identity block that FC routes never return.
const mesriBody = `{
  "data": {
    "identite": {"nom_naissance": "MARTIN", "prenoms": ["JEAN"], "date_naissance": "2000-01-01"},
    "admissions": [
      {"date_debut": "2023-09-01", "date_fin": "2024-08-31", "est_inscrit": true,
       "regime_formation": {"libelle": "formation initiale", "code": "RF1"},
       "code_cog_insee_commune": "29085",
       "etablissement_etudes": {"uai": "0011402U", "nom": "EGC AIN"}},
      {"date_debut": "2022-09-01", "date_fin": "2023-08-31", "est_inscrit": false,
       "regime_formation": {"libelle": "formation continue", "code": "RF2"},
       "code_cog_insee_commune": "75056",
       "etablissement_etudes": {"uai": "0751717J", "nom": "UNIV PARIS"}},
      null
    ]
  },
  "links": {},
  "meta": {}
}`

// gipBody is a service civique v3 answer (GIP-MDS) with nested statuses.
const gipBody = `{"data":{"statut_actuel":{"contrat_trouve":true,"organisme_accueil":{"nom":"ASSO","siret":"12345678901234"},"date_debut_contrat":"2024-01-01","date_fin_contrat":"2024-12-31"},"statut_passe":{"contrat_trouve":false,"date_debut_contrat":"2022-01-01"}},"links":{},"meta":{}}`

func mustCompile(t testing.TB, paths ...string) *Paths {
	t.Helper()
	p, err := Compile(paths)
	if err != nil {
		t.Fatalf("Compile(%q): %v", paths, err)
	}
	return p
}

func TestC05_FilterEndpoints(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		paths []string
		want  string
	}{{
		name:  "QF cnaf_quotient_familial+cnaf_enfants: no allocataires, no adresse",
		body:  qfBody,
		paths: []string{"data.quotient_familial", "data.enfants"},
		want:  `{"data":{"enfants":[{"nom_naissance":"DUPONT","nom_usage":null,"prenoms":"PIERRE","date_naissance":"2018-01-10","sexe":"M"}],"quotient_familial":{"fournisseur":"CNAF","valeur":2550,"annee":2024,"mois":2,"annee_calcul":2024,"mois_calcul":12}},"links":{},"meta":{}}`,
	}, {
		name:  "QF cnaf_quotient_familial only",
		body:  qfBody,
		paths: []string{"data.quotient_familial"},
		want:  `{"data":{"quotient_familial":{"fournisseur":"CNAF","valeur":2550,"annee":2024,"mois":2,"annee_calcul":2024,"mois_calcul":12}},"links":{},"meta":{}}`,
	}, {
		name:  "QF all four scopes: identical to input",
		body:  qfBody,
		paths: []string{"data.allocataires", "data.enfants", "data.adresse", "data.quotient_familial"},
		want:  qfBody,
	}, {
		name:  "QF no scope: empty data",
		body:  qfBody,
		paths: nil,
		want:  `{"data":{},"links":{},"meta":{}}`,
	}, {
		name:  "MESRI admissions[] dates + est_inscrit, identite dropped, null element dropped",
		body:  mesriBody,
		paths: []string{"data.admissions[].date_debut", "data.admissions[].date_fin", "data.admissions[].est_inscrit"},
		want:  `{"data":{"admissions":[{"date_debut":"2023-09-01","date_fin":"2024-08-31","est_inscrit":true},{"date_debut":"2022-09-01","date_fin":"2023-08-31","est_inscrit":false}]},"links":{},"meta":{}}`,
	}, {
		name:  "MESRI nested object under array element released whole",
		body:  mesriBody,
		paths: []string{"data.admissions[].regime_formation"},
		want:  `{"data":{"admissions":[{"regime_formation":{"libelle": "formation initiale", "code": "RF1"}},{"regime_formation":{"libelle": "formation continue", "code": "RF2"}}]},"links":{},"meta":{}}`,
	}, {
		name:  "MESRI deep path inside array elements",
		body:  mesriBody,
		paths: []string{"data.admissions[].etablissement_etudes.uai"},
		want:  `{"data":{"admissions":[{"etablissement_etudes":{"uai":"0011402U"}},{"etablissement_etudes":{"uai":"0751717J"}}]},"links":{},"meta":{}}`,
	}, {
		name:  "GIP-MDS statut_actuel + organisme_accueil: statut_passe kept empty",
		body:  gipBody,
		paths: []string{"data.statut_actuel.contrat_trouve", "data.statut_actuel.organisme_accueil", "data.statut_passe.organisme_accueil"},
		want:  `{"data":{"statut_actuel":{"contrat_trouve":true,"organisme_accueil":{"nom":"ASSO","siret":"12345678901234"}},"statut_passe":{}},"links":{},"meta":{}}`,
	}, {
		name:  "GIP-MDS dates only",
		body:  gipBody,
		paths: []string{"data.statut_actuel.date_debut_contrat", "data.statut_actuel.date_fin_contrat", "data.statut_passe.date_debut_contrat", "data.statut_passe.date_fin_contrat"},
		want:  `{"data":{"statut_actuel":{"date_debut_contrat":"2024-01-01","date_fin_contrat":"2024-12-31"},"statut_passe":{"date_debut_contrat":"2022-01-01"}},"links":{},"meta":{}}`,
	}, {
		name:  "GIP-MDS parent absent from input stays absent",
		body:  `{"data":{"statut_actuel":{"contrat_trouve":true}},"links":{},"meta":{}}`,
		paths: []string{"data.statut_actuel.contrat_trouve", "data.statut_passe.contrat_trouve"},
		want:  `{"data":{"statut_actuel":{"contrat_trouve":true}},"links":{},"meta":{}}`,
	}, {
		name:  "AAH whole data released, new provider field kept inside it",
		body:  `{"data":{"status":"beneficiaire","date_debut_droit":"2020-01-01","nouveau":1},"links":{"x":"y"},"meta":{"m":1}}`,
		paths: []string{"data"},
		want:  `{"data":{"status":"beneficiaire","date_debut_droit":"2020-01-01","nouveau":1},"links":{},"meta":{}}`,
	}, {
		name:  "CNOUS v4 statut_boursier subtree",
		body:  `{"data":{"identite":{"nom":"X"},"email":"a@b.fr","statut_boursier":{"est_boursier":true,"est_radie":false,"date_radiation":null},"echelon_bourse":{"echelon":7}},"links":{},"meta":{}}`,
		paths: []string{"data.statut_boursier"},
		want:  `{"data":{"statut_boursier":{"est_boursier":true,"est_radie":false,"date_radiation":null}},"links":{},"meta":{}}`,
	}, {
		name:  "ANTS meta.identity_matching released, other meta dropped",
		body:  `{"data":{"identite_particulier":{"nom":"X"},"donnees_immatriculation_vehicule":{"numero":"AB-123-CD"}},"links":{},"meta":{"identity_matching":{"score":0.9},"debug":"x"}}`,
		paths: []string{"data.donnees_immatriculation_vehicule", "meta.identity_matching"},
		want:  `{"data":{"donnees_immatriculation_vehicule":{"numero":"AB-123-CD"}},"links":{},"meta":{"identity_matching":{"score":0.9}}}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.paths...)
			got, err := Filter(nil, []byte(tc.body), p, Options{})
			if err != nil {
				t.Fatalf("Filter: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Filter:\n got %s\nwant %s", got, tc.want)
			}
			if !jsontext.Value(got).IsValid() {
				t.Errorf("output is not valid JSON: %s", got)
			}
			// Idempotence: filtering the output again changes nothing.
			again, err := Filter(nil, got, p, Options{})
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("second Filter = %s, %v; want %s", again, err, got)
			}
		})
	}
}

func TestC05_Shapes(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		paths []string
		want  string
	}{{
		name:  "key order of the input is kept at every level",
		body:  `{"meta":{"b":2,"a":1},"links":{},"data":{"z":1,"y":{"d":1,"c":2},"x":3}}`,
		paths: []string{"data.x", "data.z", "data.y.c", "data.y.d", "meta.a", "meta.b"},
		want:  `{"meta":{"b":2,"a":1},"links":{},"data":{"z":1,"y":{"d":1,"c":2},"x":3}}`,
	}, {
		name:  "links and meta missing are added as {}",
		body:  `{"data":{"a":1}}`,
		paths: []string{"data.a"},
		want:  `{"data":{"a":1},"links":{},"meta":{}}`,
	}, {
		name:  "links and meta not objects become {}",
		body:  `{"data":{},"links":null,"meta":[1]}`,
		paths: []string{"links", "meta"},
		want:  `{"data":{},"links":{},"meta":{}}`,
	}, {
		name:  "unknown top-level members dropped",
		body:  `{"warnings":[{"code":"1"}],"data":{"a":1},"extra":{"b":2}}`,
		paths: []string{"data.a"},
		want:  `{"data":{"a":1},"links":{},"meta":{}}`,
	}, {
		name:  "x[] on a non-array is dropped",
		body:  `{"data":{"x":{"y":1},"k":1}}`,
		paths: []string{"data.x[].y", "data.k"},
		want:  `{"data":{"k":1},"links":{},"meta":{}}`,
	}, {
		name:  "x.y on an array is dropped",
		body:  `{"data":{"x":[{"y":1}],"k":1}}`,
		paths: []string{"data.x.y", "data.k"},
		want:  `{"data":{"k":1},"links":{},"meta":{}}`,
	}, {
		name:  "x.y on null or a scalar is dropped",
		body:  `{"data":{"x":null,"w":"s","k":1}}`,
		paths: []string{"data.x.y", "data.w.y", "data.k"},
		want:  `{"data":{"k":1},"links":{},"meta":{}}`,
	}, {
		name:  "fully released null is copied",
		body:  `{"data":{"x":null}}`,
		paths: []string{"data.x"},
		want:  `{"data":{"x":null},"links":{},"meta":{}}`,
	}, {
		name:  "x[] releases each element of an array, any element kind",
		body:  `{"data":{"x":[1,{"a":2},null,[3]]}}`,
		paths: []string{"data.x[]"},
		want:  `{"data":{"x":[1,{"a":2},null,[3]]},"links":{},"meta":{}}`,
	}, {
		name:  "non-object elements dropped when a member path follows",
		body:  `{"data":{"x":[1,{"a":2,"b":3},"s",{},[{"a":4}]]}}`,
		paths: []string{"data.x[].a"},
		want:  `{"data":{"x":[{"a":2},{}]},"links":{},"meta":{}}`,
	}, {
		name:  "arrays of arrays",
		body:  `{"data":{"m":[[{"a":1,"b":2}],[],{"a":3}]}}`,
		paths: []string{"data.m[][].a"},
		want:  `{"data":{"m":[[{"a":1}],[]]},"links":{},"meta":{}}`,
	}, {
		name:  "a released path subsumes a deeper one",
		body:  `{"data":{"x":{"y":1,"z":2}}}`,
		paths: []string{"data.x.y", "data.x"},
		want:  `{"data":{"x":{"y":1,"z":2}},"links":{},"meta":{}}`,
	}, {
		name:  "escaped member names are matched after unescaping and copied as sent",
		body:  `{"d\u0061ta":{"\u0071uotient":1,"other":2}}`,
		paths: []string{"data.quotient"},
		want:  `{"data":{"\u0071uotient":1},"links":{},"meta":{}}`,
	}, {
		name:  "whitespace everywhere",
		body:  " \n{ \"data\" : { \"a\" : [ 1 , 2 ] , \"b\" : 1 } } \n\t",
		paths: []string{"data.a"},
		want:  `{"data":{"a":[ 1 , 2 ]},"links":{},"meta":{}}`,
	}, {
		name:  "data released but empty",
		body:  `{"data":{}}`,
		paths: []string{"data.a.b"},
		want:  `{"data":{},"links":{},"meta":{}}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Filter(nil, []byte(tc.body), mustCompile(t, tc.paths...), Options{})
			if err != nil {
				t.Fatalf("Filter: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Filter:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// canary marks provider bytes that must never appear in an error message.
const canary = "CANARYPII"

func TestC06_Refusals(t *testing.T) {
	deep := func(n int) string { // n nested objects including the top level
		return `{"data":` + strings.Repeat(`{"`+canary+`":`, n-2) + `{}` + strings.Repeat("}", n-2) + "}"
	}
	deepArr := func(n int) string {
		return `{"data":{"x":` + strings.Repeat("[", n-2) + strings.Repeat("]", n-2) + "}}"
	}
	tests := []struct {
		name  string
		body  string
		paths []string
		want  error
	}{
		{"empty body", ``, nil, errSyntax},
		{"whitespace only", " \n", nil, errSyntax},
		{"not JSON", `<html>` + canary + `</html>`, nil, errSyntax},
		{"top level array", `[{"data":{}}]`, nil, errNotObject},
		{"top level string", `"` + canary + `"`, nil, errNotObject},
		{"top level null", `null`, nil, errNotObject},
		{"data missing", `{"links":{},"meta":{},"x":"` + canary + `"}`, nil, errNoData},
		{"data null", `{"data":null}`, nil, errDataNotObject},
		{"errors beside data", `{"data":{},"errors":[{"code":"37003","detail":"` + canary + `"}]}`, []string{"data"}, errErrorMember},
		{"error beside data", `{"error":"not_found","data":{"a":1}}`, []string{"data.a"}, errErrorMember},
		{"data array", `{"data":[{"a":"` + canary + `"}]}`, []string{"data"}, errDataNotObject},
		{"data string", `{"data":"` + canary + `"}`, nil, errDataNotObject},
		{"truncated", `{"data":{"a":"` + canary, []string{"data.a"}, errTruncated},
		{"truncated after top level members", `{"data":{}`, nil, errTruncated},
		{"trailing garbage", `{"data":{}}x` + canary, nil, errTrailing},
		{"trailing second value", `{"data":{}}{"data":{}}`, nil, errTrailing},
		{"trailing comma", `{"data":{},}`, nil, errSyntax},
		{"single quotes", `{'data':{}}`, nil, errSyntax},
		{"NaN", `{"data":{"a":NaN}}`, []string{"data.a"}, errSyntax},
		{"leading zero", `{"data":{"a":01}}`, nil, errSyntax},
		{"BOM", "\ufeff" + `{"data":{}}`, nil, errSyntax},
		{"non-string name", `{"data":{1:2}}`, nil, errSyntax},
		{"duplicate top level", `{"data":{},"data":{"` + canary + `":1}}`, nil, errDuplicate},
		{"duplicate escaped top level", `{"data":{},"d\u0061ta":{}}`, nil, errDuplicate},
		{"duplicate in walked object", `{"data":{"a":1,"a":2}}`, []string{"data.a"}, errDuplicate},
		{"duplicate in released subtree", `{"data":{"q":{"` + canary + `":1,"` + canary + `":2}}}`, []string{"data.q"}, errDuplicate},
		{"duplicate in dropped subtree", `{"data":{"q":{"` + canary + `":1,"` + canary + `":2}}}`, []string{"data.other"}, errDuplicate},
		{"duplicate in dropped top-level member", `{"data":{},"x":{"` + canary + `":1,"` + canary + `":2}}`, nil, errDuplicate},
		{"duplicate in array element", `{"data":{"x":[{"a":1,"a":1}]}}`, []string{"data.x[].a"}, errDuplicate},
		{"duplicate escaped", `{"data":{"x":{"a":1,"\u0061":1}}}`, nil, errDuplicate},
		{"invalid UTF-8 in dropped value", "{\"data\":{\"x\":\"" + canary + "\xff\"}}", nil, errUTF8},
		{"invalid UTF-8 in released value", "{\"data\":{\"x\":\"\xc3\x28\"}}", []string{"data.x"}, errUTF8},
		{"invalid UTF-8 in name", "{\"data\":{\"\xff\":1}}", nil, errUTF8},
		{"invalid UTF-8 in walked name", "{\"data\":{\"\xed\xa0\x80\":1}}", []string{"data.a"}, errUTF8},
		{"lone surrogate escape", `{"data":{"x":"\ud800"}}`, []string{"data.x"}, errSyntax},
		{"control byte in string", "{\"data\":{\"x\":\"a\x01b\"}}", nil, errSyntax},
		{"depth 33 in dropped subtree", deep(33), nil, errTooDeep},
		{"depth 33 in released subtree", deep(33), []string{"data"}, errTooDeep},
		{"depth 33 in walked path", deep(33), []string{"data." + canary + "." + canary}, errTooDeep},
		{"depth 33 arrays", deepArr(33), []string{"data.x"}, errTooDeep},
		{"depth 10001 arrays", deepArr(10001), nil, errTooDeep},
		{"depth 20000 unbalanced", `{"data":{"x":` + strings.Repeat("[", 20000), nil, errTooDeep},
		{"depth in top-level extra member", `{"data":{},"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, nil, errTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, err := Filter(dst, []byte(tc.body), mustCompile(t, tc.paths...), Options{})
			if err == nil {
				t.Fatalf("Filter accepted, output %s", got)
			}
			if !errors.Is(err, ErrUnfilterable) {
				t.Errorf("error %v does not wrap ErrUnfilterable", err)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), `"`) {
				t.Errorf("error message quotes the body: %q", err)
			}
			if string(got) != "prefix" {
				t.Errorf("dst changed on error: %q", got)
			}
		})
	}
}

func TestC06_DepthBoundary(t *testing.T) {
	nested := func(n int) string { // total depth n, top level included
		return `{"data":` + strings.Repeat(`{"a":`, n-2) + `{}` + strings.Repeat("}", n-2) + "}"
	}
	for _, paths := range [][]string{nil, {"data"}, {"data.a.a.a"}} {
		if _, err := Filter(nil, []byte(nested(32)), mustCompile(t, paths...), Options{}); err != nil {
			t.Errorf("paths %q: depth 32 refused: %v", paths, err)
		}
		if _, err := Filter(nil, []byte(nested(33)), mustCompile(t, paths...), Options{}); !errors.Is(err, errTooDeep) {
			t.Errorf("paths %q: depth 33: err = %v", paths, err)
		}
		if _, err := Filter(nil, []byte(nested(5)), mustCompile(t, paths...), Options{MaxDepth: 4}); !errors.Is(err, errTooDeep) {
			t.Errorf("paths %q: depth 5 with MaxDepth 4: err = %v", paths, err)
		}
	}
}

func TestC06_SizeLimit(t *testing.T) {
	body := []byte(`{"data":{"a":"` + strings.Repeat("x", 100) + `"}}`)
	if _, err := Filter(nil, body, nil, Options{MaxBytes: len(body)}); err != nil {
		t.Errorf("body at the limit refused: %v", err)
	}
	if _, err := Filter(nil, body, nil, Options{MaxBytes: len(body) - 1}); !errors.Is(err, errTooLarge) {
		t.Errorf("body over the limit: err = %v", err)
	}
	big := make([]byte, DefaultMaxBytes+1)
	if _, err := Filter(nil, big, nil, Options{}); !errors.Is(err, errTooLarge) {
		t.Errorf("1 MiB + 1 with defaults: err = %v", err)
	}
}

func TestFilter_DoesNotModifyBody(t *testing.T) {
	body := []byte(mesriBody)
	orig := bytes.Clone(body)
	for range 3 {
		if _, err := Filter(nil, body, mustCompile(t, "data.admissions[].est_inscrit"), Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(body, orig) {
		t.Fatal("Filter wrote to the body")
	}
}

func TestFilter_AppendsToDst(t *testing.T) {
	got, err := Filter([]byte("x="), []byte(`{"data":{"a":1}}`), mustCompile(t, "data.a"), Options{})
	if err != nil || string(got) != `x={"data":{"a":1},"links":{},"meta":{}}` {
		t.Fatalf("got %s, %v", got, err)
	}
}

func TestFilter_NilPaths(t *testing.T) {
	got, err := Filter(nil, []byte(qfBody), nil, Options{})
	if err != nil || string(got) != `{"data":{},"links":{},"meta":{}}` {
		t.Fatalf("got %s, %v", got, err)
	}
}

func TestFilter_Concurrent(t *testing.T) {
	p := mustCompile(t, "data.quotient_familial", "data.admissions[].est_inscrit")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				body, want := qfBody, `{"data":{"quotient_familial":{"fournisseur":"CNAF","valeur":2550,"annee":2024,"mois":2,"annee_calcul":2024,"mois_calcul":12}},"links":{},"meta":{}}`
				if (i+j)%3 == 0 {
					body, want = `{"data":{"x":[}`, ""
				}
				got, err := Filter(nil, []byte(body), p, Options{})
				if string(got) != want || (want == "") != (err != nil) {
					t.Errorf("got %s, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestFilter_ZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under -race")
	}
	p := mustCompile(t, "data.quotient_familial", "data.enfants")
	body := []byte(qfBody)
	dst := make([]byte, 0, 4096)
	Filter(dst, body, p, Options{}) // warm the pool
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Filter(dst[:0], body, p, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("Filter allocates %.1f times per call on the QF body", allocs)
	}
}
