package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

const (
	qfOp = "api_particulier_v3_cnav_quotient_familial_with_france_connect"
	// qfCivilityOp: the identite route, on the same provider path.
	qfCivilityOp = "api_particulier_v3_cnav_quotient_familial_with_civility"
	fsClientID   = "6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950"
	fdClientID   = "423dcbdc5a15ece61ed00ff5989d72379c26d9ed4c8e4e05a87cffae019586e0"
	integIssuer  = "https://fcp-low.integ01.dev-franceconnect.fr/api/v2"
)

// Required fields of spec/france_connect_json_schema.json (siade_staging_data).
// TestOfficialSchemaRequiredFields checks this copy against the schema when
// ../shared is present.
var (
	schemaTopRequired   = []string{"aud", "iat", "iss", "token_introspection"}
	schemaInnerRequired = []string{"active", "aud", "sub", "iat", "exp", "acr", "jti", "scope", "gender",
		"family_name", "given_name", "given_name_array", "birthdate", "birthplace", "birthcountry"}
)

type introspection struct {
	Active         bool     `json:"active"`
	Aud            string   `json:"aud"`
	Sub            string   `json:"sub"`
	Acr            string   `json:"acr"`
	Jti            string   `json:"jti"`
	Scope          string   `json:"scope"`
	Gender         string   `json:"gender"`
	FamilyName     string   `json:"family_name"`
	GivenName      string   `json:"given_name"`
	GivenNameArray []string `json:"given_name_array"`
	Birthdate      string   `json:"birthdate"`
	Birthplace     string   `json:"birthplace"`
	Birthcountry   string   `json:"birthcountry"`
	IdpBirthdate   string   `json:"idp_birthdate"`
}

type checktoken struct {
	Aud string        `json:"aud"`
	Iss string        `json:"iss"`
	TI  introspection `json:"token_introspection"`
}

func decodeToken(t *testing.T, c *Case) checktoken {
	t.Helper()
	var ct checktoken
	if err := json.Unmarshal(c.Payload, &ct); err != nil {
		t.Fatalf("%s: %v", c.File, err)
	}
	return ct
}

// qfParams maps an identity pivot to the v3 CNAV provider parameters, as the
// gateway sends them (DOMAIN §3): no nomUsage, prenoms = given_name split on
// spaces, date parts as integers (0 omitted), M/F, commune only for 99100.
// qfParams is the quotient familial route's identity mapping, written by
// hand (TestQFParamsAgreesWithCatalogue checks it against the catalogue's),
// on the identity normalised as the gateway does it.
func qfParams(ti introspection) url.Values {
	q := url.Values{}
	q.Set("nomNaissance", catalogue.NormalizeName(ti.FamilyName))
	q["prenoms"] = strings.Fields(catalogue.NormalizeName(ti.GivenName))
	birthdate := catalogue.KnownBirthdate(ti.Birthdate, ti.IdpBirthdate)
	for i, name := range []string{"anneeDateNaissance", "moisDateNaissance", "jourDateNaissance"} {
		parts := strings.Split(birthdate, "-")
		if i < len(parts) {
			if n, err := strconv.Atoi(parts[i]); err == nil && n != 0 {
				q.Set(name, strconv.Itoa(n))
			}
		}
	}
	if ti.Gender == "male" {
		q.Set("sexeEtatCivil", "M")
	} else {
		q.Set("sexeEtatCivil", "F")
	}
	q.Set("codeCogInseePaysNaissance", ti.Birthcountry)
	if ti.Birthcountry == "99100" {
		q.Set("codeCogInseeCommuneNaissance", ti.Birthplace)
	}
	return q
}

