package handoff

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
)

func claims() Claims {
	return Claims{
		Issuer: "http://127.0.0.1:8082", Audience: "demo-app", Subject: "abc123v1", ACR: "eidas1", Moment: MomentTransmit,
		Identity: Identity{FamilyName: "Dubinôre", GivenName: "Joëlle Françoise", GivenNames: []string{"Joëlle", "Françoise"},
			Birthdate: "1992-08-15", BirthdatePrecision: "day", Gender: "female", Birthplace: "75117", Birthcountry: "99100"},
		Datasets: map[string]Dataset{
			"quotient_familial": {Status: StatusOK, Data: json.RawMessage(`{"quotient_familial":{"valeur":612}}`)},
			"bourse":            {Status: StatusError, Error: &APIError{Code: "37003", Title: "Dossier allocataire absent", Detail: "…"}},
		},
		Reconciliation: &reconcile.Result{Verdict: reconcile.Probable},
	}
}

// TestAssertionVerifiedIndependently signs an assertion and verifies it
// the way an app does: go-jose's jwt package and the served JWKS, not the
// code that signed it.
func TestAssertionVerifiedIndependently(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := s.Sign(claims(), now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
		t.Fatalf("JWKS %s: %v", s.JWKS(), err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Headers[0].KeyID != set.Keys[0].KeyID || parsed.Headers[0].KeyID == "" {
		t.Fatalf("kid %q, JWKS kid %q", parsed.Headers[0].KeyID, set.Keys[0].KeyID)
	}
	var std jwt.Claims
	var got Claims
	if err := parsed.Claims(set.Keys[0].Key, &std, &got); err != nil {
		t.Fatal(err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: "http://127.0.0.1:8082", AnyAudience: jwt.Audience{"demo-app"}, Time: now}, 0); err != nil {
		t.Fatal(err)
	}
	if got.Identity.GivenNames[0] != "Joëlle" || got.Datasets["bourse"].Error.Code != "37003" || got.ID == "" ||
		got.Reconciliation.Verdict != reconcile.Probable || got.Expiry-got.IssuedAt != 300 {
		t.Fatalf("claims %+v", got)
	}
	again, _ := s.Sign(claims(), now, 5*time.Minute)
	parsedAgain, _ := jwt.ParseSigned(again, []jose.SignatureAlgorithm{jose.ES256})
	var second Claims
	_ = parsedAgain.UnsafeClaimsWithoutVerification(&second)
	if second.ID == got.ID {
		t.Fatal("two signatures share a jti")
	}
	// A key the JWKS does not hold is refused.
	other, _ := GenerateKey()
	if err := parsed.Claims(other.Public().Key, &std); err == nil {
		t.Fatal("verified with another key")
	}
}

func TestSignerRefusesOtherKeys(t *testing.T) {
	if _, err := NewSigner(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef")}); err == nil {
		t.Fatal("an HMAC key was accepted")
	}
	k, _ := GenerateKey()
	if _, err := NewSigner(k.Public()); err == nil {
		t.Fatal("a public key was accepted")
	}
}

func TestHeadersASCIIAndDecodable(t *testing.T) {
	h := http.Header{}
	c := claims()
	SetHeaders(h, &c)
	for name, vals := range h {
		for _, v := range vals {
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					t.Fatalf("%s is not printable ASCII: %q", name, v)
				}
			}
		}
	}
	fam, _ := base64.RawURLEncoding.DecodeString(h.Get(HeaderFamilyName))
	given, _ := base64.RawURLEncoding.DecodeString(h.Get(HeaderGivenNames))
	if string(fam) != "Dubinôre" || string(given) != "Joëlle Françoise" || h.Get(HeaderBirthdatePrecision) != "day" {
		t.Fatalf("%q %q %v", fam, given, h)
	}
	if DataHeader("quotient_familial") != "X-Passerelle-Data-Quotient-Familial-B64" {
		t.Fatalf("header name %q holds an underscore (Caddy drops those)", DataHeader("quotient_familial"))
	}
	raw, _ := base64.RawURLEncoding.DecodeString(h.Get(DataHeader("quotient_familial")))
	var d Dataset
	if err := json.Unmarshal(raw, &d); err != nil || d.Status != StatusOK {
		t.Fatalf("dataset header %s: %v", raw, err)
	}
	if h.Get(HeaderReconciliation) == "" {
		t.Fatal("no reconciliation header")
	}
}

func TestStrip(t *testing.T) {
	h := http.Header{
		"X-Passerelle-Assertion": {"forged"},
		"X-Passerelle-Sub":       {"forged"},
		"X-Passerelle-Anything":  {"forged"},
		"x-passerelle-lower":     {"forged"}, // a key set without canonicalisation
		"X_Passerelle_Sub":       {"forged"}, // what a PHP or CGI app reads as X-Passerelle-Sub
		"X.Passerelle.Acr":       {"forged"},
		"x_passerelle-mixed":     {"forged"},
		"Remote-User":            {"forged"},
		"Remote_User":            {"forged"},
		"Remote-Users":           {"kept"},
		"Cookie":                 {"kept"},
		"X-Passerelles":          {"kept"},
	}
	Strip(h, []string{"Remote-User"})
	if len(h) != 3 || h.Get("Cookie") != "kept" || h.Get("X-Passerelles") != "kept" || h.Get("Remote-Users") != "kept" {
		t.Fatalf("after Strip: %v", h)
	}
	// Extra names configured with "_" match every spelling too.
	h = http.Header{"Remote-User": {"forged"}, "remote_user": {"forged"}, "X~Passerelle~Sub": {"forged"}, "Remote-Users": {"kept"}}
	Strip(h, []string{"REMOTE_USER"})
	if len(h) != 1 || h.Get("Remote-Users") != "kept" {
		t.Fatalf("after Strip with an underscore name: %v", h)
	}
}

// TestStripConnection: a Connection field naming a header the front sets
// loses that name (reverse_proxy would delete the front's header), and
// keeps the others; a field left with nothing goes.
func TestStripConnection(t *testing.T) {
	h := http.Header{"Connection": {"keep-alive, X-Passerelle-Reconciliation-B64", "x_passerelle_sub,Upgrade", "remote-user"}}
	Strip(h, []string{"Remote-User"})
	if got := h["Connection"]; len(got) != 2 || got[0] != "keep-alive" || got[1] != "Upgrade" {
		t.Fatalf("Connection after Strip: %q", got)
	}
	h = http.Header{"Connection": {" X-Passerelle-Sub , ,"}}
	Strip(h, nil)
	if _, ok := h["Connection"]; ok {
		t.Fatalf("Connection left with nothing: %q", h["Connection"])
	}
}

func TestPrecision(t *testing.T) {
	for in, want := range map[string]string{"1962-08-24": "day", "1987-11": "month", "1979": "year"} {
		if got := Precision(in); got != want {
			t.Errorf("Precision(%q) = %q", in, got)
		}
	}
}

// TestValidExternalID: an app's identifier, never free text nor markup.
func TestValidExternalID(t *testing.T) {
	for s, ok := range map[string]bool{
		"D-2026:0042": true, "a": true, "form_12.3": true, strings.Repeat("x", 100): true,
		"": false, strings.Repeat("x", 101): false, "dossier 42": false, `"><b>`: false, "é": false, "a/b": false, "a\n": false,
	} {
		if ValidExternalID(s) != ok {
			t.Errorf("ValidExternalID(%q) = %v", s, !ok)
		}
	}
}
