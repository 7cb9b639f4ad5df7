package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/passerelle-gw/passerelle/caddyplugin"
	_ "github.com/passerelle-gw/passerelle/caddyplugin/front"
	_ "github.com/passerelle-gw/passerelle/caddyplugin/sandbox"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// Fixed loopback ports: caddytest runs one in-process Caddy with its admin
// endpoint on localhost:2999, shared by every test of this package.
const (
	gatewayPort = 18080
	sandboxPort = 18081
	plainPort   = 18082
	recordPort  = 18083
	// internalPort serves health probes and metrics, apart from the API.
	internalPort = 18085

	fsClientID  = "6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950"
	fdClientID  = "423dcbdc5a15ece61ed00ff5989d72379c26d9ed4c8e4e05a87cffae019586e0"
	siret       = "13002526500013"
	providerKey = "Bearer sandbox-provider-key-canary-7f3a"
	qfPath      = "/v3/dss/quotient_familial/france_connect"
)

// fcCounter is a reverse proxy in front of the sandbox FranceConnect that
// counts checktoken and JWKS calls.
type fcCounter struct {
	srv        *httptest.Server
	checktoken atomic.Int64
	jwks       atomic.Int64
}

func newFCCounter(t testing.TB) *fcCounter {
	t.Helper()
	c := new(fcCounter)
	target, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", sandboxPort))
	proxy := httputil.NewSingleHostReverseProxy(target)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/checktoken"):
			c.checktoken.Add(1)
		case strings.HasSuffix(r.URL.Path, "/jwks"):
			c.jwks.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// recorder is a provider that records what reaches it and answers a fixed
// quotient familial.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body string
	code int
	ct   string
	// refuse is an Authorization value answered with 401.
	refuse string
}

func newRecorder(t testing.TB) *recorder {
	t.Helper()
	rec := &recorder{code: 200, ct: "application/json", body: qfBody}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(r.Context()))
		code, body, ct := rec.code, rec.body, rec.ct
		if rec.refuse != "" && r.Header.Get("Authorization") == rec.refuse {
			code = http.StatusUnauthorized
		}
		rec.mu.Unlock()
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Set-Cookie", "provider=secret")
		w.Header().Set("X-Powered-By", "provider-stack")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) set(code int, ct, body string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.code, rec.ct, rec.body = code, ct, body
}

func (rec *recorder) last(t testing.TB) *http.Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("the provider received no request")
	}
	return rec.reqs[len(rec.reqs)-1]
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

const qfBody = `{"data":{"allocataires":[{"nom_naissance":"CANARYNOM","prenoms":"CANARYPRENOM","date_naissance":"1901-02-03","sexe":"M"}],"enfants":[],"adresse":{"destinataire":"CANARYADRESSE"},"quotient_familial":{"fournisseur":"CNAF","valeur":1234,"annee":2024,"mois":2},"secret_new_field":"CANARYNEW"},"links":{},"meta":{"internal":"CANARYMETA"}}`

// otherProviders returns the provider names the default catalogue's
// endpoints call, CNAV aside, sorted: each gets the sandbox provider
// credential, so that a route added to the catalogue needs no harness change.
func otherProviders(t testing.TB) []string {
	t.Helper()
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ep := range cat.Endpoints {
		if ep.ProviderName != "CNAV" && !slices.Contains(names, ep.ProviderName) {
			names = append(names, ep.ProviderName)
		}
	}
	slices.Sort(names)
	return names
}