func hasScopes(scope string, want ...string) bool {
	have := strings.Fields(scope)
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func TestEmbeddedLoads(t *testing.T) {
	s := Embedded()
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, ep := range cat.Endpoints {
		ops = append(ops, ep.OperationID)
	}
	slices.Sort(ops)
	ops = slices.Compact(ops) // the two modalities of a v2 route share one
	if got := s.Operations(); !slices.Equal(got, ops) || !slices.Contains(got, qfOp) {
		t.Fatalf("Operations() = %v, want the catalogue's operation ids %v", got, ops)
	}
	var names []string
	for _, c := range s.Tokens() {
		names = append(names, c.Params["token"].(string))
	}
	slices.Sort(names)
	want := []string{"all_fc", "aucun_dossier", "caracteres_speciaux", "cnaf_aeeh", "cnaf_qf_partial", "cnaf_qfv2", "cnous", "cnous_with_less_scopes",
		"date_presumee", "inactive", "low_scopes", "ne_a_l_etranger", "nom_decompose", "provider_error", "unpaired_service"}
	if !slices.Equal(names, want) {
		t.Fatalf("tokens = %v, want %v", names, want)
	}
	if _, err := EmbeddedFS().Open("README.md"); err != nil {
		t.Fatalf("README.md not embedded: %v", err)
	}
	// Embedded keys are unique per folder: no case shadows another.
	for _, op := range s.Operations() {
		seen := map[string]string{}
		for _, c := range s.Cases(op) {
			if prev, dup := seen[c.key]; dup {
				t.Errorf("%s: %s has the same params as %s", op, c.File, prev)
			}
			seen[c.key] = c.File
		}
	}
}

// checkTokenSchema checks a token payload against the required fields and
// types of spec/france_connect_json_schema.json. An inactive token must be
// exactly {"active": false}, as FranceConnect answers.
func checkTokenSchema(payload []byte) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return err
	}
	for _, k := range schemaTopRequired {
		if _, ok := top[k]; !ok {
			return fmt.Errorf("missing %s", k)
		}
	}
	isInt := func(v any) bool {
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := strconv.ParseInt(string(n), 10, 64)
		return err == nil
	}
	str2 := func(v any) bool { s, ok := v.(string); return ok && len([]rune(s)) >= 2 }
	if !str2(top["aud"]) || !str2(top["iss"]) || !isInt(top["iat"]) {
		return errors.New("bad aud/iss/iat types")
	}
	ti, ok := top["token_introspection"].(map[string]any)
	if !ok {
		return errors.New("token_introspection: not an object")
	}
	if ti["active"] == false {
		if len(ti) != 1 {
			return errors.New(`inactive token_introspection must be exactly {"active": false}`)
		}
		return nil
	}
	for _, k := range schemaInnerRequired {
		if _, ok := ti[k]; !ok {
			return fmt.Errorf("token_introspection: missing %s", k)
		}
	}
	if ti["active"] != true {
		return errors.New("active: not a boolean")
	}
	for _, k := range []string{"aud", "sub", "acr", "jti", "scope", "family_name", "given_name"} {
		if !str2(ti[k]) {
			return fmt.Errorf("token_introspection.%s: not a string of length ≥ 2", k)
		}
	}
	for _, k := range []string{"birthdate", "birthplace", "birthcountry"} {
		if _, ok := ti[k].(string); !ok {
			return fmt.Errorf("token_introspection.%s: not a string", k)
		}
	}
	if !isInt(ti["iat"]) || !isInt(ti["exp"]) {
		return errors.New("token_introspection.iat/exp: not integers")
	}
	if g := ti["gender"]; g != "male" && g != "female" {
		return errors.New("token_introspection.gender: not male|female")
	}
	arr, ok := ti["given_name_array"].([]any)
	if !ok {
		return errors.New("token_introspection.given_name_array: not an array")
	}
	for _, e := range arr {
		if s, ok := e.(string); !ok || s == "" {
			return errors.New("token_introspection.given_name_array: items must be non-empty strings")
		}
	}
	return nil
}

