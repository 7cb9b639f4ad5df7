// Package bearer extracts the single bearer credential of a request
// (SECURITY.md A01–A03, RFC 6750 §2).
//
// The token is read only from one Authorization header field, scheme
// "Bearer" (any letter case), exactly one space, then a b64token of at most
// MaxTokenLen bytes. Every other placement RFC 6750 allows (the access_token
// query parameter, a form body, and in practice a cookie named access_token)
// is refused, alone or next to the header: never "first one wins". So is an
// X-Api-Key field, the other modality's credential (ExtractAPIKey), which
// would otherwise be a second credential silently ignored.
//
// Extract checks sizes first, does not read the body and does not allocate:
// its cost is bounded by the header, query and cookie sizes that the server
// already limits (F01), never by the token.
package bearer

import (
	"errors"
	"net/http"
	"strings"
)

// MaxTokenLen is the largest token accepted, in bytes (A03).
const MaxTokenLen = 1024

// maxFieldLen bounds the Authorization field value: "Bearer " + token.
const maxFieldLen = len("Bearer ") + MaxTokenLen

// Errors of Extract. Their text is fixed and never quotes the request.
var (
	// ErrMissing: no credential anywhere (401 50004 on FC routes).
	ErrMissing = errors.New("bearer: no credential")
	// ErrMalformed: oversized, badly formed, duplicated or misplaced
	// credential (401 50001 on FC routes, 00101 on API token routes).
	ErrMalformed = errors.New("bearer: malformed, misplaced or several credentials")
)

const paramName = "access_token" // RFC 6750 §2.2, §2.3

// Extract returns the single bearer token of r, which aliases the header
// value. See the package doc for the rules.
func Extract(r *http.Request) (string, error) {
	fields := r.Header["Authorization"]
	// A03: sizes before anything else.
	for _, v := range fields {
		if len(v) > maxFieldLen {
			return "", ErrMalformed
		}
	}
	// A02: exactly one field. Go's server canonicalises field names, so
	// "authorization" and "AUTHORIZATION" land under the canonical key; a
	// Header built by hand may still hold a non-canonical spelling.
	if len(fields) > 1 || hasOtherSpelling(r.Header) || credentialTrailer(r) {
		return "", ErrMalformed
	}
	// A01: no credential outside the Authorization header; A02: not even
	// an API key next to it.
	if elsewhere(r) || len(r.Header[APIKeyHeader]) > 0 || hasSpelling(r.Header, APIKeyHeader) {
		return "", ErrMalformed
	}
	if len(fields) == 0 {
		return "", ErrMissing
	}
	v := fields[0]
	if len(v) < len("Bearer ")+1 || !strings.EqualFold(v[:6], "Bearer") || v[6] != ' ' {
		return "", ErrMalformed
	}
	tok := v[7:]
	if !ValidToken(tok) {
		return "", ErrMalformed
	}
	return tok, nil
}

// APIKeyHeader is the header field of API Particulier v2's API keys.
const APIKeyHeader = "X-Api-Key"

// ExtractAPIKey returns the single API key of a legacy v2 request: one
// X-Api-Key header field holding a b64token of at most MaxTokenLen bytes,
// with no Authorization field and no credential elsewhere (query, form,
// cookie), under the same rules as Extract: a second credential is
// refused, never ignored.
func ExtractAPIKey(r *http.Request) (string, error) {
	fields := r.Header[APIKeyHeader]
	for _, v := range fields {
		if len(v) > MaxTokenLen {
			return "", ErrMalformed
		}
	}
	if len(fields) > 1 || len(r.Header["Authorization"]) > 0 || hasOtherSpelling(r.Header) ||
		credentialTrailer(r) || hasSpelling(r.Header, APIKeyHeader) || elsewhere(r) {
		return "", ErrMalformed
	}
	if len(fields) == 0 {
		return "", ErrMissing
	}
	if !ValidToken(fields[0]) {
		return "", ErrMalformed
	}
	return fields[0], nil
}

// hasSpelling reports a key equal to canonical in another case.
func hasSpelling(h http.Header, canonical string) bool {
	for k := range h {
		if len(k) == len(canonical) && k != canonical && strings.EqualFold(k, canonical) {
			return true
		}
	}
	return false
}

