// Package outbound is the TLS and timeout policy of the gateway's own
// HTTP clients: FranceConnect (checktoken, JWKS, the front's login side),
// the providers' token endpoints, DataPass's API and a remote API
// Particulier. SECURITY.md E03: TLS 1.2 at least, 1.3 preferred, TLS 1.2
// suites limited to ECDHE with AES-GCM or ChaCha20-Poly1305, the chain and
// the host name always verified. E08: dial 2 s, TLS handshake 3 s,
// response headers 10 s. Caddy's reverse_proxy to the providers has its own
// transport, set in the Caddyfile.
package outbound

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Timeouts of every outbound connection (E08).
const (
	DialTimeout           = 2 * time.Second
	TLSHandshakeTimeout   = 3 * time.Second
	ResponseHeaderTimeout = 10 * time.Second
)

// cipherSuites are the TLS 1.2 suites offered (TLS 1.3's are Go's, all
// AEAD): forward secrecy and authenticated encryption only; no CBC, static
// RSA key exchange, 3DES or RC4.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig returns a new client TLS configuration with the policy: the
// system's roots (a caller may set RootCAs), verification never skipped.
func TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: cipherSuites}
}

// Transport returns a new transport with the policy: the TLS configuration,
// the timeouts, the environment's proxy settings, HTTP/2 when offered.
func Transport() *http.Transport {
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       TLSConfig(),
		TLSHandshakeTimeout:   TLSHandshakeTimeout,
		ResponseHeaderTimeout: ResponseHeaderTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   8,
	}
}

// Client returns a client on a new Transport that follows no redirect (a
// 307 would send a credential elsewhere) and keeps no cookies; timeout
// bounds each whole call (0: only the request's context does).
func Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: Transport(), Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
