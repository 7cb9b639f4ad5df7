package front

import (
	"net/http"
	"strings"
)

// The front's own cookies: the session ticket (cookieName), the sealed
// account in use (accountCookie) and one binding per pending login
// (bindingCookie), prefixed with __Host- on HTTPS.
const (
	sessionCookie       = "passerelle"
	accountCookieName   = "passerelle-account"
	bindingCookiePrefix = "passerelle-login-"
	hostPrefix          = "__Host-"
	securePrefix        = "__Secure-"
)

// Every spelling of them, for stripOwnCookies; __Secure- is the bindings'
// former prefix, still in browsers that started a login before an upgrade.
var (
	ownCookies        = []string{sessionCookie, hostPrefix + sessionCookie, accountCookieName, hostPrefix + accountCookieName}
	ownCookiePrefixes = []string{bindingCookiePrefix, hostPrefix + bindingCookiePrefix, securePrefix + bindingCookiePrefix}
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
		if !strings.Contains(field, sessionCookie) {
			kept = append(kept, field) // the common case: nothing to cut
			continue
		}
		var b strings.Builder
		b.Grow(len(field))
		for pair := range strings.SplitSeq(field, ";") {
			pair = strings.TrimSpace(pair)
			name, _, _ := strings.Cut(pair, "=")
			if pair == "" || isOwnCookie(strings.TrimSpace(name)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(pair)
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
