package bearer

import (
	"bufio"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

const tok = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl-_~+/=="

// b64token is RFC 6750 §2.1, independent of ValidToken.
var b64token = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

type reqOpt func(*http.Request)

func hdr(k string, vs ...string) reqOpt {
	return func(r *http.Request) {
		r.Header[k] = append(r.Header[k], vs...) // raw key, no canonicalisation
	}
}

func query(q string) reqOpt { return func(r *http.Request) { r.URL.RawQuery = q } }

func newReq(opts ...reqOpt) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v3/dss/quotient_familial/france_connect?recipient=13002526500013", nil)
	for _, o := range opts {
		o(r)
	}
	return r
}

type extractCase struct {
	name string
	req  *http.Request
	want string
	err  error
}

func runCases(t *testing.T, cases []extractCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Extract(tc.req)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Extract() error = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("Extract() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestA01_Placement(t *testing.T) {
	form := func(body, ct string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		return r
	}
	withHdr := func(r *http.Request) *http.Request { r.Header.Set("Authorization", "Bearer "+tok); return r }
	parsedForm := func() *http.Request {
		r := form("access_token="+tok, "application/x-www-form-urlencoded")
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		r.Body = http.NoBody
		r.ContentLength = 0
		return withHdr(r)
	}
	var mp strings.Builder
	mw := multipart.NewWriter(&mp)
	mw.WriteField("access_token", tok)
	mw.Close()

	runCases(t, []extractCase{
		{"header only", newReq(hdr("Authorization", "Bearer "+tok)), tok, nil},
		{"nothing at all", newReq(), "", ErrMissing},
		{"query only", newReq(query("access_token=" + tok)), "", ErrMalformed},
		{"query only, empty value", newReq(query("access_token=")), "", ErrMalformed},
		{"query only, bare key", newReq(query("recipient=1&access_token")), "", ErrMalformed},
		{"query only, percent-encoded key", newReq(query("access%5Ftoken=" + tok)), "", ErrMalformed},
		{"query only, upper-case key", newReq(query("ACCESS_TOKEN=" + tok)), "", ErrMalformed},
		{"query only, after ';'", newReq(query("recipient=1;access_token=" + tok)), "", ErrMalformed},
		{"header and query", newReq(hdr("Authorization", "Bearer "+tok), query("recipient=1&access_token="+tok)), "", ErrMalformed},
		{"header and other query params", newReq(hdr("Authorization", "Bearer "+tok), query("recipient=1&access_tokens=2&xaccess_token=3&token=4")), tok, nil},
		{"form body only", form("access_token="+tok, "application/x-www-form-urlencoded"), "", ErrMalformed},
		{"header and form body", withHdr(form("access_token="+tok, "application/x-www-form-urlencoded; charset=utf-8")), "", ErrMalformed},
		{"header and any form body (not read, fail closed)", withHdr(form("a=1", "Application/X-WWW-Form-URLEncoded")), "", ErrMalformed},
		{"header and multipart body", withHdr(form(mp.String(), mw.FormDataContentType())), "", ErrMalformed},
		{"header and already parsed form", parsedForm(), "", ErrMalformed},
		{"header and JSON body", withHdr(form(`{"access_token":"x"}`, "application/json")), tok, nil},
		{"cookie only", newReq(hdr("Cookie", "access_token="+tok)), "", ErrMalformed},
		{"header and cookie", newReq(hdr("Authorization", "Bearer "+tok), hdr("Cookie", "a=1; Access_Token="+tok)), "", ErrMalformed},
		{"header and other cookies", newReq(hdr("Authorization", "Bearer "+tok), hdr("Cookie", "a=1; access_token_x=2", "b=3")), tok, nil},
	})
}

func TestA01_ExtractDoesNotReadBody(t *testing.T) {
	body := &countingReader{r: strings.NewReader("access_token=" + tok)}
	r := httptest.NewRequest(http.MethodPost, "/x", body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, err := Extract(r); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	if body.n != 0 {
		t.Fatalf("Extract read %d body bytes", body.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestA02_SingleCredential(t *testing.T) {
	runCases(t, []extractCase{
		{"one field", newReq(hdr("Authorization", "Bearer "+tok)), tok, nil},
		{"two fields, same token", newReq(hdr("Authorization", "Bearer "+tok, "Bearer "+tok)), "", ErrMalformed},
		{"two fields, different tokens", newReq(hdr("Authorization", "Bearer a", "Bearer b")), "", ErrMalformed},
		{"two fields, second empty", newReq(hdr("Authorization", "Bearer "+tok, "")), "", ErrMalformed},
		{"non-canonical key alone", newReq(hdr("authorization", "Bearer "+tok)), "", ErrMalformed},
		{"canonical and lower-case keys", newReq(hdr("Authorization", "Bearer a"), hdr("authorization", "Bearer b")), "", ErrMalformed},
		{"canonical and upper-case keys", newReq(hdr("Authorization", "Bearer a"), hdr("AUTHORIZATION", "Bearer b")), "", ErrMalformed},
		{"authorization in trailer", func() *http.Request {
			r := newReq(hdr("Authorization", "Bearer "+tok))
			r.Trailer = http.Header{"Authorization": nil}
			return r
		}(), "", ErrMalformed}, // every route refuses it, /api/introspect too
		{"X-Api-Key in trailer", func() *http.Request {
			r := newReq(hdr("Authorization", "Bearer "+tok))
			r.Trailer = http.Header{"X-Api-Key": nil}
			return r
		}(), "", ErrMalformed},
		{"authorization in trailer, other case", func() *http.Request {
			r := newReq(hdr("Authorization", "Bearer "+tok))
			r.Trailer = http.Header{"authorization": nil}
			return r
		}(), "", ErrMalformed},
		{"comma-joined tokens", newReq(hdr("Authorization", "Bearer a,Bearer b")), "", ErrMalformed},
		{"comma-joined with space", newReq(hdr("Authorization", "Bearer a, b")), "", ErrMalformed},
		{"token then comma", newReq(hdr("Authorization", "Bearer "+tok+",")), "", ErrMalformed},
		{"bearer and basic joined", newReq(hdr("Authorization", "Bearer a, Basic Zm9vOmJhcg==")), "", ErrMalformed},
		// The other modality's credential is a second credential, even
		// alone (misplaced), never ignored.
		{"bearer and X-Api-Key", newReq(hdr("Authorization", "Bearer "+tok), hdr("X-Api-Key", tok)), "", ErrMalformed},
		{"X-Api-Key alone", newReq(hdr("X-Api-Key", tok)), "", ErrMalformed},
		{"bearer and x-api-key", newReq(hdr("Authorization", "Bearer "+tok), hdr("x-api-key", tok)), "", ErrMalformed},
	})
}

// TestA02_WireDuplicates sends raw HTTP/1.1 requests: Go canonicalises
// every spelling of the field name, so duplicates in any letter case reach
// Extract as several values of the canonical key.
func TestA02_WireDuplicates(t *testing.T) {
	type result struct {
		tok string
		err error
	}
	got := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tk, err := Extract(r)
		got <- result{tk, err}
	}))
	defer srv.Close()
	cases := []struct {
		name    string
		headers string
		want    result
	}{
		{"single lower-case field", "authorization: Bearer " + tok + "\r\n", result{tok, nil}},
		{"single upper-case field", "AUTHORIZATION: bearer " + tok + "\r\n", result{tok, nil}},
		{"mixed-case duplicates", "Authorization: Bearer a\r\naUtHoRiZaTiOn: Bearer b\r\n", result{"", ErrMalformed}},
		{"lower-case duplicates, same token", "authorization: Bearer " + tok + "\r\nauthorization: Bearer " + tok + "\r\n", result{"", ErrMalformed}},
		{"trailing whitespace trimmed by the server", "Authorization: Bearer " + tok + " \t\r\n", result{tok, nil}},
		{"cookie next to the header", "Authorization: Bearer a\r\nCookie: access_token=b\r\n", result{"", ErrMalformed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: t\r\n"+tc.headers+"Connection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := <-got
			if r.tok != tc.want.tok || !errors.Is(r.err, tc.want.err) || (r.err == nil) != (tc.want.err == nil) {
				t.Fatalf("Extract() = %q, %v; want %q, %v", r.tok, r.err, tc.want.tok, tc.want.err)
			}
		})
	}
}

func TestA03_SizeAndSyntax(t *testing.T) {
	auth := func(v string) *http.Request { return newReq(hdr("Authorization", v)) }
	maxTok := strings.Repeat("a", MaxTokenLen)
	runCases(t, []extractCase{
		{"token of 1024 bytes", auth("Bearer " + maxTok), maxTok, nil},
		{"token of 1025 bytes", auth("Bearer " + maxTok + "a"), "", ErrMalformed},
		{"1 MiB token", auth("Bearer " + strings.Repeat("a", 1<<20)), "", ErrMalformed},
		{"1 MiB token in a second field", newReq(hdr("Authorization", "Bearer a", "Bearer "+strings.Repeat("a", 1<<20))), "", ErrMalformed},
		{"100 000 dots", auth("Bearer " + strings.Repeat(".", 100000)), "", ErrMalformed},
		{"1000 dots (dots are b64token bytes)", auth("Bearer " + strings.Repeat(".", 1000)), strings.Repeat(".", 1000), nil},
		{"NUL in token", auth("Bearer ab\x00cd"), "", ErrMalformed},
		{"CR LF in token", auth("Bearer ab\r\ncd"), "", ErrMalformed},
		{"tab in token", auth("Bearer ab\tcd"), "", ErrMalformed},
		{"non-ASCII in token", auth("Bearer abcé"), "", ErrMalformed},
		{"invalid UTF-8 in token", auth("Bearer ab\xff"), "", ErrMalformed},
		{"non-ASCII scheme", auth("Bëarer " + tok), "", ErrMalformed},
		{"Basic scheme", auth("Basic Zm9vOmJhcg=="), "", ErrMalformed},
		{"Token scheme", auth("Token " + tok), "", ErrMalformed},
		{"Bearer without token", auth("Bearer"), "", ErrMalformed},
		{"Bearer and space only", auth("Bearer "), "", ErrMalformed},
		{"empty field", auth(""), "", ErrMalformed},
		{"double space", auth("Bearer  " + tok), "", ErrMalformed},
		{"tab separator", auth("Bearer\t" + tok), "", ErrMalformed},
		{"no separator", auth("Bearer" + tok), "", ErrMalformed},
		{"leading space", auth(" Bearer " + tok), "", ErrMalformed},
		{"trailing space (hand-built header)", auth("Bearer " + tok + " "), "", ErrMalformed},
		{"lowercase bearer accepted", auth("bearer " + tok), tok, nil},
		{"uppercase BEARER accepted", auth("BEARER " + tok), tok, nil},
		{"mixed-case bEaReR accepted", auth("bEaReR " + tok), tok, nil},
		{"padding only", auth("Bearer =="), "", ErrMalformed},
		{"padding in the middle", auth("Bearer ab=cd"), "", ErrMalformed},
		{"trailing padding accepted", auth("Bearer abc=="), "abc==", nil},
		{"quoted token", auth(`Bearer "abc"`), "", ErrMalformed},
		{"token68 with space", auth("Bearer abc def"), "", ErrMalformed},
		{"all b64token bytes", auth("Bearer AZaz09-._~+/=="), "AZaz09-._~+/==", nil},
	})
}

func TestA03_NoAllocations(t *testing.T) {
	cases := map[string]*http.Request{
		"happy path":      newReq(hdr("Authorization", "Bearer "+tok), hdr("Cookie", "a=1; b=2"), query("recipient=13002526500013&annee=2024")),
		"1 MiB token":     newReq(hdr("Authorization", "Bearer "+strings.Repeat("a", 1<<20))),
		"100 000 dots":    newReq(hdr("Authorization", "Bearer "+strings.Repeat(".", 100000))),
		"duplicate field": newReq(hdr("Authorization", "Bearer a", "Bearer b")),
		"query token":     newReq(hdr("Authorization", "Bearer "+tok), query("access%5Ftoken=x")),
		"missing":         newReq(),
	}
	for name, r := range cases {
		if n := testing.AllocsPerRun(100, func() { Extract(r) }); n != 0 {
			t.Errorf("%s: %.1f allocations per call", name, n)
		}
	}
}

// FuzzA02_BearerExtract: Extract never panics, and an accepted token
// matches the b64token grammar, is at most 1024 bytes, is the whole
// remainder of the only Authorization field after one "Bearer " prefix,
// and no other credential placement was present.
func FuzzA02_BearerExtract(f *testing.F) {
	f.Add("Bearer "+tok, "", "", "", "")
	f.Add("bearer abc==", "", "recipient=1", "a=b", "")
	f.Add("Bearer a", "Bearer b", "", "", "")
	f.Add("Bearer a,b", "", "", "", "")
	f.Add("Bearer  a", "", "", "", "authorization")
	f.Add("Basic Zm9v", "", "access_token=1", "access_token=1", "")
	f.Add("Bearer "+strings.Repeat(".", 2000), "", "access%5ftoken", "", "AUTHORIZATION")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, a1, a2, rawQuery, cookie, extraKey string) {
		h := http.Header{}
		if a1 != "" {
			h["Authorization"] = append(h["Authorization"], a1)
		}
		if a2 != "" {
			h["Authorization"] = append(h["Authorization"], a2)
		}
		if cookie != "" {
			h["Cookie"] = []string{cookie}
		}
		if extraKey != "" {
			h[extraKey] = []string{a1}
		}
		r := &http.Request{Method: http.MethodGet, Header: h, URL: &url.URL{Path: "/x", RawQuery: rawQuery}}
		got, err := Extract(r)
		if err != nil {
			if !errors.Is(err, ErrMissing) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			if got != "" {
				t.Fatalf("token %q returned with error", got)
			}
			return
		}
		if len(got) > MaxTokenLen || !b64token.MatchString(got) {
			t.Fatalf("accepted token %q outside the grammar", got)
		}
		if len(h["Authorization"]) != 1 || len(h["Authorization"][0]) != len(got)+7 ||
			!strings.EqualFold(h["Authorization"][0][:7], "Bearer ") || h["Authorization"][0][7:] != got {
			t.Fatalf("token %q is not the whole of the only field %q", got, h["Authorization"])
		}
		vals, _ := url.ParseQuery(rawQuery) // keeps the well-formed pairs on error
		for k := range vals {
			if strings.EqualFold(k, "access_token") {
				t.Fatalf("accepted with access_token in the query %q", rawQuery)
			}
		}
		for _, c := range (&http.Request{Header: http.Header{"Cookie": {cookie}}}).Cookies() {
			if strings.EqualFold(c.Name, "access_token") {
				t.Fatalf("accepted with an access_token cookie %q", cookie)
			}
		}
		if extraKey != "Authorization" && strings.EqualFold(extraKey, "Authorization") {
			t.Fatalf("accepted with a second spelling %q", extraKey)
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	r := newReq(hdr("Authorization", "Bearer "+tok), hdr("Accept", "application/json"), hdr("Cookie", "a=1"),
		query("recipient=13002526500013&annee=2024&mois=2"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtract1MiB(b *testing.B) {
	r := newReq(hdr("Authorization", "Bearer "+strings.Repeat("a", 1<<20)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(r); err == nil {
			b.Fatal("accepted")
		}
	}
}

// TestExtractAPIKey: the legacy v2 API key is read from one X-Api-Key
// field only; a second credential anywhere is refused, never ignored.
func TestExtractAPIKey(t *testing.T) {
	mk := func(target string, h map[string][]string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		for k, v := range h {
			r.Header[k] = v
		}
		return r
	}
	tok, err := ExtractAPIKey(mk("/api/v2/prime-activite", map[string][]string{"X-Api-Key": {"sandbox_all_scopes"}}))
	if err != nil || tok != "sandbox_all_scopes" {
		t.Fatalf("valid key: %q %v", tok, err)
	}
	if _, err := ExtractAPIKey(mk("/", nil)); err != ErrMissing {
		t.Errorf("no key: %v", err)
	}
	for name, r := range map[string]*http.Request{
		"two fields":          mk("/", map[string][]string{"X-Api-Key": {"a", "b"}}),
		"Authorization too":   mk("/", map[string][]string{"X-Api-Key": {"a"}, "Authorization": {"Bearer b"}}),
		"other spelling":      mk("/", map[string][]string{"X-Api-Key": {"a"}, "x-api-key": {"b"}}),
		"access_token query":  mk("/?access_token=b", map[string][]string{"X-Api-Key": {"a"}}),
		"access_token cookie": mk("/", map[string][]string{"X-Api-Key": {"a"}, "Cookie": {"access_token=b"}}),
		"not a token":         mk("/", map[string][]string{"X-Api-Key": {"a b"}}),
		"empty":               mk("/", map[string][]string{"X-Api-Key": {""}}),
		"oversized":           mk("/", map[string][]string{"X-Api-Key": {strings.Repeat("a", MaxTokenLen+1)}}),
		"Authorization only":  mk("/", map[string][]string{"Authorization": {"Bearer a"}}),
	} {
		if _, err := ExtractAPIKey(r); err != ErrMalformed {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}
