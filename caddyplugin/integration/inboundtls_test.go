package integration

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// The TLS site of TestE04_InboundTLS and its automatic HTTPS ports.
const (
	inboundHTTPSPort = 18092
	inboundHTTPPort  = 18093
	inboundHost      = "api.passerelle.test"
)

// issueRSA makes an RSA server certificate for name and 127.0.0.1: with an
// RSA key the server could choose a static-RSA key exchange, which the
// policy must refuse (ECDSA certificates cannot offer one at all).
func (ca *testCA) issueRSA(t *testing.T, name string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// inboundConfig is the test gateway with automatic HTTPS on (on test
// ports) and a TLS site serving the API as deploy/Caddyfile.production
// does: Caddy's default TLS policy, and the production template's global
// option about redirects when redirects is false.
func inboundConfig(t *testing.T, redirects bool, certFile, keyFile string) string {
	global := fmt.Sprintf("http_port %d\n\thttps_port %d", inboundHTTPPort, inboundHTTPSPort)
	if !redirects {
		global += "\n\tauto_https disable_redirects"
	}
	base := config(t, options{MaxEntries: 18092})
	if !strings.Contains(base, "\tauto_https off\n") {
		t.Fatal("the harness's global options changed: update this test")
	}
	return strings.Replace(base, "auto_https off", global, 1) + fmt.Sprintf(`
https://%s {
	bind 127.0.0.1
	tls %s %s
	passerelle
	reverse_proxy 127.0.0.1:%d
}
`, inboundHost, certFile, keyFile, sandboxPort)
}

// TestE04_InboundTLS (SECURITY.md E04): the gateway's own TLS listener,
// with Caddy's defaults as the production template leaves them, follows
// the outbound policy: TLS 1.0 and 1.1, CBC, static-RSA and 3DES suites are
// refused by the server; ECDHE with AES-GCM or ChaCha20-Poly1305 and TLS 1.3
// serve the API. With the production template's `auto_https
// disable_redirects`, nothing listens on the plain-HTTP port, so a call
// sent to http:// fails at connect, token unsent; without it Caddy answers
// that call with a 308 (after the token went in clear), which the
// configuration audit reports as PA21.
// req: E04
func TestE04_InboundTLS(t *testing.T) {
	ca := newTestCA(t, "public CA")
	certPEM, keyPEM := ca.issueRSA(t, inboundHost)
	certFile, keyFile := writeFile(t, "public.pem", certPEM), writeFile(t, "public-key.pem", keyPEM)
	setEnv(t)
	tester := caddytest.NewTester(t)
	t.Cleanup(func() { unload(t) })
	production := inboundConfig(t, false, certFile, keyFile)
	tester.InitServer(production, "caddyfile")

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	call := func(c *tls.Config) (*http.Response, error) {
		c.RootCAs, c.ServerName = roots, inboundHost
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return new(net.Dialer).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", inboundHTTPSPort))
			}}}
		req, _ := http.NewRequest(http.MethodGet, "https://"+inboundHost+qf("recipient="+siret), nil)
		req.Header.Set("Authorization", "Bearer cnaf_qfv2")
		return client.Do(req)
	}
	for _, tc := range []struct {
		name   string
		config *tls.Config
		served bool
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 ECDHE AES-128-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.2 ECDHE AES-256-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}, true},
		{"TLS 1.2 ECDHE ChaCha20-Poly1305", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		{"TLS 1.2 ECDHE AES-CBC", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}}, false},
		{"TLS 1.2 ECDHE AES-CBC-SHA256", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256}}, false},
		{"TLS 1.2 static RSA AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}}, false},
		{"TLS 1.2 3DES", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := call(tc.config)
			if !tc.served {
				// The server refused the handshake (its alert), not the client.
				if err == nil {
					resp.Body.Close()
					t.Fatalf("served over %s, %s", tls.VersionName(resp.TLS.Version), tls.CipherSuiteName(resp.TLS.CipherSuite))
				}
				if !strings.Contains(err.Error(), "remote error: tls:") {
					t.Fatalf("refused by the client, not the server: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if v := resp.TLS.Version; v < tc.config.MinVersion || tc.config.CipherSuites != nil && resp.TLS.CipherSuite != tc.config.CipherSuites[0] {
				t.Fatalf("served over %s, %s", tls.VersionName(v), tls.CipherSuiteName(resp.TLS.CipherSuite))
			}
		})
	}

	// Plain HTTP to the TLS port: Go's server answers 400 itself, no redirect.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", inboundHTTPSPort, qf("recipient="+siret)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("plain HTTP to the TLS port: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The plain-HTTP port: nothing listens.
	plainCall := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", inboundHTTPPort, qf("recipient="+siret)), nil)
		req.Host = inboundHost
		req.Header.Set("Authorization", "Bearer cnaf_qfv2")
		return (&http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	}
	if resp, err := plainCall(); !errors.Is(err, syscall.ECONNREFUSED) {
		if err == nil {
			resp.Body.Close()
			t.Fatalf("the plain-HTTP port answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		t.Fatalf("the plain-HTTP port: %v, want connection refused", err)
	}

	// Without disable_redirects: the call is answered with a 308 to https://
	// (the token went in clear first), and the audit reports PA21; it
	// reports nothing of the kind for the production setting.
	redirecting := inboundConfig(t, true, certFile, keyFile)
	tester.InitServer(redirecting, "caddyfile")
	resp, err = plainCall()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "https://"+inboundHost) {
		t.Fatalf("automatic HTTPS: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range []struct {
		config string
		pa21   bool
	}{{production, false}, {redirecting, true}} {
		_, out := audit(t, nil, "--config", writeFile(t, "Caddyfile", c.config), "--adapter", "caddyfile")
		if got := strings.Contains(out, "PA21 HIGH") && strings.Contains(out, inboundHost+": plain-HTTP calls get a 308"); got != c.pa21 {
			t.Errorf("audit reports PA21: %v, want %v\n%s", got, c.pa21, out)
		}
	}
}
