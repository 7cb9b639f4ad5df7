package apierror

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// all lists every constructor with representative arguments, in the order
// of the golden files.
var all = []struct {
	name string
	e    func() *Error
}{
	{"TokenMissing", TokenMissing},
	{"TokenMalformed", TokenMalformed},
	{"TokenNotFound", TokenNotFound},
	{"TokenExpired", TokenExpired},
	{"FCBadResponse", FCBadResponse},
	{"IdentityScopesMissing", IdentityScopesMissing},
	{"ACRTooLow(eidas2)", func() *Error { return ACRTooLow("eidas2") }},
	{"ACRTooLow(unknown)", func() *Error { return ACRTooLow("eidas9\r\nX: y") }},
	{"APITokenMissing", APITokenMissing},
	{"APITokenMalformed", APITokenMalformed},
	{"APITokenInvalid", APITokenInvalid},
	{"APITokenExpired", APITokenExpired},
	{"APITokenRevoked", APITokenRevoked},
	{"Forbidden", Forbidden},
	{"HabilitationUnknown", HabilitationUnknown},
	{"HabilitationInactive", HabilitationInactive},
	{"RecipientMismatch", RecipientMismatch},
	{"RecipientMissing", RecipientMissing},
	{"RecipientInvalid", RecipientInvalid},
	{"ParamInvalid(nomNaissance)", func() *Error { return ParamInvalid("00366", "nomNaissance") }},
	{"ParamInvalid(hostile)", func() *Error { return ParamInvalid("00366", `x"},"a":{"b`) }},
	{"ParamRefused(prenoms[])", func() *Error { return ParamRefused("00366", "prenoms[]") }},
	{"ParamRefused(too long)", func() *Error { return ParamRefused("00366", strings.Repeat("a", 65)) }},
	{"UnknownRoute", UnknownRoute},
	{"MethodNotAllowed(GET,HEAD)", func() *Error { return MethodNotAllowed("GET", "HEAD", "get", "X\r\n") }},
	{"RateLimited(42)", func() *Error { return RateLimited(42) }},
	{"ProviderNotFound(23,CNAF)", func() *Error { return ProviderNotFound("23", "CNAF") }},
	{"ProviderError(37,CNAV)", func() *Error { return ProviderError("37", "CNAV") }},
	{"ProviderError(35,CNAF & MSA)", func() *Error { return ProviderError("35", "CNAF & MSA") }},
	{"FilterFailed(25,MESRI)", func() *Error { return FilterFailed("25", "MESRI") }},
	{"ProviderTimeout(31,GIP-MDS)", func() *Error { return ProviderTimeout("31", "GIP-MDS") }},
	{"ProviderUnreachable(26,CNOUS)", func() *Error { return ProviderUnreachable("26", "CNOUS") }},
	{"ProviderError(bad prefix and name)", func() *Error { return ProviderError("3x", "cnaf.internal:8443") }},
	{"NetworkError", NetworkError},
	{"Unavailable(fc_unavailable)", func() *Error { return Unavailable(ReasonFCUnavailable) }},
	{"Unavailable(jwks_unavailable)", func() *Error { return Unavailable(ReasonJWKSUnavailable) }},
	{"Unavailable(audit_unavailable)", func() *Error { return Unavailable(ReasonAuditUnavailable) }},
	{"Internal", Internal},
}

// render records status, the headers Write sets and the body.
func render(write func(http.ResponseWriter, *Error), e *Error) (string, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	write(rec, e)
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d\n", rec.Code)
	keys := make([]string, 0, len(rec.Header()))
	for k := range rec.Header() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range rec.Header()[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", rec.Body.String())
	return b.String(), rec
}

func golden(t *testing.T, file string, write func(http.ResponseWriter, *Error)) {
	t.Helper()
	var b strings.Builder
	for _, c := range all {
		out, _ := render(write, c.e())
		fmt.Fprintf(&b, "=== %s (reason %s)\n%s\n", c.name, c.e().Reason, out)
	}
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if b.String() != string(want) {
		t.Errorf("%s differs from the answers written; run go test -update and review the diff", path)
		gotLines, wantLines := strings.Split(b.String(), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gotLines), len(wantLines)) {
			if gotLines[i] != wantLines[i] {
				t.Errorf("line %d:\n got %s\nwant %s", i+1, gotLines[i], wantLines[i])
				break
			}
		}
	}
}

func TestG12_GoldenV3(t *testing.T) { golden(t, "v3.golden", Write) }
func TestG12_GoldenV2(t *testing.T) { golden(t, "v2.golden", WriteV2) }

