package fcverify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
)

func headerOf(t *testing.T, compact string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(compact, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func keysOfMap(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// req: A10 — FranceConnect's exact shape (no typ, no cty) is accepted, for
// every allowed alg pair.
func TestA10_FCExactShapeAccepted(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		fc     func() *fcissuer.Issuer
		encKey func() jose.JSONWebKey
		jweHdr []string
	}{
		{"ES256+ECDH-ES", func() *fcissuer.Issuer { return fcES }, func() jose.JSONWebKey { return kEC }, []string{"alg", "enc", "epk", "kid"}},
		{"RS256+RSA-OAEP-256", func() *fcissuer.Issuer { return fcRS }, func() jose.JSONWebKey { return kRSA256 }, []string{"alg", "enc", "kid"}},
		{"ES256+RSA-OAEP", func() *fcissuer.Issuer { return fcES }, func() jose.JSONWebKey { return kRSA1 }, []string{"alg", "enc", "kid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.fc, e.encKey = tc.fc(), tc.encKey()
			ans := e.answer(e.claims(nil))
			if got := keysOfMap(headerOf(t, ans)); !slices.Equal(got, tc.jweHdr) {
				t.Fatalf("jwe header = %v", got)
			}
			f, err := e.check(ans)
			if err != nil {
				t.Fatal(err)
			}
			want := &Facts{
				Active: true, ClientID: fsClientID, Sub: subCanary,
				Scopes: []string{"openid", "identite_pivot", "cnaf_quotient_familial"}, ACR: "eidas1",
				IssuedAt: t0.Add(-4 * time.Second), ExpiresAt: t0.Add(56 * time.Second),
				Identity: Identity{Gender: "female", FamilyName: "DUBOIS", GivenName: "Angela Claire Louise",
					GivenNameArray: []string{"Angela", "Claire", "Louise"}, Birthdate: "1962-08-24",
					Birthplace: "75107", Birthcountry: "99100"},
			}
			gotJSON, _ := json.Marshal(f)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("facts\n got %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
	// The signed layer carries alg and kid only.
	jws, _ := fcES.Sign(e.claims(nil))
	if got := keysOfMap(headerOf(t, jws)); !slices.Equal(got, []string{"alg", "kid"}) {
		t.Fatalf("jws header = %v", got)
	}
}

// req: A06 — a JWE without kid is decrypted with the keys bound to its alg.
func TestA06_NoKidTriesKeysBoundToAlg(t *testing.T) {
	e := newEnv(t)
	jws, _ := fcES.Sign(e.claims(nil))
	for _, k := range []jose.JSONWebKey{kEC, kRSA256} {
		ans, err := fcissuer.EncryptJWE([]byte(jws), jose.KeyAlgorithm(k.Algorithm), jose.A256GCM, k.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := headerOf(t, ans)["kid"]; ok {
			t.Fatal("kid present")
		}
		if _, err := e.check(ans); err != nil {
			t.Fatalf("%s: %v", k.Algorithm, err)
		}
	}
}

// req: A04 — POST, exactly three form fields, Accept header, token-free URL.
func TestA04_CheckTokenRequest(t *testing.T) {
	e := newEnv(t)
	ans := e.answer(e.claims(nil))
	var seen bool
	e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		seen = true
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		if r.URL.Path != "/api/v2/checktoken" || r.URL.RawQuery != "" || strings.Contains(r.RequestURI, tokenCanary) {
			t.Errorf("url %q", r.RequestURI)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("content-type %q", ct)
		}
		if a := r.Header.Values("Accept"); len(a) != 1 || a[0] != "application/token-introspection+jwt" {
			t.Errorf("accept %q", a)
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("authorization header sent")
		}
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Error(err)
		}
		want := url.Values{"token": {tokenCanary}, "client_id": {fdClientID}, "client_secret": {fdSecret}}
		if len(form) != 3 {
			t.Errorf("form has %d fields", len(form))
		}
		for k, v := range want {
			if !slices.Equal(form[k], v) {
				t.Errorf("form %s = %q", k, form[k])
			}
		}
		w.Header().Set("Content-Type", "application/token-introspection+jwt")
		_, _ = io.WriteString(w, ans)
	})
	if _, err := e.v.CheckToken(context.Background(), tokenCanary); err != nil {
		t.Fatal(err)
	}
	if !seen {
		t.Fatal("stub not called")
	}
}

// req: A03 — junk tokens never reach FranceConnect.
func TestA03_TokenMalformedNotSent(t *testing.T) {
	e := newEnv(t)
	for _, tok := range []string{"", strings.Repeat("a", 5000), "a b", "a\x00b", "é", "===", "a,b", strings.Repeat(".", 100000)} {
		_, err := e.v.CheckToken(context.Background(), tok)
		wantErr(t, err, ErrTokenMalformed)
		if Reason(err) != ReasonTokenMalformed {
			t.Fatal(Reason(err))
		}
	}
	if n := e.stub.checks.Load(); n != 0 {
		t.Fatalf("%d checktoken calls", n)
	}
}

// req: E02 — redirects are never followed; a 3xx is a bad response.
func TestE02_RedirectNotFollowed(t *testing.T) {
	e := newEnv(t)
	var canary int
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { canary++ }))
	defer target.Close()
	for _, code := range []int{301, 302, 303, 307, 308} {
		e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/steal", code)
		})
		_, err := e.v.CheckToken(context.Background(), tokenCanary)
		wantErr(t, err, ErrBadResponse)
	}
	// A caller-supplied client gets the same policy.
	e2 := newEnv(t, func(c *Config) { c.HTTPClient = &http.Client{} })
	e2.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	_, err := e2.v.CheckToken(context.Background(), tokenCanary)
	wantErr(t, err, ErrBadResponse)
	if canary != 0 {
		t.Fatalf("redirect target saw %d requests", canary)
	}
}

