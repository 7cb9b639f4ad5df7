// Package urlhost reads the host of a URL as a resolver will: the checks
// that refuse a test platform in production mode (FranceConnect's,
// DataPass's) compare that form, so that another spelling of the same host
// cannot get past them.
package urlhost

import (
	"net/url"
	"strings"

	"golang.org/x/net/idna"
)

// Of returns the host of rawURL mapped as IDNA lookups map it (other dots
// such as 。 and ．, other letter forms), in lower case, without the root's
// trailing dot; ok is false when the URL or its host cannot be read.
func Of(rawURL string) (host string, ok bool) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return "", false
	}
	host, err = idna.Lookup.ToASCII(u.Hostname())
	if err != nil {
		return "", false
	}
	return strings.TrimSuffix(strings.ToLower(host), "."), true
}
