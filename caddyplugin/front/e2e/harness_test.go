// Package e2e tests the front end to end: the built binary (real Caddy
// runtime), two gateway instances behind a load balancer without
// stickiness on one real redis-server, the sandbox FranceConnect (real
// JOSE) and the demo legacy app in a third process, and a real browser
// (chromedp driving Debian's chromium) where a page is involved.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

const (
	fsClientID = "6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950"
	fsSecret   = "e2e-fs-secret-canary-3b1d"
	fdClientID = "423dcbdc5a15ece61ed00ff5989d72379c26d9ed4c8e4e05a87cffae019586e0"
	fdSecret   = "e2e-fd-secret-canary-77aa"
	siret      = "13002526500013"
)

// env is the running system.
type env struct {
	base     string // the load balancer: the site's public origin
	fc       string // the sandbox FranceConnect's origin
	lb       *balancer
	redis    string
	logs     []string // every process's log file
	auditLog string
	internal [2]string // each instance's internal listener: JWKS, /metrics
	gateways [2]string // each instance's public listener, behind the balancer
}

// balancer spreads requests over the two gateway instances in turn, like a
// load balancer without stickiness; force pins the next request.
type balancer struct {
	targets [2]*httputil.ReverseProxy
	next    atomic.Int64
	force   atomic.Int64 // 0: round robin; 1 or 2: that instance
	served  [2]atomic.Int64
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(b.next.Add(1) % 2)
	if f := b.force.Load(); f != 0 {
		i = int(f - 1)
	}
	b.served[i].Add(1)
	b.targets[i].ServeHTTP(w, r)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func repoRoot(t testing.TB) string {
	t.Helper()
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "../../.."))
}

// buildBinary builds cmd/passerelle (a link step once the packages are built).
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "passerelle")
	cmd := exec.Command("go", "build", "-tags", "nobadger,nomysql,nopgx", "-o", bin, "./cmd/passerelle")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// run starts the binary on a Caddyfile and stops it when t ends.
func run(t testing.TB, bin, name, caddyfile string, e *env) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", conf)
	cmd.Dir = repoRoot(t)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "E2E_FS_SECRET="+fsSecret, "E2E_FD_SECRET="+fdSecret,
		"E2E_CACHE_SECRET=e2e-cache-secret-0123456789abcdef0123456789", "E2E_FRONT_SECRET=e2e-front-secret-0123456789abcdef01234567")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.logs = append(e.logs, logPath)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log (end):\n%s", name, tail(string(b), 3000))
			}
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitFor(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", url)
}

// startEnv starts the upstream process (sandbox FranceConnect, sandbox
// provider, demo app), two gateway instances sharing Redis, secrets and
// keys, and the balancer in front of them.
func startEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	bin := buildBinary(t)
	e := &env{redis: redistest.Addr(t)}
	pFC, pApp, pLB := freePort(t), freePort(t), freePort(t)
	pGW := [2]int{freePort(t), freePort(t)}
	pJWKS := [2]int{freePort(t), freePort(t)}
	e.base = fmt.Sprintf("http://127.0.0.1:%d", pLB)
	e.fc = fmt.Sprintf("http://127.0.0.1:%d", pFC)

	key, err := fcverify.GenerateKey("ECDH-ES")
	if err != nil {
		t.Fatal(err)
	}
	keyJSON, _ := json.Marshal(key)
	keyPath := filepath.Join(t.TempDir(), "enc.jwk")
	if err := os.WriteFile(keyPath, keyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	e.auditLog = filepath.Join(t.TempDir(), "audit.log")

	up := fmt.Sprintf(upstreamConf, pFC, pFC, fdClientID, pJWKS[0], fsClientID, e.base, e.base, pApp, e.base)
	if opts.latency > 0 {
		up = strings.Replace(up, "\t\tservice_provider", fmt.Sprintf("\t\tuserinfo_latency %s\n\t\tservice_provider", opts.latency), 1)
		up = strings.Replace(up, "\tpasserelle_sandbox_provider {", fmt.Sprintf("\tpasserelle_sandbox_provider {\n\t\tlatency %s", opts.latency), 1)
	}
	run(t, bin, "upstream", up, e)
	waitFor(t, e.fc+"/api/v2/jwks")
	for i := range 2 {
		run(t, bin, fmt.Sprintf("gateway%d", i+1), fmt.Sprintf(gatewayConf,
			e.auditLog+fmt.Sprint(i), pFC, fdClientID, keyPath, e.redis,
			filepath.Join(repoRoot(t), "deploy/sandbox/habilitations.yaml"),
			pJWKS[i], pFC, pGW[i], e.base, pFC, fsClientID, fmt.Sprintf("http://127.0.0.1:%d", pJWKS[1-i]), pFC, pApp), e)
	}
	for i := range 2 {
		e.internal[i] = fmt.Sprintf("http://127.0.0.1:%d", pJWKS[i])
		e.gateways[i] = fmt.Sprintf("http://127.0.0.1:%d", pGW[i])
	}
	e.lb = &balancer{}
	for i := range 2 {
		waitFor(t, fmt.Sprintf("http://127.0.0.1:%d/.passerelle/jwks.json", pGW[i]))
		u, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", pGW[i]))
		// A load balancer keeps the public Host, and says where the
		// client is; the gateways do not trust it (no trusted_proxies).
		e.lb.targets[i] = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		}}
	}
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", pLB), Handler: e.lb, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return e
}

