package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/upstreamauth"
)

// faultFC plays FranceConnect v2 for the fault matrix with real JOSE
// (fcissuer): every token "matrix-…" is active (FranceConnect's test
// identity DUBOIS Angela), anything else inactive. Its faults: slow, 500,
// garbage, a 5 MiB body, the JWKS endpoint down, a rotated signing key.
type faultFC struct {
	srv        *httptest.Server
	encKey     jose.JSONWebKey // the gateway's key, to encrypt answers to; guarded by mu
	mode       atomic.Pointer[string]
	jwksDown   atomic.Bool
	mu         sync.Mutex
	signer     *fcissuer.Issuer
	published  [][]byte // JWKS documents of every key still published
	checktoken atomic.Int64
	jwks       atomic.Int64
}

func newFaultFC(t *testing.T, gatewayKeyFile string) *faultFC {
	t.Helper()
	data, err := os.ReadFile(gatewayKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	fc := new(faultFC)
	fc.encryptTo(t, data)
	fc.setMode("ok")
	fc.rotate(t)
	fc.srv = httptest.NewServer(http.HandlerFunc(fc.serve))
	t.Cleanup(fc.srv.Close)
	return fc
}

func (fc *faultFC) setMode(m string) { fc.mode.Store(&m) }

// encryptTo makes the stand-in encrypt its answers to the gateway key in
// jwk (a JWK document), as FranceConnect does once it fetched the
// gateway's JWKS again.
func (fc *faultFC) encryptTo(t *testing.T, jwk []byte) {
	t.Helper()
	var k jose.JSONWebKey
	if err := json.Unmarshal(jwk, &k); err != nil {
		t.Fatal(err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.encKey = k
}

// rotate signs with a new key (a new kid) from now on, publishing it next
// to the previous one, as FranceConnect does during a rotation.
func (fc *faultFC) rotate(t *testing.T) {
	t.Helper()
	iss, err := fcissuer.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.signer = iss
	fc.published = append(fc.published, iss.JWKS())
}

func (fc *faultFC) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/jwks"):
		fc.jwks.Add(1)
		if fc.jwksDown.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fc.mu.Lock()
		var keys []json.RawMessage
		for _, doc := range fc.published {
			var set struct{ Keys []json.RawMessage }
			_ = json.Unmarshal(doc, &set)
			keys = append(keys, set.Keys...)
		}
		fc.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	case strings.HasSuffix(r.URL.Path, "/checktoken"):
		fc.checktoken.Add(1)
		switch *fc.mode.Load() {
		case "slow":
			time.Sleep(1500 * time.Millisecond)
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
			return
		case "garbage":
			w.Header().Set("Content-Type", "application/token-introspection+jwt")
			_, _ = io.WriteString(w, "<html>not a JWE</html>")
			return
		case "huge":
			w.Header().Set("Content-Type", "application/token-introspection+jwt")
			_, _ = w.Write(make([]byte, 5<<20))
			return
		}
		_ = r.ParseForm()
		now := time.Now()
		ti := map[string]any{"active": false}
		if strings.HasPrefix(r.PostForm.Get("token"), "matrix-") {
			ti = fcissuer.Introspection(fsClientID, "matrixsub0000000000000000000000000000000000000000000000000000000v1", now,
				"openid identite_pivot cnaf_quotient_familial cnaf_allocataires cnaf_enfants cnaf_adresse")
		}
		fc.mu.Lock()
		signer, encKey := fc.signer, fc.encKey
		fc.mu.Unlock()
		answer, err := signer.Answer(fcissuer.Claims(fmt.Sprintf("http://127.0.0.1:%d/api/v2", sandboxPort), fdClientID, now, ti), encKey)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/token-introspection+jwt")
		_, _ = io.WriteString(w, answer)
	}
}

// faultProvider is a data provider with faults: 500, garbage, more than
// 1 MiB, an endless body, a gzip bomb, an error with status 200, slow, a redirect, a body cut after
// the headers, and the platform credential refused once. It counts its
// calls, and calls to the redirect's target apart, the bytes of its last
// endless body that the gateway took, and the Accept-Encoding it was sent.
type faultProvider struct {
	srv            *httptest.Server
	mode           atomic.Pointer[string]
	calls          atomic.Int64
	redirected     atomic.Int64
	endlessTaken   atomic.Int64
	acceptEncoding atomic.Pointer[string]
}

// gzipBomb is 64 MiB of JSON whitespace inside an object, gzipped (about
// 64 KiB). Made before the provider serves (newFaultProvider).
var gzipBomb = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	_, _ = io.WriteString(z, `{"data":{"quotient_familial":1`)
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	for range 64 {
		_, _ = z.Write(chunk)
	}
	_, _ = io.WriteString(z, `}}`)
	_ = z.Close()
	return b.Bytes()
})

