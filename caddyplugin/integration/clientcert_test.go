package integration

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// mtlsPort is the gateway site over TLS that asks callers for a client
// certificate (TestC09_ClientCertificateBinding), as mtlsHost: Caddy
// answers 421 when a request's Host differs from its TLS server name,
// which a client never sends for an IP address.
const (
	mtlsPort = 18091
	mtlsHost = "passerelle.test"
)

// opensslFingerprint writes a certificate's SHA-256 as `openssl x509
// -noout -fingerprint -sha256` prints it.
func opensslFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	pairs := make([]string, 0, sha256.Size)
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return "sha256 Fingerprint=" + strings.Join(pairs, ":")
}

// TestC09_ClientCertificateBinding (SECURITY.md C09): the sandbox
// habilitation, bound to service A's client certificate, over a TLS site
// that asks for one (client_auth mode request, as the README documents
// it). Its FranceConnect token, its API token on an identite route and on
// /api/introspect work with A's certificate; with another party's
// certificate (issued by the same CA), without one, or over plain HTTP
// they are refused (403 00100; introspect: its v2 401 access_denied)
// before any provider call, over HTTP/2; the audit record names the reason,
// and each refusal is a security alert (metric, WARN line).
// req: C09
func TestC09_ClientCertificateBinding(t *testing.T) {
	ca := newTestCA(t, "callers CA")
	_, serverPEM, serverKeyPEM := ca.issue(t, mtlsHost, false)
	certA, _, _ := ca.issue(t, "service A", true)
	certB, _, _ := ca.issue(t, "another party", true)
	sandbox, err := os.ReadFile(writeHabilitations(t))
	if err != nil {
		t.Fatal(err)
	}
	// Its own id each run: the alert lines are spaced per habilitation for
	// the whole process, and -count runs this test again within the minute.
	habID := fmt.Sprintf("c09-%d", time.Now().UnixNano())
	bound := strings.Replace(string(sandbox), `id: "sandbox-toutes-donnees"`, `id: "`+habID+`"`, 1)
	habs := writeFile(t, "habilitations.yaml", strings.Replace(bound,
		"    api_token_sha256:\n", "    client_certificates: [\""+opensslFingerprint(certA.Certificate[0])+"\"]\n    api_token_sha256:\n", 1))
	dir := logDir(t)
	cfg := config(t, options{MaxEntries: 2911, Habilitations: habs, LogDir: dir}) + fmt.Sprintf(`
https://%s:%d {
	bind 127.0.0.1
	tls %s %s {
		client_auth {
			mode request
		}
	}
	passerelle
	reverse_proxy 127.0.0.1:%d
}
`, mtlsHost, mtlsPort, writeFile(t, "server.pem", serverPEM), writeFile(t, "server-key.pem", serverKeyPEM), sandboxPort)
	setEnv(t)
	tester := caddytest.NewTester(t)
	t.Cleanup(func() { unload(t) }) // before dir goes (see start)
	tester.InitServer(cfg, "caddyfile")

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clientWith := func(certs ...tls.Certificate) *http.Client {
		dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", mtlsPort))
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12}}}
	}
	callers := map[string]*http.Client{"service A": clientWith(certA), "another party": clientWith(certB), "no certificate": clientWith()}
	fcRoute := qf("recipient=" + siret)
	identite := plainTarget
	const refusals = "caddy_passerelle_client_certificate_refusals_total"
	refusalsBefore := metricValue(t, refusals)
	for _, tc := range []struct {
		caller, target, token string
		status                int
	}{
		{"service A", fcRoute, "cnaf_qfv2", 200},
		{"service A", identite, "sandbox_all_scopes", 200},
		{"service A", "/api/introspect", "sandbox_all_scopes", 200},
		{"service A", "/api/introspect", "cnaf_qfv2", 200},
		{"another party", fcRoute, "cnaf_qfv2", 403},
		{"another party", identite, "sandbox_all_scopes", 403},
		// introspect answers in the v2 shape: 401 access_denied.
		{"another party", "/api/introspect", "sandbox_all_scopes", 401},
		{"another party", "/api/introspect", "cnaf_qfv2", 401},
		{"no certificate", fcRoute, "cnaf_qfv2", 403},
		{"no certificate", identite, "sandbox_all_scopes", 403},
		{"no certificate", "/api/introspect", "sandbox_all_scopes", 401},
	} {
		t.Run(tc.caller+" "+strings.SplitN(tc.target, "?", 2)[0]+" "+tc.token, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://%s:%d%s", mtlsHost, mtlsPort, tc.target), nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := callers[tc.caller].Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Errorf("served over %s, want HTTP/2", resp.Proto)
			}
			a := answer{status: resp.StatusCode, header: resp.Header, body: body}
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			switch {
			case tc.status == 403 && a.code(t) != "00100":
				t.Errorf("code %s, want 00100", a.code(t))
			case tc.status == 401 && a.json(t)["error"] != "access_denied":
				t.Errorf("introspect refusal %s", a.body)
			}
		})
	}
	// The plain-HTTP site of the same gateway: no TLS, no certificate.
	if a := get(t, gatewayPort, fcRoute, bearer("cnaf_qfv2")...); a.status != 403 || a.code(t) != "00100" {
		t.Errorf("over plain HTTP: %d %s", a.status, a.body)
	}

	// 5 refusals and 2 grants on routes (introspect has no record); the
	// refusals reached no provider.
	refused := 0
	for _, r := range auditLines(t, dir, 7) {
		switch r["decision"] {
		case "deny":
			if r["reason"] != "client_certificate_mismatch" || r["provider_status"] != float64(0) || r["habilitation_id"] != habID {
				t.Errorf("refusal record %v", r)
			}
			refused++
		case "allow":
		default:
			t.Errorf("record %v", r)
		}
	}
	if refused != 5 {
		t.Errorf("%d refusals recorded, want 5", refused)
	}

	// The security alert: 8 refusals counted (introspect's included), and
	// a WARN line for each habilitation and endpoint (at most once a
	// minute each), naming no certificate.
	if n := metricValue(t, refusals) - refusalsBefore; n != 8 {
		t.Errorf("%s grew by %v, want 8", refusals, n)
	}
	serverLog, err := os.ReadFile(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	warned := 0
	for l := range strings.Lines(string(serverLog)) {
		if strings.Contains(l, "client certificate refused") {
			warned++
			if !strings.Contains(l, `"alert":"client_certificate"`) || !strings.Contains(l, `"habilitation":"`+habID+`"`) ||
				strings.Contains(l, "another party") || strings.Contains(l, "service A") {
				t.Errorf("alert line %s", l)
			}
		}
	}
	if warned != 3 {
		t.Errorf("%d alert lines, want one for each of the 3 endpoints", warned)
	}
}