// options shape one test configuration. Distinct MaxEntries values give a
// test its own core (and so an empty token cache): the usage pool keys on
// the configuration.
type options struct {
	MaxEntries    int
	CheckTokenURL string
	Issuer        string // franceconnect issuer; default: the sandbox FranceConnect's
	Redis         string // address; empty: in-process cache only
	Recorder      string // base URL of a recording provider on recordPort
	Habilitations string // file path; default: a copy of the sandbox file
	OAuth2URL     string // token endpoint base URL: the CNAV credential becomes OAuth2
	LogDir        string // when set, server and access logs are written there
	LogLevel      string // the server log's level (default INFO)
	HabQuota      string // habilitation quota; default: high enough never to bite
	CitizenQuota  string // citizen quota; default: high enough never to bite
	DecryptionKey string // key file paths, comma-separated; default: the sandbox's ephemeral key
	// FCTimeout and JWKSCooldown set franceconnect's timeout and
	// jwks_refresh_cooldown; ProviderHeaderTimeout the recorder site's
	// reverse_proxy response_header_timeout; ProviderTimeout the global
	// provider_timeout (a whole provider call). Empty: the defaults.
	FCTimeout, JWKSCooldown, ProviderHeaderTimeout, ProviderTimeout string
	// AuditOutput replaces the audit trail's inner writer (default: a file
	// in LogDir) and AuditMaxPending its buffer's max_pending (default
	// 10 000).
	AuditOutput     string
	AuditMaxPending int
	// AuditSealKey seals the audit trail (passerelle_sealed, key id
	// "itest") with the key in this file.
	AuditSealKey string
	// ProviderTransport is more of the recorder site's reverse_proxy
	// transport http block (lines starting with "\n\t\t\t").
	ProviderTransport string
}

func writeHabilitations(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/sandbox/habilitations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "habilitations.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func config(t testing.TB, o options) string {
	t.Helper()
	if o.Habilitations == "" {
		o.Habilitations = writeHabilitations(t)
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = 100000
	}
	if o.HabQuota == "" {
		o.HabQuota = "1000000/s"
	}
	if o.CitizenQuota == "" {
		o.CitizenQuota = "1000000/s"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin localhost:2999
	auto_https off
`)
	if o.LogDir != "" {
		level := o.LogLevel
		if level == "" {
			level = "INFO"
		}
		fmt.Fprintf(&b, "\tlog {\n\t\toutput file %s/server.log\n\t\tlevel %s\n\t}\n", o.LogDir, level)
		// The audit trail on its own log, through the batching writer.
		output := "file " + o.LogDir + "/audit.log"
		if o.AuditOutput != "" {
			output = o.AuditOutput
		}
		if o.AuditMaxPending == 0 {
			o.AuditMaxPending = 10000
		}
		format := ""
		if o.AuditSealKey != "" {
			format = "\t\tformat passerelle_sealed {\n\t\t\tkey {file." + o.AuditSealKey + "}\n\t\t\tkey_id itest\n\t\t}\n"
		}
		fmt.Fprintf(&b, "\tlog audit {\n\t\tinclude passerelle.audit\n%s\t\toutput passerelle_buffered {\n\t\t\tflush_interval 50ms\n\t\t\tmax_pending %d\n\t\t\toutput %s\n\t\t}\n\t}\n", format, o.AuditMaxPending, output)
	}
	issuer := o.Issuer
	if issuer == "" {
		issuer = fmt.Sprintf("http://127.0.0.1:%d/api/v2", sandboxPort)
	}
	fmt.Fprintf(&b, `	passerelle {
		mode sandbox
		franceconnect {
			issuer %s
			client_id %s
			client_secret {env.PASSERELLE_TEST_FC_SECRET}
`, issuer, fdClientID)
	for k := range strings.SplitSeq(o.DecryptionKey, ",") {
		if k != "" {
			fmt.Fprintf(&b, "\t\t\tdecryption_key {file.%s}\n", k)
		}
	}
	if o.CheckTokenURL != "" {
		fmt.Fprintf(&b, "\t\t\tchecktoken_url %s\n\t\t\tjwks_url %s\n", o.CheckTokenURL+"/api/v2/checktoken", o.CheckTokenURL+"/api/v2/jwks")
	}
	if o.FCTimeout != "" {
		fmt.Fprintf(&b, "\t\t\ttimeout %s\n", o.FCTimeout)
	}
	if o.JWKSCooldown != "" {
		fmt.Fprintf(&b, "\t\t\tjwks_refresh_cooldown %s\n", o.JWKSCooldown)
	}
	fmt.Fprintf(&b, `		}
		habilitations %s 1s
		rate_limit {
			habilitation %s
			client_ip 1000000/s
			citizen %s
		}
		cache {
			max_entries %d
`, o.Habilitations, o.HabQuota, o.CitizenQuota, o.MaxEntries)
	if o.Redis != "" {
		fmt.Fprintf(&b, "\t\t\tsecret {env.PASSERELLE_TEST_CACHE_SECRET}\n\t\t\tredis {\n\t\t\t\taddrs %s\n\t\t\t}\n", o.Redis)
	}
	b.WriteString("\t\t}\n")
	if o.ProviderTimeout != "" {
		fmt.Fprintf(&b, "\t\tprovider_timeout %s\n", o.ProviderTimeout)
	}
	if o.OAuth2URL != "" {
		fmt.Fprintf(&b, "\t\tupstream CNAV {\n\t\t\toauth2 {\n\t\t\t\ttoken_url %s/token\n\t\t\t\tclient_id passerelle\n\t\t\t\tclient_secret {env.PASSERELLE_TEST_PROVIDER_KEY}\n\t\t\t\tscopes cnav.read\n\t\t\t}\n\t\t}\n", o.OAuth2URL)
	} else {
		b.WriteString("\t\tupstream CNAV {\n\t\t\theader Authorization {env.PASSERELLE_TEST_PROVIDER_KEY}\n\t\t}\n")
	}
	// The other providers of the catalogue: a static header in every variant.
	for _, name := range otherProviders(t) {
		fmt.Fprintf(&b, "\t\tupstream %q {\n\t\t\theader Authorization {env.PASSERELLE_TEST_PROVIDER_KEY}\n\t\t}\n", name)
	}
	fmt.Fprintf(&b, `	}
}

http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	%[4]s
	handle /.well-known/passerelle/jwks.json {
		passerelle_jwks
	}
	handle {
		passerelle
		# No lb_retries: passerelle retries a call it could not send, once
		# (SECURITY.md E09); here the provider stand-in is swapped by every
		# reload of this very config.
		reverse_proxy 127.0.0.1:%[2]d
	}
}

http://127.0.0.1:%[2]d {
	bind 127.0.0.1
	passerelle_sandbox_fc {
		issuer http://127.0.0.1:%[2]d/api/v2
		gateway_jwks http://127.0.0.1:%[1]d/.well-known/passerelle/jwks.json
	}
	passerelle_sandbox_provider {
		require_authorization {env.PASSERELLE_TEST_PROVIDER_KEY}
	}
	respond 404
}