func newFaultProvider(t *testing.T) *faultProvider {
	t.Helper()
	p := new(faultProvider)
	p.setMode("ok")
	gzipBomb()
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			p.redirected.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, qfBody)
			return
		}
		p.calls.Add(1)
		ae := r.Header.Get("Accept-Encoding")
		p.acceptEncoding.Store(&ae)
		mode := *p.mode.Load()
		switch mode {
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
			return
		case "garbage":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>maintenance</html>")
			return
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":{"quotient_familial":"`+strings.Repeat("x", 2<<20)+`"}}`)
			return
		case "endless": // 32 KiB at a time, up to 256 MiB, as fast as taken
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":{"quotient_familial":"`)
			chunk := strings.Repeat("x", 32<<10)
			p.endlessTaken.Store(0)
			for range 8192 {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
				p.endlessTaken.Add(int64(len(chunk)))
			}
			return
		case "200error": // an error answer sent with status 200
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":{},"errors":[{"code":"37003","title":"CANARY","detail":"Dossier allocataire inexistant."}]}`)
			return
		case "gzip": // whatever the request asked for
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gzipBomb())
			return
		case "slow":
			time.Sleep(1500 * time.Millisecond)
		case "trickle": // headers at once, then a byte every 100 ms for 3 s
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			for range 30 {
				_, _ = io.WriteString(w, " ")
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
			_, _ = io.WriteString(w, qfBody)
			return
		case "redirect":
			http.Redirect(w, r, p.srv.URL+"/elsewhere", http.StatusFound)
			return
		case "cut":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "4096")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"data":{`)
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		case "refuse_once":
			p.setMode("ok")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, qfBody)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *faultProvider) setMode(m string) { p.mode.Store(&m) }

// metricValue reads one sample of the gateway's metrics page (0 when
// absent).
func metricValue(t *testing.T, series string) float64 {
	t.Helper()
	page := string(get(t, internalPort, "/metrics").body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`).FindStringSubmatch(page)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestFaultMatrix drives every fault of issue 8 §3 through the real Caddy
