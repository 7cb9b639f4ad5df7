package front

import (
	"net/http"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// protectMatcher tells whether a request is for a protected path, the way
// the app behind will read the path as well as the way Caddy does: a path
// is protected when either reading falls under a `protect` pattern.
//
// Caddy's path matcher (case-insensitive, dot segments and doubled slashes
// cleaned) reads the path as Go's net/url decoded it. Legacy app servers
// read more into it, and each difference would let a request reach a
// protected page without a session:
//   - path parameters: Tomcat, Jetty and WebLogic drop `;…` from every
//     segment, so /espace-famille;jsessionid=1/x is /espace-famille/x and
//     /static/..;/espace-famille/x climbs out of /static;
//   - IIS takes `\` for `/`, and Windows drops the dots and spaces that end
//     a segment (/espace-famille./x, /espace-famille%20/x).
//
// appPath applies all of them, then cleans the dot segments; the result is
// matched too. Reading more paths as protected fails closed: such a request
// needs the session, and its identity goes with it, as any protected one.
type protectMatcher struct {
	paths caddyhttp.MatchPath
}

// match reports whether r's path, read either way, is protected.
func (m protectMatcher) match(r *http.Request) bool {
	if m.paths == nil {
		return false
	}
	if ok, _ := m.paths.MatchWithError(r); ok {
		return true
	}
	p := appPath(r.URL.Path)
	if p == r.URL.Path {
		return false
	}
	u := *r.URL
	u.Path, u.RawPath = p, ""
	r2 := r.WithContext(r.Context()) // the matcher reads the context's replacer
	r2.URL = &u
	ok, _ := m.paths.MatchWithError(r2)
	return ok
}

// ambiguousPath reports a request path that app servers read differently
// from each other and from Caddy, in ways no page needs, and that could
// otherwise reach a protected page without a session:
//   - a backslash, raw or encoded, or an encoded slash (%2F): Tomcat refuses
//     them, IIS takes \ for /, others decode them into separators; and
//     Tomcat drops path parameters before decoding, so
//     /espace-famille;x%2F..%2F/dossier is /espace-famille/dossier to it;
//   - a segment made only of dots and spaces, other than . and .., once its
//     path parameters are dropped: Tomcat keeps "..." as a name that a
//     following .. removes, Windows trims it to nothing.
//
// The front refuses them (400), as the API refuses ambiguous paths
// (SECURITY.md D06).
func ambiguousPath(r *http.Request) bool {
	// The target as received, and as a handler before may have rewritten
	// it (EscapedPath encodes a raw \ as %5C).
	received, _, _ := strings.Cut(r.RequestURI, "?")
	for _, raw := range []string{received, r.URL.EscapedPath()} {
		if strings.Contains(raw, `\`) || containsFold(raw, "%2f") || containsFold(raw, "%5c") {
			return true
		}
	}
	for seg := range strings.SplitSeq(strings.ReplaceAll(r.URL.Path, `\`, "/"), "/") {
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		if seg != "" && seg != "." && seg != ".." && strings.TrimRight(seg, ". ") == "" {
			return true
		}
	}
	return false
}

// containsFold reports whether s holds sub (ASCII) in any case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// isAppLogout reports whether a request path is the app's logout path
// (app_logout), read as match reads it, so that the front's session ends
// with the app's however the app writes its logout link (a Tomcat app
// without cookies appends ;jsessionid=…).
func (f *Front) isAppLogout(p string) bool {
	return f.AppLogout != "" && (p == f.AppLogout || strings.EqualFold(appPath(p), appPath(f.AppLogout)))
}

// appPath is the path as a legacy app server reads it: `\` taken for `/`,
// each segment's path parameters (from its first `;`) and trailing dots and
// spaces dropped, then dot segments resolved (path.Clean, keeping a
// trailing slash). Since match also tries the path as it came, appPath can
// only add protected readings, never remove one.
func appPath(p string) string {
	if !readDifferently(p) {
		return p // most paths: no split, no allocation
	}
	segs := strings.Split(strings.ReplaceAll(p, `\`, "/"), "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			s = s[:j] // "..;x" is "..", as Tomcat reads it
		}
		if s != "." && s != ".." {
			s = strings.TrimRight(s, ". ")
		}
		segs[i] = s
	}
	out := path.Clean("/" + strings.Join(segs, "/"))
	if strings.HasSuffix(p, "/") && out != "/" {
		out += "/"
	}
	return out
}

// readDifferently reports whether appPath may change p: it holds a `;`, a
// `\`, a doubled `/`, or a segment ending in a dot or a space (dot segments
// included). "/static/app.js" does not.
func readDifferently(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == ';' || c == '\\':
			return true
		case c == '/' && i+1 < len(p) && p[i+1] == '/':
			return true
		case (c == '.' || c == ' ') && (i+1 == len(p) || p[i+1] == '/'):
			return true
		}
	}
	return false
}