var (
	subRe = regexp.MustCompile(`^[0-9a-f]{64}v1$`)
	hexRe = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func TestEmbeddedTokensSchema(t *testing.T) {
	for _, c := range Embedded().Tokens() {
		t.Run(c.File, func(t *testing.T) {
			if err := checkTokenSchema(c.Payload); err != nil {
				t.Fatalf("schema: %v", err)
			}
			if c.Status != 200 {
				t.Errorf("status %d", c.Status)
			}
			ct := decodeToken(t, c)
			if ct.Aud != fdClientID || ct.Iss != integIssuer {
				t.Errorf("outer aud/iss = %q %q", ct.Aud, ct.Iss)
			}
			if !ct.TI.Active {
				return
			}
			wantAud := fsClientID
			if c.Params["token"] == "unpaired_service" {
				if ct.TI.Aud == fsClientID || !hexRe.MatchString(ct.TI.Aud) || !strings.HasPrefix(ct.TI.Aud, "b5e1") {
					t.Errorf("unpaired_service aud = %q", ct.TI.Aud)
				}
				wantAud = ct.TI.Aud
			}
			if ct.TI.Aud != wantAud || ct.TI.Acr != "eidas1" || !subRe.MatchString(ct.TI.Sub) || len(ct.TI.Jti) < 32 {
				t.Errorf("aud/acr/sub/jti = %q %q %q %q", ct.TI.Aud, ct.TI.Acr, ct.TI.Sub, ct.TI.Jti)
			}
			if !slices.Equal(ct.TI.GivenNameArray, strings.Fields(ct.TI.GivenName)) {
				t.Errorf("given_name_array %v vs given_name %q", ct.TI.GivenNameArray, ct.TI.GivenName)
			}
		})
	}
}

func TestEmbeddedTokenIdentities(t *testing.T) {
	s := Embedded()
	want := map[string]struct{ family, given, gender, birth, place, scope string }{
		"cnaf_qfv2":           {"CNAF", "Georges", "male", "2002-01-01", "75002", "openid identite_pivot cnaf_quotient_familial cnaf_allocataires cnaf_enfants cnaf_adresse"},
		"all_fc":              {"Delatour", "Thomas", "male", "1994-04-16", "75111", ""},
		"cnaf_qf_partial":     {"DUBOIS", "Angela Claire Louise", "female", "1962-08-24", "75107", "openid identite_pivot cnaf_quotient_familial cnaf_enfants"},
		"caracteres_speciaux": {"DUBINÔRE", "Joëlle Françoise", "female", "1992-08-15", "75117", ""},
		"low_scopes":          {"Delatour", "Thomas", "male", "1994-04-16", "75111", "openid"},
	}
	for tok, w := range want {
		c, ok := s.Token(tok)
		if !ok {
			t.Fatalf("token %s missing", tok)
		}
		ti := decodeToken(t, c).TI
		if ti.FamilyName != w.family || ti.GivenName != w.given || ti.Gender != w.gender || ti.Birthdate != w.birth ||
			ti.Birthplace != w.place || ti.Birthcountry != "99100" {
			t.Errorf("%s identity = %+v", tok, ti)
		}
		if w.scope != "" && ti.Scope != w.scope {
			t.Errorf("%s scope = %q", tok, ti.Scope)
		}
	}
	all, _ := s.Token("all_fc")
	if sc := decodeToken(t, all).TI.Scope; len(strings.Fields(sc)) != 45 || !hasScopes(sc, "dsnj_statut_service_national", "gip_mds_service_civique_dates", "eaje_allocataires") {
		t.Errorf("all_fc scopes = %q", sc)
	}
	if _, ok := s.Token("CNAF_QFV2"); ok {
		t.Error("Token lookup must be case-sensitive")
	}
	if _, ok := s.Token(""); ok {
		t.Error("empty bearer matched a token")
	}
}

// Every valid token carrying the QF scopes hits exactly one QF case: a 200
// one, except provider_error which hits the 500 case. The 404 case is never
// hit by an FC identity.
func TestEmbeddedQFIdentitiesMatchOneCase(t *testing.T) {
	s := Embedded()
	// The FranceConnect route calls the identite path: the cases of both
	// of its folders answer it.
	ops := []string{qfOp, qfCivilityOp}
	cases := append(s.Cases(qfOp), s.Cases(qfCivilityOp)...)
	hits := map[string]string{}
	for _, tc := range s.Tokens() {
		ti := decodeToken(t, tc).TI
		tok := tc.Params["token"].(string)
		if !ti.Active || !hasScopes(ti.Scope, "cnaf_quotient_familial") {
			continue
		}
		q := qfParams(ti)
		var matched []*Case
		for _, c := range cases {
			if k, _ := requestKey(q, nil); k == c.key {
				matched = append(matched, c)
			}
		}
		if tok == "aucun_dossier" {
			// Known nowhere: the folder's 404 answers (TestEmbeddedRoutesNotFound).
			if len(matched) != 0 {
				t.Errorf("%s: identity matches %s", tok, matched[0].File)
			}
			continue
		}
		if len(matched) != 1 {
			t.Errorf("%s: identity matches %d cases, want 1", tok, len(matched))
			continue
		}
		wantStatus := 200
		if tok == "provider_error" {
			wantStatus = 500
		}
		if matched[0].Status != wantStatus {
			t.Errorf("%s: hits %s with status %d, want %d", tok, matched[0].File, matched[0].Status, wantStatus)
		}
		// Through Match, with the gateway's extra params ignored.
		q.Set("recipient", "13002526500013")
		q.Set("annee", "2025")
		got, ok := s.Match(ops, q, []string{"recipient", "annee", "mois"})
		if !ok || got != matched[0] {
			t.Errorf("%s: Match = %v, %v", tok, got, ok)
		}
		hits[tok] = matched[0].File
	}
	want := map[string]string{
		"cnaf_qfv2":           "200_cnaf_georges_cnaf_couple_1_enfant.yaml",
		"unpaired_service":    "200_cnaf_georges_cnaf_couple_1_enfant.yaml",
		"all_fc":              "200_msa_thomas_delatour_1_parent_2_enfants.yaml",
		"cnaf_qf_partial":     "200_cnaf_angela_dubois_1_parent_1_enfant_majeur.yaml",
		"caracteres_speciaux": "200_cnaf_joelle_dubinore_2_parents_2_mineurs.yaml",
		// Decomposed accents, mixed case: normalised as callers' identities.
		"nom_decompose": "200_cnaf_joelle_dubinore_2_parents_2_mineurs.yaml",
		// Presumed day (idp_birthdate 1987-11): year and month only.
		"date_presumee":  "200_maelle_le_goff_date_partielle.yaml",
		"provider_error": "500_cnav_erreur_fournisseur.yaml",
	}
	for tok, file := range want {
		if hits[tok] != file {
			t.Errorf("%s hits %q, want %q", tok, hits[tok], file)
		}
	}
	// Every 200 case is reachable by some token.
	reached := map[string]bool{}
	for _, f := range hits {
		reached[f] = true
	}
	for _, c := range s.Cases(qfOp) {
		if c.Status == 200 && !reached[c.File] {
			t.Errorf("%s is reachable by no token", c.File)
		}
		if c.Status == 200 {
			var body struct {
				Data struct {
					Allocataires []json.RawMessage `json:"allocataires"`
					Enfants      []json.RawMessage `json:"enfants"`
					Adresse      map[string]any    `json:"adresse"`
					QF           map[string]any    `json:"quotient_familial"`
				} `json:"data"`
				Links map[string]any `json:"links"`
				Meta  map[string]any `json:"meta"`
			}
			if err := json.Unmarshal(c.Payload, &body); err != nil || len(body.Data.Allocataires) == 0 ||
				body.Data.Enfants == nil || len(body.Data.Adresse) != 7 || len(body.Data.QF) != 6 || body.Links == nil || body.Meta == nil {
				t.Errorf("%s: payload not in the v3 QF shape (%v)", c.File, err)
			}
		}
	}
}

func TestEmbeddedNotFound(t *testing.T) {
	s := Embedded()
	c, ok := s.NotFound(qfOp)
	if !ok || c.File != "404.yaml" || c.Status != 404 {
		t.Fatalf("NotFound = %+v, %v", c, ok)
	}
	var body struct {
		Errors []struct {
			Code string `json:"code"`
			Meta struct {
				Provider string `json:"provider"`
			} `json:"meta"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(c.Payload, &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != "37003" || body.Errors[0].Meta.Provider != "CNAV" {
		t.Errorf("404 payload = %s", c.Payload)
	}
	if _, ok := s.NotFound("nope"); ok {
		t.Error("NotFound on an unknown operation")
	}
	if _, ok := s.NotFound(TokenFolder); ok {
		t.Error("the token folder is not an operation")
	}
}

func mustLoad(t *testing.T, files map[string]string) *Set {
	t.Helper()
	fsys := fstest.MapFS{}
	for p, d := range files {
		fsys[p] = &fstest.MapFile{Data: []byte(d)}
	}
	s, err := Load(fsys)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func TestMatchRules(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"op/a.yml": `params: {nomNaissance: "DUBOIS", prenoms: ["Angela", "Claire"], anneeDateNaissance: 1962, moisDateNaissance: 8}
status: 200
payload: '{"case":"a"}'`,
		"op/b.yml": `params: {nomNaissance: "Martin", code: "08480", annee: "2002"}
status: 200
payload: '{"case":"b"}'`,
		"op/c.yml": `params: {nomNaissance: "Solo", prenoms: "Jean Paul"}
status: 200
payload: '{"case":"c"}'`,
		"op/d.yml": `params: {nomNaissance: "Vide", prenoms: [], nomUsage: ~}
status: 200
payload: '{"case":"d"}'`,
		"op/e.yml": `params: {nomNaissance: "MARTIN", code: "08480", annee: "2002"}
status: 201
payload: '{"case":"e (shadowed by b)"}'`,
		"op2/f.yml": `params: {nomNaissance: "DUBOIS", prenoms: ["Angela", "Claire"], anneeDateNaissance: 1962, moisDateNaissance: 8}
status: 202
payload: '{"case":"f"}'`,
		"op/README.md":   "ignored",
		"op/summary.csv": "ignored",
	})
	type q = url.Values
	tests := []struct {
		name   string
		ops    []string
		query  url.Values
		ignore []string
		want   string // file, "" = no match
	}{
		{"exact", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, "a.yml"},
		{"values case-insensitive", []string{"op"}, q{"nomNaissance": {"dubois"}, "prenoms": {"ANGELA", "cLaIrE"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, "a.yml"},
		{"prenoms[] key", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms[]": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, "a.yml"},
		{"keys case-sensitive", []string{"op"}, q{"NomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, ""},
		{"array order matters", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Claire", "Angela"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, ""},
		{"array shorter", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, ""},
		{"array joined is not an array", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, ""},
		{"int vs leading zero", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"08"}}, nil, ""},
		{"int vs plus sign", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"+1962"}, "moisDateNaissance": {"8"}}, nil, ""},
		{"digit string case kept as written", []string{"op"}, q{"nomNaissance": {"martin"}, "code": {"08480"}, "annee": {"2002"}}, nil, "b.yml"},
		{"digit string not numeric", []string{"op"}, q{"nomNaissance": {"martin"}, "code": {"8480"}, "annee": {"2002"}}, nil, ""},
		{"first file wins", []string{"op"}, q{"nomNaissance": {"MARTIN"}, "code": {"08480"}, "annee": {"2002"}}, nil, "b.yml"},
		{"ignored params", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}, "recipient": {"13002526500013"}, "mois": {"2"}}, []string{"recipient", "annee", "mois"}, "a.yml"},
		{"ignore drops a case key too", []string{"op"}, q{"nomNaissance": {"martin"}, "code": {"08480"}, "annee": {"2002"}}, []string{"annee"}, ""},
		{"extra param", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}, "recipient": {"13002526500013"}}, nil, ""},
		{"extra empty param", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}, "nomUsage": {""}}, nil, ""},
		{"no partial match", []string{"op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}}, nil, ""},
		{"empty query", []string{"op"}, q{}, nil, ""},
		{"single value vs string case", []string{"op"}, q{"nomNaissance": {"solo"}, "prenoms": {"jean paul"}}, nil, "c.yml"},
		{"single value vs split", []string{"op"}, q{"nomNaissance": {"solo"}, "prenoms": {"jean", "paul"}}, nil, ""},
		{"empty case array dropped, null is empty", []string{"op"}, q{"nomNaissance": {"vide"}, "nomUsage": {""}}, nil, "d.yml"},
		{"key with no values dropped", []string{"op"}, q{"nomNaissance": {"vide"}, "nomUsage": {""}, "prenoms": {}}, nil, "d.yml"},
		{"ambiguous prenoms and prenoms[]", []string{"op"}, q{"nomNaissance": {"solo"}, "prenoms": {"jean paul"}, "prenoms[]": {"x"}}, nil, ""},
		{"operations in order", []string{"op2", "op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, "f.yml"},
		{"unknown operation skipped", []string{"nope", "op"}, q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela", "Claire"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}}, nil, "a.yml"},
		{"no operation", nil, q{"nomNaissance": {"DUBOIS"}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := s.Match(tt.ops, tt.query, tt.ignore)
			got := ""
			if ok {
				got = c.File
			}
			if got != tt.want {
				t.Errorf("Match = %q, want %q", got, tt.want)
			}
		})
	}
	a := s.Cases("op")[0]
	if a.Params["anneeDateNaissance"] != 1962 || !slices.Equal(a.Params["prenoms"].([]any), []any{"Angela", "Claire"}) {
		t.Errorf("params decoded as %#v", a.Params)
	}
	if b := s.Cases("op")[1]; b.Params["code"] != "08480" {
		t.Errorf("08480 decoded as %#v", b.Params["code"])
	}
	if got := s.Operations(); !slices.Equal(got, []string{"op", "op2"}) {
		t.Errorf("Operations = %v", got)
	}
	if _, ok := s.NotFound("op"); ok {
		t.Error("op has no 404 case")
	}
}

func TestNotFoundFallback(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"op/a.yml":             "params: {a: 1}\nstatus: 200\npayload: '{}'",
		"op/b_nf.yml":          "params: {b: 1}\nstatus: 404\npayload: '{\"nf\":\"b\"}'",
		"op/c_nf.yml":          "params: {c: 1}\nstatus: 404\npayload: '{\"nf\":\"c\"}'",
		"op2/404.yml":          "params: {}\nstatus: 404\npayload: '{}'",
		"op2/0_nf.yml":         "params: {z: 1}\nstatus: 404\npayload: '{}'",
		"op3/only.yml":         "params: {}\nstatus: 200\npayload: '[]'",
		"france_connect/t.yml": "params: {token: 't'}\nstatus: 200\npayload: '{\"aud\":\"x\"}'",
	})
	if c, _ := s.NotFound("op"); c == nil || c.File != "b_nf.yml" {
		t.Errorf("op NotFound = %v", c)
	}
	if c, _ := s.NotFound("op2"); c == nil || c.File != "404.yml" {
		t.Errorf("op2 NotFound = %v", c)
	}
	if _, ok := s.NotFound("op3"); ok {
		t.Error("op3 has no 404")
	}
	// An empty-params case matches a request without params (after ignore).
	if c, ok := s.Match([]string{"op3"}, url.Values{"recipient": {"x"}}, []string{"recipient"}); !ok || c.File != "only.yml" {
		t.Errorf("empty params case: %v %v", c, ok)
	}
	if c, ok := s.Token("t"); !ok || c.Operation != TokenFolder || c.File != "t.yml" {
		t.Errorf("Token(t) = %v %v", c, ok)
	}
}

func TestLoadTolerance(t *testing.T) {
	// Unknown optional fields, typo keys, v2 keys in v3 folders, a missing
	// leading "---", CRLF line ends and a second YAML document all load.
	mustLoad(t, map[string]string{
		"op/quirks.yaml":  "description: 'x'\r\nexample: true\r\napi_path: '/v2/x'\r\nwhatever: [1, 2]\r\nparams:\r\n  codeInseeLieuDaissance: '75107'\r\n  prenom: 'Jean'\r\nstatus: 200\r\npayload: |-\r\n  {\"a\": 1}\r\n",
		"op/two_docs.yml": "params: {a: b}\nstatus: 200\npayload: '{}'\n---\nnot: read\n",
		"op/anchors.yml":  "x: &n ['A', 'B']\nparams: {prenoms: *n}\nstatus: 200\npayload: '{}'",
	})
}

func TestLoadErrors(t *testing.T) {
	valid := "params: {a: 1}\nstatus: 200\npayload: '{}'"
	tests := []struct {
		name, path, data, want string
	}{
		{"missing status", "op/x.yml", "params: {a: 1}\npayload: '{}'", "op/x.yml: status: missing"},
		{"missing params", "op/x.yml", "status: 200\npayload: '{}'", "op/x.yml: params: missing"},
		{"null params", "op/x.yml", "params:\nstatus: 200\npayload: '{}'", "op/x.yml: params: must be a mapping"},
		{"missing payload", "op/x.yml", "params: {a: 1}\nstatus: 200", "op/x.yml: payload: missing"},
		{"status string", "op/x.yml", "params: {a: 1}\nstatus: '200'\npayload: '{}'", "status: must be an integer"},
		{"status out of range", "op/x.yml", "params: {a: 1}\nstatus: 42\npayload: '{}'", "status: must be an HTTP status"},
		{"payload not JSON", "op/x.yml", "params: {a: 1}\nstatus: 200\npayload: '{oops'", "op/x.yml: payload: not valid JSON"},
		{"payload not a string", "op/x.yml", "params: {a: 1}\nstatus: 200\npayload: {a: 1}", "payload: must be a string"},
		{"nested params", "op/x.yml", "params: {a: {b: 1}}\nstatus: 200\npayload: '{}'", "params.a: must be"},
		{"colliding keys", "op/x.yml", "params: {a: [1], 'a[]': [2]}\nstatus: 200\npayload: '{}'", "collide"},
		{"repeated field", "op/x.yml", "params: {a: 1}\nstatus: 200\nstatus: 201\npayload: '{}'", "status: repeated"},
		{"not a mapping", "op/x.yml", "- a\n- b", "top level must be a mapping"},
		{"empty", "op/x.yml", "", "op/x.yml: empty file"},
		{"bad yaml", "op/x.yml", "params: [", "op/x.yml: invalid YAML"},
		{"token not JSON object", "france_connect/t.yml", "params: {token: t}\nstatus: 200\npayload: '[1]'", "france_connect/t.yml: payload: must be a JSON object"},
		{"token missing", "france_connect/t.yml", "params: {nottoken: t}\nstatus: 200\npayload: '{}'", "france_connect/t.yml: params.token"},
		{"token not a string", "france_connect/t.yml", "params: {token: 12}\nstatus: 200\npayload: '{}'", "params.token: must be a non-empty string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{tt.path: {Data: []byte(tt.data)}, "ok/ok.yml": {Data: []byte(valid)}}
			_, err := Load(fsys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Every problem is reported, each naming its file.
	_, err := Load(fstest.MapFS{
		"op/a.yml":             {Data: []byte("status: 200")},
		"op/b.yml":             {Data: []byte("params: {}")},
		"france_connect/x.yml": {Data: []byte("params: {token: x}\nstatus: 200\npayload: '{}'")},
		"france_connect/y.yml": {Data: []byte("params: {token: x}\nstatus: 200\npayload: '{}'")},
	})
	for _, want := range []string{"op/a.yml", "op/b.yml", "france_connect/y.yml: params.token already defined by x.yml"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	if _, err := Load(fstest.MapFS{"README.md": {Data: []byte("x")}, "op/README.md": {Data: []byte("x")}}); err == nil {
		t.Error("a directory without case files must not load")
	}
	big := strings.Repeat(" ", maxFileSize+1)
	if _, err := Load(fstest.MapFS{"op/big.yml": {Data: []byte(big)}}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}
