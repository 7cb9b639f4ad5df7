package front

import (
	"net/http"
	"strings"
)

// The front's own cookies, in both their plain-HTTP and HTTPS spellings
// (cookieName, accountCookie, bindingCookie).
var (
	ownCookies        = []string{"passerelle", "__Host-passerelle", "passerelle-account", "__Host-passerelle-account"}
	ownCookiePrefixes = []string{"passerelle-login-", "__Secure-passerelle-login-"}
)

// isOwnCookie reports whether a cookie name is one the front sets.
func isOwnCookie(name string) bool {
	for _, n := range ownCookies {
		if name == n {
			return true
		}
	}
	for _, p := range ownCookiePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// stripOwnCookies removes the front's cookies from the Cookie fields of a
// request before it goes to the app: the session ticket is the citizen's
// session credential at the gateway and the app has no use for it (nor for
// the sealed account or a login binding); an app that logs its requests'
// cookies must not hold it. Every other cookie is kept byte for byte, in
// its order: the fields are cut at ";" and pairs compared by name, never
// parsed and rebuilt. A field left empty is dropped.
func stripOwnCookies(h http.Header) {
	fields := h["Cookie"]
	if len(fields) == 0 {
		return
	}
	kept := fields[:0:0]
	for _, field := range fields {
		if !strings.Contains(field, "passerelle") {
			kept = append(kept, field) // the common case: nothing to cut
			continue
		}
		var b strings.Builder
		for pair := range strings.SplitSeq(field, ";") {
			name, _, _ := strings.Cut(pair, "=")
			if isOwnCookie(strings.TrimSpace(name)) || strings.TrimSpace(pair) == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(strings.TrimSpace(pair))
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}
