package front

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

func TestAppPath(t *testing.T) {
	for in, want := range map[string]string{
		"/espace-famille/x":                  "/espace-famille/x",
		"/espace-famille;jsessionid=AB12/x":  "/espace-famille/x",
		"/espace-famille;/x":                 "/espace-famille/x",
		"/static/..;/espace-famille/x":       "/espace-famille/x",
		"/static/..;x=1/espace-famille/":     "/espace-famille/",
		`/espace-famille\x`:                  "/espace-famille/x",
		`/static\..\espace-famille\x`:        "/espace-famille/x",
		"/espace-famille./x":                 "/espace-famille/x",
		"/espace-famille. . /x":              "/espace-famille/x",
		"/a/./b/../espace-famille;p/./x.jsp": "/a/espace-famille/x.jsp",
		"/page.jsp;jsessionid=1":             "/page.jsp",
		"/":                                  "/",
		"/;x":                                "/",
	} {
		if got := appPath(in); got != want {
			t.Errorf("appPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// req: D06
// TestProtectedPathReadAsTheAppReadsIt: a review's attack on Cas 1. The
// `protect /espace-famille/*` gate must hold for every spelling a legacy
// app server reads as a protected page: Tomcat drops path parameters
// (`;jsessionid=…`, `..;/`), IIS takes `\` for `/` and drops the dots and
// spaces that end a segment. Through a real Caddy server (the front, then
// reverse_proxy to the app), each such request without a session gets the
// login redirect and never reaches the app; pages outside the gate still do.
// Paths servers read differently from one another (an encoded separator, a
// segment of dots or spaces only: a second review's bypasses) are refused.
func TestProtectedPathReadAsTheAppReadsIt(t *testing.T) {
	var reached atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	defer app.Close()

	f := &Front{sessions: memorySessions(t), plain: true, BaseURL: "https://demarches.mairie.example", AppID: "app",
		cache: &assertions{m: map[string]*handOff{}}, now: time.Now, logger: zap.NewNop(), audit: zap.NewNop(),
		pipe: &pipeline.Pipeline{}}
	f.protect.paths = caddyhttp.MatchPath{"/espace-famille/*"}
	port := serveFront(t, f, app.Listener.Addr().String())

	// status sends the request target as written (no client cleans it).
	status := func(target string) int {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: demarches.mairie.example\r\nConnection: close\r\n\r\n", target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	for _, target := range []string{
		"/espace-famille/dossier",
		"/ESPACE-FAMILLE/dossier",
		"/espace-famille;jsessionid=AB12/dossier",
		"/espace-famille;/dossier",
		"/espace-famille%3Bjsessionid=1/dossier",
		"/static/..;/espace-famille/dossier",
		"/static/..;x=1/espace-famille/",
		"/espace-famille./dossier",
		"/espace-famille%20/dossier",
	} {
		before := reached.Load()
		if got := status(target); got != http.StatusSeeOther || reached.Load() != before {
			t.Errorf("%s without a session: %d, app reached %t; want the login redirect", target, got, reached.Load() != before)
		}
	}
	for _, target := range []string{
		"/espace-famille;x/.../../dossier", // Tomcat: "..." is a name the ".." removes
		"/espace-famille;x/%20/../dossier",
		"/espace-famille;x/.%20/../dossier",
		"/espace-famille;x%2F..%2F/dossier", // Tomcat drops ;x%2F..%2F before decoding
		"/espace-famille;%2f..%2f/dossier",
		`/espace-famille\...\..\dossier`,
		"/accueil/.../../espace-famille/x",
		"/a%2Fb", "/a%5cb", "/espace-famille%5Cdossier", `/espace-famille\dossier`, `/static\..\espace-famille\dossier`,
	} {
		before := reached.Load()
		if got := status(target); got != http.StatusBadRequest || reached.Load() != before {
			t.Errorf("%s: %d, app reached %t; want 400", target, got, reached.Load() != before)
		}
	}
	for _, target := range []string{"/accueil", "/accueil;jsessionid=AB12", "/static/app.js", "/espace-familles/x", "/a/./b/../c", "/a..b/c.d"} {
		before := reached.Load()
		if got := status(target); got != http.StatusOK || reached.Load() == before {
			t.Errorf("%s (not protected): %d, app reached %t", target, got, reached.Load() != before)
		}
	}
}

// FuzzAppPath: appPath's reading is a clean absolute path, with nothing
// left for an app server to read differently (no parameter, no `\`, no dot
// segment, no segment ending in a dot or a space), and reading it again
// changes nothing.
func FuzzAppPath(f *testing.F) {
	for _, s := range []string{"/espace-famille;jsessionid=1/x", "/static/..;/espace-famille/", `/a\..\b`, "/a. /b./", "/;", "/..;/..;/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			return // a request path (net/url: origin form)
		}
		got := appPath(p)
		if !strings.HasPrefix(got, "/") || strings.ContainsAny(got, `;\`) || strings.Contains(got, "//") {
			t.Fatalf("appPath(%q) = %q", p, got)
		}
		for _, seg := range strings.Split(strings.Trim(got, "/"), "/") {
			if seg == "." || seg == ".." || (seg != "" && strings.TrimRight(seg, ". ") != seg) {
				t.Fatalf("appPath(%q) = %q: segment %q", p, got, seg)
			}
		}
		if again := appPath(got); again != got {
			t.Fatalf("appPath(%q) = %q, then %q", p, got, again)
		}
	})
}

// TestAppLogoutReadAsTheAppReadsIt: the app's logout link, as a Tomcat app
// without cookies writes it (;jsessionid=…), still ends the front's
// session; another path does not.
func TestAppLogoutReadAsTheAppReadsIt(t *testing.T) {
	f := &Front{sessions: memorySessions(t), AppLogout: "/deconnexion", AfterLogout: "/", cache: &assertions{m: map[string]*handOff{}}}
	app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		return nil
	})
	for target, logsOut := range map[string]bool{
		"/deconnexion": true, "/deconnexion;jsessionid=AB12": true, "/DECONNEXION": true, "/static/..;/deconnexion": true,
		"/deconnexion/autre": false, "/accueil": false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path = target
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Sec-Fetch-Mode", "navigate")
		r.Header.Set("Cookie", "passerelle=TICKET")
		w := httptest.NewRecorder()
		if err := f.ServeHTTP(w, r, app); err != nil {
			t.Fatal(err)
		}
		ended := strings.Contains(strings.Join(w.Header().Values("Set-Cookie"), ""), "passerelle=;")
		if ended != logsOut {
			t.Errorf("%s: session ended %t, want %t (%d)", target, ended, logsOut, w.Code)
		}
	}
}
