package front

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds a return_to value.
const maxReturnTo = 1024

// SafeReturnTo returns v when it is a path of this site the browser may be
// sent back to after FranceConnect, and false otherwise: no open redirect.
// Accepted: an absolute path with an optional query ("/demarche/?etape=2"),
// printable ASCII, at most 1 KiB. Refused: anything with a scheme or a host
// ("https://evil.example", "//evil.example"), a backslash anywhere (browsers
// read "/\evil.example" as "//evil.example"), an encoded slash or backslash
// at the start ("/%2F…", "/%5C…"), dot segments ("/./", "/%2e%2e/"), empty
// segments ("/a//b"),
// control characters, a fragment, and the front's own routes.
func SafeReturnTo(v string) (string, bool) {
	if v == "" || len(v) > maxReturnTo || v[0] != '/' {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e || c == '\\' || c == '#' {
			return "", false
		}
	}
	if strings.HasPrefix(v, "//") {
		return "", false
	}
	if len(v) >= 4 && v[1] == '%' {
		if enc := strings.ToUpper(v[2:4]); enc == "2F" || enc == "5C" {
			return "", false
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	// No dot segment, raw or encoded: http.Redirect would clean
	// "/./%2Fevil" into "/%2Fevil", past the check above. No empty segment
	// either ("/a//b"): http.Redirect would send the browser to "/a/b",
	// which never equals the session's return_to, so its Cas 2 hand-off
	// would never happen while the session lived on.
	segs := strings.Split(u.Path, "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || seg == "" && i > 0 && i < len(segs)-1 {
			return "", false
		}
	}
	if strings.HasPrefix(u.Path, RoutePrefix) || u.Path+"/" == RoutePrefix {
		return "", false
	}
	return v, true
}