// runtime, a real redis-server, a FranceConnect stand-in with real JOSE and
// a provider stand-in, each behind a TCP fault proxy. Each row injects one
// fault, sends one request, and checks the answer (status, API code), how
// many calls reached the provider (none where the request must not), what
// ops sees (a metric that moves), then clears the fault and checks that
// the same request succeeds again. At the end no log and no error answer
// holds a token, the identity or a secret. The README's operations table
// ("Faults") documents the same rows.
// req: E08, F02, I03, I05, I08, I10
func TestFaultMatrix(t *testing.T) {
	keyFile := writeKey(t)
	fc := newFaultFC(t, keyFile)
	fcProxy := newFaultProxy(t, strings.TrimPrefix(fc.srv.URL, "http://"))
	prov := newFaultProvider(t)
	provProxy := newFaultProxy(t, strings.TrimPrefix(prov.srv.URL, "http://"))
	redisSrv := redistest.Start(t)
	redisProxy := newFaultProxy(t, redisSrv.Addr)
	te := newTokenEndpoint(t)
	dir := logDir(t)
	start(t, options{
		MaxEntries: 14001, CheckTokenURL: "http://" + fcProxy.addr, Recorder: "http://" + provProxy.addr,
		Redis: redisProxy.addr, OAuth2URL: te.srv.URL, LogDir: dir, DecryptionKey: keyFile,
		FCTimeout: "500ms", JWKSCooldown: "1s", ProviderHeaderTimeout: "500ms", ProviderTimeout: "1s",
	})

	const (
		fcErrors       = `caddy_passerelle_token_checks_total{result="error",source="checktoken"}`
		cacheErrors    = `caddy_passerelle_cache_errors_total{kind="error"}`
		providerErrors = `caddy_passerelle_requests_total{code="37999",decision="error",endpoint="dss_quotient_familial_fc"}`
	)
	type row struct {
		fault         string
		inject, clear func()
		status        int
		code          string
		calls         int64         // provider calls made by the faulty request
		metric        string        // a series that must grow ("" none)
		maxTime       time.Duration // the faulty request's longest answer time (0: not checked)
		check         func(t *testing.T)
	}
	var jwksBefore int64
	rows := []row{
		{fault: "FranceConnect refuses connections", inject: func() { fcProxy.setDown(t, true) }, clear: func() { fcProxy.setDown(t, false) },
			status: 503, code: "00503", metric: fcErrors},
		{fault: "FranceConnect slower than its timeout", inject: func() { fc.setMode("slow") }, clear: func() { fc.setMode("ok") },
			status: 503, code: "00503", metric: fcErrors},
		{fault: "FranceConnect answers 500", inject: func() { fc.setMode("500") }, clear: func() { fc.setMode("ok") },
			status: 503, code: "00503", metric: fcErrors},
		{fault: "FranceConnect answers garbage", inject: func() { fc.setMode("garbage") }, clear: func() { fc.setMode("ok") },
			status: 503, code: "00503", metric: fcErrors},
		{fault: "FranceConnect answers 5 MiB", inject: func() { fc.setMode("huge") }, clear: func() { fc.setMode("ok") },
			status: 503, code: "00503", metric: fcErrors},
		{fault: "FranceConnect signing key rotated",
			inject: func() {
				time.Sleep(1100 * time.Millisecond) // one JWKS cooldown since the last fetch
				jwksBefore = fc.jwks.Load()
				fc.rotate(t)
			}, clear: func() {}, status: 200, calls: 1,
			check: func(t *testing.T) {
				if n := fc.jwks.Load() - jwksBefore; n != 1 {
					t.Errorf("%d JWKS fetches for a new kid, want 1", n)
				}
			}},
		{fault: "FranceConnect JWKS down, keys held",
			inject: func() { jwksBefore = fc.jwks.Load(); fc.jwksDown.Store(true) }, clear: func() { fc.jwksDown.Store(false) },
			status: 200, calls: 1,
			check: func(t *testing.T) {
				if n := fc.jwks.Load() - jwksBefore; n != 0 {
					t.Errorf("%d JWKS fetches while the keys are held, want 0", n)
				}
			}},
		{fault: "Redis down", inject: func() { redisProxy.setDown(t, true) }, clear: func() { redisProxy.setDown(t, false) },
			status: 200, calls: 1, metric: cacheErrors},
		{fault: "Redis slow", inject: func() { redisProxy.setDelay(300 * time.Millisecond) }, clear: func() { redisProxy.setDelay(0) },
			status: 200, calls: 1, metric: cacheErrors},
		{fault: "Redis restarted empty", inject: func() {
			redisSrv.Kill()
			redisSrv = redistest.Start(t)
			redisProxy.setTarget(redisSrv.Addr)
		}, clear: func() {}, status: 200, calls: 1},
		{fault: "provider refuses connections", inject: func() { provProxy.setDown(t, true) }, clear: func() { provProxy.setDown(t, false) },
			status: 504, code: "37001", metric: `caddy_passerelle_requests_total{code="37001",decision="error",endpoint="dss_quotient_familial_fc"}`},
		{fault: "provider slower than its timeout", inject: func() { prov.setMode("slow") }, clear: func() { prov.setMode("ok") },
			status: 504, code: "37002", calls: 1, metric: `caddy_passerelle_requests_total{code="37002",decision="error",endpoint="dss_quotient_familial_fc"}`},
		{fault: "provider trickles its answer past provider_timeout", inject: func() { prov.setMode("trickle") }, clear: func() { prov.setMode("ok") },
			status: 504, code: "37002", calls: 1, maxTime: 1500 * time.Millisecond,
			metric: `caddy_passerelle_requests_total{code="37002",decision="error",endpoint="dss_quotient_familial_fc"}`},
		{fault: "provider answers 500", inject: func() { prov.setMode("500") }, clear: func() { prov.setMode("ok") },
			status: 502, code: "37999", calls: 1, metric: providerErrors},
		{fault: "provider answers garbage", inject: func() { prov.setMode("garbage") }, clear: func() { prov.setMode("ok") },
			status: 502, code: "37999", calls: 1, metric: providerErrors},
		{fault: "provider answers more than 1 MiB", inject: func() { prov.setMode("huge") }, clear: func() { prov.setMode("ok") },
			status: 502, code: "37999", calls: 1, metric: providerErrors},
		{fault: "provider answers an endless body", inject: func() { prov.setMode("endless") }, clear: func() { prov.setMode("ok") },
			status: 502, code: "37999", calls: 1, maxTime: 500 * time.Millisecond, metric: providerErrors,
			check: func(t *testing.T) {
				// Past the 1 MiB limit, what socket buffers hold at most.
				if n := prov.endlessTaken.Load(); n > 16<<20 {
					t.Errorf("the gateway read %d MiB of the answer", n>>20)
				}
			}},
		{fault: "provider answers a gzip bomb", inject: func() { prov.setMode("gzip") }, clear: func() { prov.setMode("ok") },
			status: 502, code: "37999", calls: 1, maxTime: 500 * time.Millisecond, metric: providerErrors,
			check: func(t *testing.T) {
				if ae := *prov.acceptEncoding.Load(); ae != "identity" {
					t.Errorf("Accept-Encoding %q sent to the provider: Go's transport inflates gzip before the size limit", ae)
				}
			}},
		{fault: "provider answers an error with status 200", inject: func() { prov.setMode("200error") }, clear: func() { prov.setMode("ok") },
			status: 502, code: "37999", calls: 1, metric: providerErrors},
		{fault: "provider redirects", inject: func() { prov.setMode("redirect") }, clear: func() { prov.setMode("ok") },
			status: 502, code: "37999", calls: 1, metric: providerErrors,
			check: func(t *testing.T) {
				if prov.redirected.Load() != 0 {
					t.Error("the redirect was followed")
				}
			}},
		{fault: "provider cuts its body", inject: func() { prov.setMode("cut") }, clear: func() { prov.setMode("ok") },
			status: 502, code: "37999", calls: 1, metric: providerErrors},
		{fault: "platform credential refused once", inject: func() { prov.setMode("refuse_once") }, clear: func() {},
			status: 200, calls: 2, check: func(t *testing.T) {
				if n := te.calls.Load(); n != 2 {
					t.Errorf("%d credential fetches, want 2 (the first and one refresh)", n)
				}
			}},
		{fault: "platform credential refused again (after the refresh cooldown), its refresh slower than provider_timeout",
			inject: func() {
				time.Sleep(upstreamauth.InvalidateCooldown) // since the row above forced a refresh
				prov.setMode("refuse_once")
				te.delay.Store(int64(1500 * time.Millisecond))
			},
			clear:  func() { te.delay.Store(0); time.Sleep(600 * time.Millisecond) }, // the detached refresh ends
			status: 504, code: "37002", calls: 1, maxTime: 1300 * time.Millisecond},
	}
	var errorAnswers []byte
	for i, r := range rows {
		t.Run(r.fault, func(t *testing.T) {
			token := fmt.Sprintf("matrix-%d", i)
			target := qf("recipient=" + siret)
			if i == 0 { // warm up: the credential, the JWKS and the quotas exist
				if a := get(t, recordPort, target, bearer("matrix-warmup")...); a.status != 200 {
					t.Fatalf("warm-up: %d %s", a.status, a.body)
				}
			}
			if strings.HasPrefix(r.fault, "provider") || strings.HasPrefix(r.fault, "platform") {
				// Provider rows: the token is verified and cached first.
				if a := get(t, recordPort, target, bearer(token)...); a.status != 200 {
					t.Fatalf("before the fault: %d %s", a.status, a.body)
				}
			}
			metricBefore := 0.0
			if r.metric != "" {
				metricBefore = metricValue(t, r.metric)
			}
			calls := prov.calls.Load()
			r.inject()
			began := time.Now()
			a := get(t, recordPort, target, bearer(token)...)
			if took := time.Since(began); r.maxTime != 0 && took > r.maxTime {
				t.Errorf("answered after %v, want at most %v", took, r.maxTime)
			}
			if a.status != r.status || (r.code != "" && a.code(t) != r.code) {
				t.Errorf("answer %d %s, want %d %s", a.status, a.body, r.status, r.code)
			}
			if n := prov.calls.Load() - calls; n != r.calls {
				t.Errorf("%d provider calls, want %d", n, r.calls)
			}
			if r.status != 200 {
				errorAnswers = append(errorAnswers, a.body...)
			}
			if r.metric != "" && metricValue(t, r.metric) <= metricBefore {
				t.Errorf("%s did not grow", r.metric)
			}
			if r.check != nil {
				r.check(t)
			}
			r.clear()
			if a := get(t, recordPort, target, bearer(token)...); a.status != 200 {
				t.Errorf("after the fault cleared: %d %s", a.status, a.body)
			}
		})
	}

	// Nothing personal or secret in the error answers or the logs.
	canaries := []string{"matrix-", "DUBOIS", "Angela", "1962-08-24", "75107", "CANARY", "upstream-token-", "matrixsub",
		"fd-secret-canary", "cache-secret-canary", "sandbox-provider-key-canary"}
	if leak := contains(errorAnswers, canaries...); leak != "" {
		t.Errorf("an error answer holds %q", leak)
	}
	time.Sleep(200 * time.Millisecond) // the audit writer's flush interval
	for _, name := range []string{"server.log", "access.log", "audit.log"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if leak := contains(data, canaries...); leak != "" {
			t.Errorf("%s holds %q", name, leak)
		}
	}
}