// TestG12_Shape checks every answer against DOMAIN.md §6 and SECURITY.md
// §1.3 independently of the golden files.
func TestG12_Shape(t *testing.T) {
	for _, c := range all {
		t.Run(c.name, func(t *testing.T) {
			e := c.e()
			if !IsReason(e.Reason) {
				t.Errorf("reason %q not in the G04 closed list", e.Reason)
			}
			if got, want := e.Error(), "apierror: "+e.Code+" "+e.Reason; got != want {
				t.Errorf("Error() = %q, want %q", got, want)
			}
			_, rec := render(Write, e)
			if rec.Code != e.Status {
				t.Errorf("status %d, want %d", rec.Code, e.Status)
			}
			h := rec.Header()
			for k, want := range map[string]string{
				"Content-Type":           "application/json; charset=utf-8",
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
			} {
				if h.Get(k) != want {
					t.Errorf("%s = %q, want %q", k, h.Get(k), want)
				}
			}
			switch {
			case rec.Code == 401 && e.Reason == ReasonTokenMissing:
				if h.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
				}
			case rec.Code == 401:
				if h.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
					t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
				}
			default:
				if _, ok := h["Www-Authenticate"]; ok {
					t.Errorf("WWW-Authenticate on a %d", rec.Code)
				}
			}
			if (rec.Code == 429 || rec.Code == 503) != (h.Get("Retry-After") != "") {
				t.Errorf("Retry-After = %q on a %d", h.Get("Retry-After"), rec.Code)
			}
			for k, vs := range h { // D05: no control byte in what we emit
				for _, v := range vs {
					if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
						t.Errorf("control byte in %s: %q", k, v)
					}
				}
			}
			var body struct {
				Errors []map[string]json.RawMessage `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			m := body.Errors[0]
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if strings.Join(keys, ",") != "code,detail,meta,source,title" {
				t.Errorf("members %q", keys)
			}
			if string(m["code"]) != `"`+e.Code+`"` || len(e.Code) != 5 {
				t.Errorf("code %s", m["code"])
			}
			if e.SourceParameter == "" && string(m["source"]) != "null" {
				t.Errorf("source %s, want null", m["source"])
			}
			if string(m["meta"]) == "null" {
				t.Errorf("meta is null")
			}
			if strings.Contains(rec.Body.String(), `"`+`},"a":`) {
				t.Errorf("hostile parameter name echoed: %s", rec.Body)
			}
		})
	}
}

// TestG04_TableRows pins the status/code pairs of SECURITY.md §1.3.
func TestG04_TableRows(t *testing.T) {
	rows := []struct {
		e      *Error
		status int
		code   string
		reason string
	}{
		{TokenMissing(), 401, "50004", ReasonTokenMissing},
		{TokenMalformed(), 401, "50001", ReasonTokenMalformed},
		{TokenNotFound(), 401, "50002", ReasonTokenInactive},
		{TokenExpired(), 401, "50002", ReasonTokenExpired},
		{IdentityScopesMissing(), 401, "50003", ReasonScopeDenied},
		{ACRTooLow("eidas3"), 401, "50003", ReasonACRTooLow},
		{APITokenInvalid(), 401, "00101", ReasonTokenInactive},
		{APITokenExpired(), 401, "00103", ReasonTokenExpired},
		{APITokenRevoked(), 401, "00105", ReasonTokenInactive},
		{Forbidden(), 403, "00100", ReasonScopeDenied},
		{HabilitationUnknown(), 403, "00100", ReasonHabilitationUnknown},
		{HabilitationInactive(), 403, "00100", ReasonHabilitationInactive},
		{ModalityDenied(), 403, "00100", ReasonModalityDenied},
		{ClientCertificateMismatch(), 403, "00100", ReasonClientCertificate},
		{RecipientMismatch(), 403, "00100", ReasonRecipientMismatch},
		{RecipientMissing(), 422, "00203", ReasonParamRefused},
		{RecipientInvalid(), 422, "00210", ReasonParamRefused},
		{ParamInvalid("00366", "annee"), 422, "00366", ReasonParamRefused},
		{ParamRefused("00366", "nomNaissance"), 422, "00366", ReasonParamRefused},
		{RateLimited(5), 429, "00429", ReasonRateLimited},
		{ProviderError("37", "CNAV"), 502, "37999", ReasonProviderError},
		{FilterFailed("37", "CNAV"), 502, "37999", ReasonFilterFailed},
		{Unavailable(ReasonJWKSUnavailable), 503, "00503", ReasonJWKSUnavailable},
		{ProviderTimeout("23", "CNAF"), 504, "23002", ReasonProviderTimeout},
		{ProviderUnreachable("23", "CNAF"), 504, "23001", ReasonProviderError},
		{NetworkError(), 504, "00501", ReasonProviderError},
		{ProviderNotFound("10", "MSA"), 404, "10003", ReasonProviderError},
	}
	for _, r := range rows {
		if r.e.Status != r.status || r.e.Code != r.code || r.e.Reason != r.reason {
			t.Errorf("%s: got %d %s %s, want %d %s %s", r.e.Title, r.e.Status, r.e.Code, r.e.Reason, r.status, r.code, r.reason)
		}
	}
	if e := ProviderTimeout("23", "CNAF"); e.Meta["retry_in"] != 10 || e.Meta["provider"] != "CNAF" {
		t.Errorf("ProviderTimeout meta = %v", e.Meta)
	}
	if e := ACRTooLow("eidas2"); !strings.Contains(e.Detail, "eidas2") {
		t.Errorf("ACRTooLow detail does not name the level: %q", e.Detail)
	}
	if e := ACRTooLow("eidas2\nx"); strings.Contains(e.Detail, "eidas2") {
		t.Errorf("ACRTooLow echoes an unknown level: %q", e.Detail)
	}
}

