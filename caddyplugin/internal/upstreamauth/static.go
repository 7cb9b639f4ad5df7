package upstreamauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
)

// Errors. They name no credential.
var (
	ErrBadConfig = errors.New("upstreamauth: invalid configuration")
	// ErrBadHeader: a header name or value holds a forbidden byte (D05).
	ErrBadHeader = errors.New("upstreamauth: forbidden header name or value")
	// ErrTokenUnavailable: no provider token could be obtained; answer 503.
	ErrTokenUnavailable = errors.New("upstreamauth: provider token unavailable")
)

// Headers a credential may not be carried in: framing, routing and
// hop-by-hop fields (D03).
var forbiddenNames = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true, "Upgrade": true,
	"Cookie": true, "Forwarded": true, "X-Forwarded-For": true,
	"Proxy-Authorization": true, "Proxy-Authenticate": true, // hop-by-hop: reverse_proxy drops them
}

type staticHeader struct {
	name, value string
}

// NewStaticHeader returns a Source that sets header name to value. It
// refuses an empty or non-token name, a framing or hop-by-hop name, and a
// value that is empty, has surrounding spaces, or holds a CR, LF, NUL,
// another control byte or a non-ASCII byte (D05).
func NewStaticHeader(name, value string) (Source, error) {
	if !validHeaderName(name) {
		return nil, fmt.Errorf("%w: header name", ErrBadHeader)
	}
	canon := textproto.CanonicalMIMEHeaderKey(name)
	if forbiddenNames[canon] {
		return nil, fmt.Errorf("%w: header %s may not carry a credential", ErrBadHeader, canon)
	}
	if !validHeaderValue(value) {
		return nil, fmt.Errorf("%w: value of header %s", ErrBadHeader, canon)
	}
	return &staticHeader{name: canon, value: value}, nil
}

func (s *staticHeader) Apply(_ context.Context, h http.Header) error {
	h[s.name] = []string{s.value}
	return nil
}

// Invalidate reports false: a static credential has no other value to
// retry with.
func (s *staticHeader) Invalidate(context.Context, http.Header) bool { return false }

// String hides the value, should the Source ever be printed.
func (s *staticHeader) String() string { return "static header " + s.name }

// validHeaderName: a non-empty RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue: non-empty visible ASCII and inner spaces only.
func validHeaderValue(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