http://127.0.0.1:%[5]d {
	bind 127.0.0.1
	handle /live {
		passerelle_health live
	}
	handle /ready {
		passerelle_health ready
	}
	metrics /metrics
}

http://127.0.0.1:%[3]d {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:%[2]d {
		header_up Authorization {env.PASSERELLE_TEST_PROVIDER_KEY}
	}
}
`, gatewayPort, sandboxPort, plainPort, accessLog(o.LogDir), internalPort)
	if o.Recorder != "" {
		transport := ""
		if o.ProviderHeaderTimeout != "" {
			o.ProviderTransport += "\n\t\t\tresponse_header_timeout " + o.ProviderHeaderTimeout
		}
		if o.ProviderTransport != "" {
			transport = " {\n\t\ttransport http {" + o.ProviderTransport + "\n\t\t}\n\t}"
		}
		// No host in the site address: any Host reaches the handler, so
		// that a test can spoof it.
		fmt.Fprintf(&b, `
http://:%d {
	bind 127.0.0.1
	passerelle
	reverse_proxy %s%s
}
`, recordPort, o.Recorder, transport)
	}
	return b.String()
}

func accessLog(dir string) string {
	if dir == "" {
		return ""
	}
	return "log {\n\t\toutput file " + dir + "/access.log\n\t\tformat filter {\n\t\t\trequest>uri regexp \\?.* ?redacted\n\t\t\trequest>headers>X-Api-Key delete\n\t\t}\n\t}"
}

// start loads a configuration into the in-process Caddy. With a LogDir
// (a test's temporary directory), the test's end loads an empty
// configuration first, so that no log is still written there when the
// directory is removed.
func start(t testing.TB, o options) *caddytest.Tester {
	t.Helper()
	setEnv(t)
	tester := caddytest.NewTester(t)
	if o.LogDir != "" {
		// Registered before InitServer's own cleanup, so it runs after it
		// (that one prints the configuration of a failed test).
		t.Cleanup(func() { unload(t) })
	}
	tester.InitServer(config(t, o), "caddyfile")
	return tester
}

// logDir returns a directory for a test's log files (options.LogDir),
// removed when the test ends, after start's unload. Unlike t.TempDir's, a
// removal that finds the directory not empty again (a log file written by
// a writer Caddy was still closing) is retried for up to 5 s, then only
// reported: the directory is scratch, not what the test checks.
func logDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "passerelle-test-logs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		var left []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			left = append(left, e.Name())
		}
		t.Logf("removing the log directory: %v (left: %v)", err, left)
	})
	return dir
}

// unload replaces the in-process Caddy's configuration with one that has
// only its admin endpoint: every site, app and log of the test closes.
func unload(t testing.TB) {
	resp, err := http.Post("http://localhost:2999/load", "application/json", strings.NewReader(`{"admin":{"listen":"localhost:2999"}}`))
	if err != nil {
		t.Logf("unloading the configuration: %v", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Logf("unloading the configuration: %s", resp.Status)
	}
}

// setEnv sets the secrets the test configurations reference. They are
// canaries: the sweeps look for them where they must not be.
func setEnv(t testing.TB) {
	t.Helper()
	for k, v := range map[string]string{
		"PASSERELLE_TEST_FC_SECRET":    "fd-secret-canary-2b9c1e0d7a6f5e4d3c2b1a09",
		"PASSERELLE_TEST_CACHE_SECRET": "cache-secret-canary-0123456789abcdef0123456789",
		"PASSERELLE_TEST_PROVIDER_KEY": providerKey,
		"PASSERELLE_TEST_PSEUDO_KEY":   "pseudonym-key-canary-0123456789abcdef0123456789",
	} {
		_ = os.Setenv(k, v) // process-wide on purpose: Caddy reads them at load
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, a.body)
	}
	return m
}

// code returns errors[0].code of an error answer.
func (a answer) code(t testing.TB) string {
	t.Helper()
	errs, _ := a.json(t)["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("no errors in answer: %s", a.body)
	}
	c, _ := errs[0].(map[string]any)["code"].(string)
	return c
}

// data returns the keys under data of a success answer.
func (a answer) data(t testing.TB) map[string]any {
	t.Helper()
	d, ok := a.json(t)["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in answer: %s", a.body)
	}
	return d
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// timeoutClient is client failing a request after 10 s, for requests sent
// from goroutines (load helpers): a stuck gateway fails the test instead
// of hanging it.
var timeoutClient = &http.Client{Transport: client.Transport, Timeout: 10 * time.Second}

// runUntil runs each(worker) in a loop in n goroutines until the returned
// stop is called, or the test ends; stop waits for them.
func runUntil(t *testing.T, n int, each func(worker int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				each(w)
			}
		})
	}
	stop = sync.OnceFunc(func() {
		close(done)
		wg.Wait()
	})
	// A test that stops early (t.Fatal) stops its load too: left running,
	// it would reach the next tests' gateways on the same ports.
	t.Cleanup(stop)
	return stop
}

func get(t testing.TB, port int, target string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, target), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

func qf(query string) string { return qfPath + "?" + query }

func contains(haystack []byte, needles ...string) string {
	for _, n := range needles {
		if bytes.Contains(haystack, []byte(n)) {
			return n
		}
	}
	return ""
}

// concurrentGets sends n requests at once with token, alternating over
// ports, and fails unless every answer is 200.
func concurrentGets(t *testing.T, n int, token string, ports ...int) {
	t.Helper()
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := 0; i < n; i++ {
		port := ports[i%len(ports)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- get(t, port, qf("recipient="+siret), bearer(token)...).status
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Fatalf("status %d, want 200", s)
		}
	}
}