func TestWrite_InvalidErrorBecomesInternal(t *testing.T) {
	internal, _ := render(Write, Internal())
	for name, e := range map[string]*Error{
		"nil":             nil,
		"status 200":      {Status: 200, Code: "00100", Title: "t", Detail: "d"},
		"status 0":        {Code: "00100", Title: "t", Detail: "d"},
		"code letters":    {Status: 400, Code: "0010x", Title: "t", Detail: "d"},
		"code 4 digits":   {Status: 400, Code: "0010", Title: "t", Detail: "d"},
		"empty detail":    {Status: 400, Code: "00100", Title: "t"},
		"hostile source":  {Status: 422, Code: "00366", Title: "t", Detail: "d", SourceParameter: "a\r\nb"},
		"non-ASCII code":  {Status: 400, Code: "００１００", Title: "t", Detail: "d"},
		"unmarshalable":   {Status: 502, Code: "37999", Title: "t", Detail: "d", Meta: map[string]any{"x": func() {}}},
		"status too high": {Status: 600, Code: "00100", Title: "t", Detail: "d"},
	} {
		if got, _ := render(Write, e); got != internal {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got, internal)
		}
	}
	if got, want := render2(Internal()), internalBody; got != want {
		t.Errorf("internalBody constant drifted from Internal():\n got %s\nwant %s", got, want)
	}
}

func render2(e *Error) string {
	rec := httptest.NewRecorder()
	Write(rec, e)
	return rec.Body.String()
}

func TestWrite_ResetsStaleHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	h := rec.Header()
	h.Set("ETag", `"x"`)
	h.Set("Content-Encoding", "gzip")
	h.Set("Content-Length", "99999")
	h.Set("Content-Type", "text/html")
	h.Set("WWW-Authenticate", "Basic")
	h.Set("Retry-After", "1")
	h.Set("RateLimit-Limit", "20")
	h.Set("X-Request-Id", "abc")
	Write(rec, Forbidden())
	got := rec.Header()
	for _, k := range []string{"Etag", "Content-Encoding", "Www-Authenticate", "Retry-After"} {
		if _, ok := got[k]; ok {
			t.Errorf("stale %s kept: %q", k, got[k])
		}
	}
	if got.Get("Content-Length") != fmt.Sprint(rec.Body.Len()) {
		t.Errorf("Content-Length = %s, body %d bytes", got.Get("Content-Length"), rec.Body.Len())
	}
	if got.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", got.Get("Content-Type"))
	}
	if got.Get("RateLimit-Limit") != "20" || got.Get("X-Request-Id") != "abc" {
		t.Errorf("unrelated headers dropped: %v", got)
	}
}

func TestRateLimitedClamp(t *testing.T) {
	if RateLimited(0).RetryAfter != 1 || RateLimited(-5).RetryAfter != 1 || RateLimited(1e9).RetryAfter != 86400 {
		t.Error("RetryAfter not clamped to 1…86400")
	}
}

func TestUnavailableReason(t *testing.T) {
	if got := Unavailable("capacity").Reason; got != ReasonInternalError {
		t.Errorf("unknown reason kept: %q", got)
	}
	if got := Unavailable(ReasonAuditUnavailable).Reason; got != ReasonAuditUnavailable {
		t.Errorf("reason = %q", got)
	}
}

func TestConstructorsReturnFreshValues(t *testing.T) {
	a := ProviderTimeout("23", "CNAF")
	a.Meta["provider"] = "X"
	a.RetryAfter = 99
	if b := ProviderTimeout("23", "CNAF"); b.Meta["provider"] != "CNAF" || b.RetryAfter != 0 {
		t.Error("constructors share state")
	}
}
