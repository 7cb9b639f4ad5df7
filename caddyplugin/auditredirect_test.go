package caddyplugin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/config/audit"
)

// stubPasserelle replaces every passerelle* handler of an adapted
// configuration by a static response: automatic HTTPS is the http app's
// own business, and the passerelle app needs its keys and files.
func stubPasserelle(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if h, _ := x["handler"].(string); strings.HasPrefix(h, "passerelle") {
			return map[string]any{"handler": "static_response", "status_code": "200"}
		}
		for k, e := range x {
			x[k] = stubPasserelle(e)
		}
	case []any:
		for i, e := range x {
			x[i] = stubPasserelle(e)
		}
	}
	return v
}

// plainHTTPRedirects provisions an adapted configuration's http app, which
// sets up Caddy's automatic HTTPS redirects, without binding a port, and
// reports whether a plain-HTTP API call to host gets a redirect from a
// server on the HTTP port.
func plainHTTPRedirects(t *testing.T, adapted []byte, host string) bool {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "logging")
	cfg["admin"] = map[string]any{"disabled": true}
	apps := cfg["apps"].(map[string]any)
	delete(apps, "passerelle")
	stubPasserelle(apps["http"])
	data, _ := json.Marshal(cfg)
	var c caddy.Config
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	ctx, err := caddy.ProvisionContext(&c)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing started: no listener, no certificate management (Caddy
	// offers no way to cancel a provisioned context from outside).
	app, err := ctx.App("http")
	if err != nil {
		t.Fatal(err)
	}
	h := app.(*caddyhttp.App)
	httpPort := h.HTTPPort
	if httpPort == 0 {
		httpPort = caddyhttp.DefaultHTTPPort
	}
	for _, srv := range h.Servers {
		for _, l := range srv.Listen {
			a, err := caddy.ParseNetworkAddress(l)
			if err != nil || a.StartPort > uint(httpPort) || a.EndPort < uint(httpPort) {
				continue
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "http://"+host+"/v3/dss/quotient_familial/france_connect?recipient=13002526500013", nil)
			srv.ServeHTTP(rec, req)
			if rec.Code/100 == 3 || rec.Header().Get("Location") != "" {
				return true
			}
		}
	}
	return false
}

// TestPA21MatchesCaddy: audit rule PA21 (SECURITY.md E04) flags every
// configuration whose plain-HTTP API calls Caddy itself redirects, as
// Caddy sets its redirects up (the http app provisioned, not a model of
// it); the production template's setting gives no redirect and no finding.
// PA21 is conservative: an http:// site of the operator's that refuses is
// still flagged (whether it runs before Caddy's redirects depends on its
// matchers and on the certificates), hence "flagged, no redirect" cases.
// req: E04
func TestPA21MatchesCaddy(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	cert, key := selfSigned(t, "api.mairie.example")
	const global = "{\n\tadmin off\n%s}\n"
	const api = "\tpasserelle\n\treverse_proxy 127.0.0.1:9\n"
	for _, tc := range []struct {
		name, global, sites string
		redirects, flagged  bool
	}{
		{"the production template's setting", "\tauto_https disable_redirects\n",
			"api.mairie.example {\n" + api + "}\n", false, false},
		{"automatic HTTPS, ACME", "", "api.mairie.example {\n" + api + "}\n", true, true},
		{"automatic HTTPS, certificate files", "", "api.mairie.example {\n\ttls " + cert + " " + key + "\n" + api + "}\n", true, true},
		{"the API in a named route", "", "&(api) {\n" + api + "}\napi.mairie.example {\n\tinvoke api\n}\n", true, true},
		{"an http:// site for one path of the name", "",
			"api.mairie.example {\n" + api + "}\nhttp://api.mairie.example/healthz {\n\trespond ok\n}\n", true, true},
		{"an http:// site for the name that refuses", "",
			"api.mairie.example {\n" + api + "}\nhttp://api.mairie.example {\n\trespond 400\n}\n", false, true},
		// Caddy's catch-all redirect answers every name on the HTTP port.
		{"another site's redirects", "",
			"www.mairie.example {\n\trespond ok\n}\nhttp://127.0.0.1:8080 {\n\tbind 127.0.0.1\n" + api + "}\n", true, true},
		{"automatic HTTPS off", "\tauto_https off\n", "api.mairie.example {\n" + api + "}\n", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caddyfile := strings.Replace(global, "%s", tc.global, 1) + tc.sites
			adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
			if err != nil {
				t.Fatal(err)
			}
			findings, err := audit.Run(adapted, audit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			flagged := false
			for _, f := range findings {
				flagged = flagged || f.Rule == "PA21"
			}
			if redirects := plainHTTPRedirects(t, adapted, "api.mairie.example"); redirects != tc.redirects {
				t.Fatalf("Caddy redirects: %v, this case says %v", redirects, tc.redirects)
			}
			if flagged != tc.flagged {
				t.Fatalf("PA21: %v, want %v", flagged, tc.flagged)
			}
		})
	}
}

// selfSigned writes a certificate and its key for name, and returns their
// files.
func selfSigned(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(k)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600) != nil ||
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600) != nil {
		t.Fatal("writing the certificate")
	}
	return certFile, keyFile
}