// req: A05, F02 — the body is read through a 64 KiB limit.
func TestA05_BodyLimit(t *testing.T) {
	e := newEnv(t)
	valid := e.answer(e.claims(nil))
	_, err := e.check(valid + strings.Repeat(" ", maxBody-len(valid)))
	if err != nil {
		t.Fatalf("64 KiB incl. padding: %v", err)
	}
	_, err = e.check(valid + strings.Repeat(" ", maxBody-len(valid)+1))
	wantErr(t, err, ErrBadResponse)
	// A huge stream is cut, not buffered.
	e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/token-introspection+jwt")
		chunk := []byte(strings.Repeat("A", 32<<10))
		for range 3200 { // 100 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	_, err = e.v.CheckToken(context.Background(), tokenCanary)
	wantErr(t, err, ErrBadResponse)
}

// req: A05 — wrong content type, JSON, bare JWS, unsigned content, bad
// segment counts are malformed answers, never interpreted.
func TestA05_AnswerShape(t *testing.T) {
	e := newEnv(t)
	claims := e.claims(nil)
	valid := e.answer(claims)
	claimsJSON, _ := json.Marshal(claims)
	bareJWS, _ := fcES.Sign(claims)
	none, _ := fcissuer.SignJWS(claimsJSON, "none", nil, map[string]any{"kid": fcES.KeyID()})
	for _, tc := range []struct{ name, ctype, body string }{
		{"json body", "application/token-introspection+jwt", string(claimsJSON)},
		{"json content type", "application/json", valid},
		{"jwt content type", "application/jwt", valid},
		{"no content type", "", valid},
		{"bare jws", "application/token-introspection+jwt", bareJWS},
		{"jwe of json", "application/token-introspection+jwt", e.wrap(string(claimsJSON))},
		{"jwe of alg none", "application/token-introspection+jwt", e.wrap(none)},
		{"jwe of nested jwe", "application/token-introspection+jwt", e.wrap(valid)},
		{"four segments", "application/token-introspection+jwt", valid[:strings.LastIndex(valid, ".")]},
		{"six segments", "application/token-introspection+jwt", valid + ".AAAA"},
		{"empty", "application/token-introspection+jwt", ""},
		{"dots", "application/token-introspection+jwt", strings.Repeat(".", 60000)},
		{"json serialization", "application/token-introspection+jwt", `{"protected":"e30","ciphertext":"AA"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{tc.ctype}
				_, _ = io.WriteString(w, tc.body)
			})
			f, err := e.v.CheckToken(context.Background(), tokenCanary)
			if f != nil {
				t.Fatal("facts returned with error")
			}
			wantErr(t, err, ErrBadResponse)
		})
	}
	// Content-Type parameters and letter case are tolerated.
	e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "Application/Token-Introspection+JWT; charset=utf-8")
		_, _ = io.WriteString(w, valid)
	})
	if _, err := e.v.CheckToken(context.Background(), tokenCanary); err != nil {
		t.Fatal(err)
	}
}

// req: A05 — tampered ciphertext, tag, iv or encrypted key never decrypts.
func TestA05_TamperedCiphertext(t *testing.T) {
	e := newEnv(t)
	for _, k := range []jose.JSONWebKey{kEC, kRSA256} {
		e.encKey = k
		valid := e.answer(e.claims(nil))
		parts := strings.Split(valid, ".")
		for i := 1; i < 5; i++ {
			if parts[i] == "" {
				continue
			}
			raw, _ := base64.RawURLEncoding.DecodeString(parts[i])
			raw[len(raw)/2] ^= 0x01
			p := slices.Clone(parts)
			p[i] = base64.RawURLEncoding.EncodeToString(raw)
			_, err := e.check(strings.Join(p, "."))
			wantErr(t, err, ErrBadResponse)
		}
	}
}

// req: I01 — 5xx, 429, refused connections and timeouts are "unavailable".
func TestI01_Unavailable(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	for _, code := range []int{500, 502, 503, 504, 429} {
		e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
		_, err := e.v.CheckToken(context.Background(), tokenCanary)
		wantErr(t, err, ErrUnavailable)
		if Reason(err) != ReasonUnavailable {
			t.Fatal(Reason(err))
		}
	}
	release := make(chan struct{})
	e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	start := time.Now()
	_, err := e.v.CheckToken(context.Background(), tokenCanary)
	close(release)
	wantErr(t, err, ErrUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout not visible: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("deadline not enforced: %v", d)
	}
	// Connection refused.
	e.stub.srv.Close()
	_, err = e.v.CheckToken(context.Background(), tokenCanary)
	wantErr(t, err, ErrUnavailable)
}

// req: I02 — 400 and 401 mean our own client authentication or request.
func TestI02_ClientAuth(t *testing.T) {
	e := newEnv(t)
	for _, code := range []int{400, 401} {
		e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"Client authentication failed."}`)
		})
		_, err := e.v.CheckToken(context.Background(), tokenCanary)
		wantErr(t, err, ErrClientAuth)
		if Reason(err) != ReasonClientAuth {
			t.Fatal(Reason(err))
		}
	}
	for _, code := range []int{403, 404, 204, 201} {
		e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
		_, err := e.v.CheckToken(context.Background(), tokenCanary)
		wantErr(t, err, ErrBadResponse)
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		nil:                      "",
		ErrUnavailable:           "fc_unavailable",
		ErrBadResponse:           "fc_bad_response",
		bad("x"):                 "fc_bad_response",
		ErrJWKSUnavailable:       "jwks_unavailable",
		ErrClientAuth:            "fc_client_auth_failed",
		ErrTokenExpired:          "token_expired",
		ErrTokenMalformed:        "token_malformed",
		errors.New("other"):      "internal_error",
		context.DeadlineExceeded: "internal_error",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestF07_CheckTokenInFlightCap: with MaxInFlight checktoken exchanges
// waiting on a stalled FranceConnect, one more check fails at once with
// ErrUnavailable (503 for the caller) instead of queueing; the waiting
// ones end normally once FranceConnect answers.
// req: F07
func TestF07_CheckTokenInFlightCap(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxInFlight = 3; c.Timeout = 10 * time.Second })
	body := e.answer(e.claims(nil))
	release, arrived := make(chan struct{}), make(chan struct{}, 8)
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // a failure must not leave the stub's handlers blocked
	e.stub.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/token-introspection+jwt")
		_, _ = io.WriteString(w, body)
	})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := e.v.CheckToken(context.Background(), tokenCanary)
			errs <- err
		}()
	}
	for range 3 {
		<-arrived
	}
	start := time.Now()
	_, err := e.v.CheckToken(context.Background(), tokenCanary)
	if !errors.Is(err, ErrBusy) || !errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second {
		t.Fatalf("past the cap: %v after %v", err, time.Since(start))
	}
	assertPIIFree(t, err)
	free()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("a check in flight: %v", err)
		}
	}
	if _, err := e.v.CheckToken(context.Background(), tokenCanary); err != nil {
		t.Fatalf("after the checks ended: %v", err)
	}
}