// ValidToken reports whether tok is a non-empty RFC 6750 b64token of at most
// MaxTokenLen bytes: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
// *"=".
func ValidToken(tok string) bool {
	if len(tok) == 0 || len(tok) > MaxTokenLen {
		return false
	}
	i := 0
	for i < len(tok) && isTokenByte(tok[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(tok) && tok[i] == '=' {
		i++
	}
	return i == len(tok)
}

func isTokenByte(c byte) bool { return tokenBytes[c] }

// tokenBytes marks the b64token bytes before the "=" padding.
var tokenBytes = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/") {
		t[c] = true
	}
	return t
}()

// hasOtherSpelling reports a key equal to "Authorization" in another case.
func hasOtherSpelling(h http.Header) bool { return hasSpelling(h, "Authorization") }

// credentialTrailer reports a request that declares (or carries) an
// Authorization or X-Api-Key trailer, in any spelling: a credential the
// body's end would bring, after the check.
func credentialTrailer(r *http.Request) bool {
	for k := range r.Trailer {
		if strings.EqualFold(k, "Authorization") || strings.EqualFold(k, APIKeyHeader) {
			return true
		}
	}
	return false
}

// elsewhere reports a credential placed outside the Authorization header:
// the access_token query parameter, a form body, or an access_token cookie.
// Names are compared case-insensitively (stricter than RFC 6750).
func elsewhere(r *http.Request) bool {
	if r.URL != nil && queryHas(r.URL.RawQuery) {
		return true
	}
	// Parsed forms, if a handler before us parsed them.
	if mapHas(r.Form) || mapHas(r.PostForm) || r.MultipartForm != nil && mapHas(r.MultipartForm.Value) {
		return true
	}
	// An unread form body is never read here (that would consume it and
	// cost memory proportional to it). A form body can carry a credential
	// (RFC 6750 §2.2) and our routes take no body (F01), so its presence is
	// refused as a possible second credential: fail closed.
	if hasFormBody(r) {
		return true
	}
	for _, line := range r.Header["Cookie"] {
		if cookieHas(line) {
			return true
		}
	}
	return false
}

func mapHas(m map[string][]string) bool {
	for k := range m {
		if strings.EqualFold(k, paramName) {
			return true
		}
	}
	return false
}

func hasFormBody(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return false
	}
	for _, ct := range r.Header["Content-Type"] {
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		ct = strings.TrimSpace(ct)
		if strings.EqualFold(ct, "application/x-www-form-urlencoded") || strings.EqualFold(ct, "multipart/form-data") {
			return true
		}
	}
	return false
}

// queryHas reports whether the raw query holds an access_token parameter,
// percent-decoding keys on the fly ("access%5Ftoken" counts) without
// allocating. '&' and ';' both separate parameters, as some servers split
// on ';'.
func queryHas(q string) bool {
	for q != "" {
		i := 0
		for i < len(q) && q[i] != '&' && q[i] != ';' {
			i++
		}
		kv := q[:i]
		if i < len(q) {
			q = q[i+1:]
		} else {
			q = ""
		}
		if i := strings.IndexByte(kv, '='); i >= 0 {
			kv = kv[:i]
		}
		if escapedEqualFold(kv, paramName) {
			return true
		}
	}
	return false
}

// escapedEqualFold compares the URL-decoded form of s with the ASCII
// string want, case-insensitively. '+' decodes to a space.
func escapedEqualFold(s, want string) bool {
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		case c == '+':
			c = ' '
		}
		if j >= len(want) || lower(c) != want[j] {
			return false
		}
		j++
	}
	return j == len(want)
}

// cookieHas reports whether a Cookie header line holds a cookie named
// access_token (any case, surrounding spaces ignored).
func cookieHas(line string) bool {
	for line != "" {
		var part string
		if i := strings.IndexByte(line, ';'); i >= 0 {
			part, line = line[:i], line[i+1:]
		} else {
			part, line = line, ""
		}
		if i := strings.IndexByte(part, '='); i >= 0 {
			part = part[:i]
		}
		if strings.EqualFold(strings.TrimSpace(part), paramName) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
