package front

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnTo(t *testing.T) {
	for _, ok := range []string{"/", "/demarche/", "/demarche/?etape=2&x=%C3%A9", "/espace-famille/factures"} {
		if got, accepted := SafeReturnTo(ok); !accepted || got != ok {
			t.Errorf("SafeReturnTo(%q) refused", ok)
		}
	}
	for _, bad := range []string{
		"", "demarche", "https://evil.example/", "http:/evil.example", "//evil.example", "///evil.example",
		"/\\evil.example", "\\\\evil.example", "/%2Fevil.example", "/%2fevil.example", "/%5Cevil.example",
		"/%5cevil.example", "/demarche\\..\\", "/demarche/#frag", "/a b", "/a\tb", "/\x00", "/é",
		"javascript:alert(1)", "/.passerelle/fc/logout", "/.passerelle", " /demarche",
		"/./%2Fevil.example/", "/a/../%2Fevil.example", "/%2e/%2Fevil.example", "/%2E%2E/x", "/.",
		"/demarche//etape", "/demarche/etape//", "/a//",
		"/" + strings.Repeat("a", maxReturnTo),
	} {
		if got, accepted := SafeReturnTo(bad); accepted {
			t.Errorf("SafeReturnTo(%q) accepted as %q", bad, got)
		}
	}
}

// FuzzSafeReturnTo: whatever is accepted resolves, against the site, to the
// site itself, and is not a route of the front.
func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{"/demarche/", "//evil", "/\\evil", "/%2F%2Fevil", "/a?b=//c", "/.passerelle/x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://mairie.example/app/page")
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := SafeReturnTo(v)
		if !ok {
			return
		}
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q does not parse", got)
		}
		res := base.ResolveReference(ref)
		if res.Host != base.Host || res.Scheme != base.Scheme {
			t.Fatalf("%q leaves the site: %s", got, res)
		}
		if strings.HasPrefix(res.Path, RoutePrefix) {
			t.Fatalf("%q is a front route", got)
		}
		// What http.Redirect sends (it cleans the path) is as safe.
		w := httptest.NewRecorder()
		http.Redirect(w, httptest.NewRequest(http.MethodGet, "/", nil), got, http.StatusSeeOther)
		if loc := w.Header().Get("Location"); strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") ||
			strings.HasPrefix(strings.ToLower(loc), "/%2f") || strings.HasPrefix(strings.ToLower(loc), "/%5c") {
			t.Fatalf("%q redirects to %q", got, loc)
		}
	})
}