// envOptions vary the system.
type envOptions struct {
	// latency delays the sandbox FranceConnect's userinfo and the sandbox
	// provider's answers.
	latency time.Duration
}

// upstreamConf: the sandbox FranceConnect with the service provider
// registered for the balancer's origin, the sandbox provider, the demo app.
const upstreamConf = `{
	admin off
	auto_https off
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	passerelle_sandbox_fc {
		issuer http://127.0.0.1:%d/api/v2
		client_id %s
		client_secret {env.E2E_FD_SECRET}
		gateway_jwks http://127.0.0.1:%d/.well-known/passerelle/jwks.json
		service_provider %s {env.E2E_FS_SECRET} {
			redirect_uri %s/.passerelle/fc/callback
			post_logout_redirect_uri %s/.passerelle/fc/logout-callback
		}
	}
	passerelle_sandbox_provider {
		require_authorization "Bearer e2e-provider-key"
	}
	respond 404
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	passerelle_sandbox_demo_app {
		front_url %s
	}
}
`

// gatewayConf: one gateway instance; both share Redis, the decryption key,
// every secret, and the public origin (the balancer's).
const gatewayConf = `{
	admin off
	auto_https off
	log audit {
		include passerelle.audit
		output file %s
	}
	passerelle {
		mode sandbox
		franceconnect {
			issuer http://127.0.0.1:%d/api/v2
			client_id %s
			client_secret {env.E2E_FD_SECRET}
			decryption_key {file.%s}
		}
		cache {
			secret {env.E2E_CACHE_SECRET}
			redis {
				addrs %s
			}
		}
		habilitations %s
		upstream CNAV {
			header Authorization "Bearer e2e-provider-key"
		}
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	handle /metrics {
		metrics
	}
	# The gateway's own API Particulier routes: the remote dataset calls them.
	handle /v3/* {
		passerelle
		reverse_proxy 127.0.0.1:%d
	}
	handle {
		passerelle_jwks
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	passerelle_front {
		base_url %s
		service_name "Portail famille (test)"
		app_id demo-app
		secret {env.E2E_FRONT_SECRET}
		franceconnect {
			issuer http://127.0.0.1:%d/api/v2
			client_id %s
			client_secret {env.E2E_FS_SECRET}
			scopes openid identite_pivot idp_birthdate cnaf_quotient_familial cnaf_allocataires cnaf_enfants cnaf_adresse
		}
		protect /espace-famille/*
		dataset quotient_familial /v3/dss/quotient_familial/france_connect {
			recipient 13002526500013
			label "votre quotient familial"
		}
		# The same, from a remote API Particulier (here the other
		# instance's own routes): an HTTP call, not the pipeline in process.
		dataset qf_distant /v3/dss/quotient_familial/france_connect {
			recipient 13002526500013
			remote %s
		}
		provider {
			reverse_proxy 127.0.0.1:%d
		}
		app_logout /deconnexion
		handoff assertion headers
		# The tests log in many times from one address.
		login_rate 1000/m
	}
	reverse_proxy 127.0.0.1:%d
}
`

// logsText returns every process log and audit file, for canary scans.
func (e *env) logsText(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	files := append([]string{}, e.logs...)
	files = append(files, e.auditLog+"0", e.auditLog+"1")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			b.Write(data)
		}
	}
	return b.String()
}
