package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue makes a leaf certificate: a server's for 127.0.0.1 and the DNS
// name name, or a client's.
func (ca *testCA) issue(t *testing.T, name string, client bool) (tls.Certificate, string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// tlsProvider is a provider over TLS with its certificate, requiring a
// client certificate from clientCA when it is set; it counts the requests
// that reached it and keeps the last client certificate's name.
type tlsProvider struct {
	srv    *httptest.Server
	calls  atomic.Int64
	client atomic.Pointer[string]
}

func newTLSProvider(t *testing.T, cert tls.Certificate, clientCA *testCA) *tlsProvider {
	t.Helper()
	p := new(tlsProvider)
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		if len(r.TLS.PeerCertificates) > 0 {
			name := r.TLS.PeerCertificates[0].Subject.CommonName
			p.client.Store(&name)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, qfBody)
	}))
	p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.cert)
		p.srv.TLS.ClientAuth, p.srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

// TestE06_E07_ProviderMTLSAndPinnedCA (SECURITY.md E06, E07): a provider
// route set as deploy/Caddyfile.production documents it — the gateway's
// client certificate for that provider (tls_client_auth) and that
// provider's CA only (tls_trust_pool) — reaches a provider that requires
// the certificate, which sees the gateway's name. A provider presenting a
// certificate from another CA (a DNS or routing hijack with a publicly
// valid certificate) gets no request: the handshake fails before any
// identity is sent, and the caller gets a provider error. Without the
// client certificate, the provider refuses the handshake: no request
// either.
func TestE06_E07_ProviderMTLSAndPinnedCA(t *testing.T) {
	providerCA, rogueCA, gatewayCA := newTestCA(t, "CNAV CA"), newTestCA(t, "another CA"), newTestCA(t, "gateway clients CA")
	providerCert, _, _ := providerCA.issue(t, "cnav.example", false)
	rogueCert, _, _ := rogueCA.issue(t, "cnav.example", false)
	_, clientPEM, clientKeyPEM := gatewayCA.issue(t, "passerelle-gateway", true)
	caFile := writeFile(t, "cnav-ca.pem", providerCA.pem)
	certFile, keyFile := writeFile(t, "gateway.pem", clientPEM), writeFile(t, "gateway-key.pem", clientKeyPEM)
	mtls := "\n\t\t\ttls_client_auth " + certFile + " " + keyFile + "\n\t\t\ttls_trust_pool file " + caFile

	provider := newTLSProvider(t, providerCert, gatewayCA)
	rogue := newTLSProvider(t, rogueCert, nil)
	for _, tc := range []struct {
		name      string
		target    *tlsProvider
		transport string
		served    bool
	}{
		{"client certificate and pinned CA", provider, mtls, true},
		{"a provider certified by another CA", rogue, mtls, false},
		{"without the client certificate", provider, "\n\t\t\ttls_trust_pool file " + caFile, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start(t, options{MaxEntries: 2901, Recorder: tc.target.srv.URL, ProviderTransport: tc.transport})
			before := tc.target.calls.Load()
			a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
			reached := tc.target.calls.Load() != before
			switch {
			case tc.served && (a.status != 200 || !reached):
				t.Fatalf("status %d, provider reached %v: %s", a.status, reached, a.body)
			case tc.served:
				if name := tc.target.client.Load(); name == nil || *name != "passerelle-gateway" {
					t.Errorf("the provider saw client certificate %v", name)
				}
			case a.status < 500 || reached:
				t.Fatalf("status %d, provider reached %v: want a provider error and no request", a.status, reached)
			}
		})
	}
}
