package outbound

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testCA issues server certificates for the handshake matrix.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "E03 test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert, key, pool}
}

// issue returns a leaf for names, valid over [from, to], with an RSA key
// when rsaKey (RSA key exchange and CBC suites need one) and ECDSA else.
func (ca *testCA) issue(t *testing.T, names []string, from, to time.Time, rsaKey bool) tls.Certificate {
	t.Helper()
	var pub, priv any
	if rsaKey {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		pub, priv = &k.PublicKey, k
	} else {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub, priv = &k.PublicKey, k
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if names[0] == "wrong.example" {
		tmpl.IPAddresses = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}

// TestE03_HandshakeMatrix: the client policy refuses a server offering TLS
// 1.1 only, CBC suites only or static RSA key exchange only, a certificate
// expired, for another name or from an unknown CA; it talks to one
// offering TLS 1.2 with ECDHE-GCM, and prefers TLS 1.3. Go's default
// client refuses most of these too; the CBC case is the policy's own (its
// control: the default client takes CBC).
// req: E03
func TestE03_HandshakeMatrix(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	good := ca.issue(t, []string{"localhost"}, now.Add(-time.Hour), now.Add(time.Hour), false)
	goodRSA := ca.issue(t, []string{"localhost"}, now.Add(-time.Hour), now.Add(time.Hour), true)
	cases := []struct {
		name  string
		cfg   *tls.Config
		roots bool // the client trusts the test CA
		ok    bool
		want  uint16 // negotiated version when ok
	}{
		{"TLS 1.3", &tls.Config{Certificates: []tls.Certificate{good}}, true, true, tls.VersionTLS13},
		{"TLS 1.2 ECDHE-GCM", &tls.Config{Certificates: []tls.Certificate{good}, MaxVersion: tls.VersionTLS12}, true, true, tls.VersionTLS12},
		{"TLS 1.1 only", &tls.Config{Certificates: []tls.Certificate{goodRSA}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, true, false, 0},
		{"CBC only", &tls.Config{Certificates: []tls.Certificate{goodRSA}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256}}, true, false, 0},
		{"static RSA only", &tls.Config{Certificates: []tls.Certificate{goodRSA}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}}, true, false, 0},
		{"expired", &tls.Config{Certificates: []tls.Certificate{ca.issue(t, []string{"localhost"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour), false)}}, true, false, 0},
		{"wrong name", &tls.Config{Certificates: []tls.Certificate{ca.issue(t, []string{"wrong.example"}, now.Add(-time.Hour), now.Add(time.Hour), false)}}, true, false, 0},
		{"unknown CA", &tls.Config{Certificates: []tls.Certificate{good}}, false, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte("ok"))
			}))
			srv.TLS = tc.cfg
			srv.StartTLS()
			defer srv.Close()
			c := Client(5 * time.Second)
			if tc.roots {
				c.Transport.(*http.Transport).TLSClientConfig.RootCAs = ca.pool
			}
			if tc.name == "CBC only" {
				// The control: Go's default client takes the CBC suite.
				plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
				resp, err := plain.Get(srv.URL)
				if err != nil {
					t.Fatalf("Go's default client refused CBC too (%v): the case proves nothing", err)
				}
				resp.Body.Close()
			}
			resp, err := c.Get(srv.URL)
			if !tc.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("handshake accepted (%x)", resp.TLS.CipherSuite)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.TLS.Version != tc.want {
				t.Fatalf("version %x, want %x", resp.TLS.Version, tc.want)
			}
		})
	}
}

// TestClientFollowsNoRedirect: a 307 from a token endpoint is answered as
// it is, never followed with the credential.
func TestClientFollowsNoRedirect(t *testing.T) {
	hits := 0
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	resp, err := Client(time.Second).Post(srv.URL, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || hits != 0 {
		t.Fatalf("status %d, %d requests elsewhere", resp.StatusCode, hits)
	}
}

// TestE08_StalledPhases: a server that accepts the connection and never
// completes the TLS handshake fails the call at TLSHandshakeTimeout; one
// that reads the request and never answers fails it at
// ResponseHeaderTimeout; each within 10 % of its deadline (0.5 s at
// least), whatever longer bound the caller set.
// req: E08
func TestE08_StalledPhases(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the real deadlines (3 s and 10 s)")
	}
	stall := func(t *testing.T, serve func(net.Conn)) string {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go serve(c)
			}
		}()
		return ln.Addr().String()
	}
	hold := func(c net.Conn) { // reads whatever comes, never answers
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}
	cases := []struct {
		name     string
		url      string
		deadline time.Duration
	}{
		{"TLS handshake", "https://" + stall(t, hold), TLSHandshakeTimeout},
		{"response headers", "http://" + stall(t, hold), ResponseHeaderTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			resp, err := Client(time.Minute).Get(tc.url)
			took := time.Since(start)
			if err == nil {
				resp.Body.Close()
				t.Fatal("a stalled server answered")
			}
			// +10 %, and at least half a second for a machine busy with
			// other packages' tests.
			if slack := max(tc.deadline/10, 500*time.Millisecond); took < tc.deadline || took > tc.deadline+slack {
				t.Fatalf("failed after %v, want %v (+%v): %v", took, tc.deadline, slack, err)
			}
		})
	}
}
