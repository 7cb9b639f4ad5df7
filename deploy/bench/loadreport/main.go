// Command loadreport is the load report of a Passerelle release (SECURITY.md
// J06), run by deploy/bench/report.sh against the load harness's gateway and
// upstream processes, over TLS. It writes load-report.json and
// load-report.md into -out, and the Markdown to stdout.
//
// Every load is open-loop at one constant rate (-rate requests a second,
// vegeta as a library, HTTP/1.1 keep-alive), so latencies are those of that
// rate, not of a saturated machine. The scenarios, in order:
//
//  1. nominal, -repeat times: Caddy's plain reverse_proxy (the baseline
//     site) then Passerelle with a cached FranceConnect token, each for
//     -duration (the order alternates between repetitions). Bars: every
//     answer 200; Passerelle's p99 latency at most 10 ms over the
//     baseline's, in every repetition.
//  2. cache miss: a new FranceConnect token on every request (one
//     checktoken each: JWE decryption and JWS verification). Bar: every
//     answer 200.
//  3. FranceConnect outage: the relay that carries checktoken calls
//     (-relay, BENCH_FC_CHECKTOKEN_URL) is cut: connections are refused.
//     For at most 20 s (the token cache's ttl_cap is 30 s), nine requests in
//     ten with a token cached just before, one in ten with a new token.
//     Bars: cached tokens 200; new ones 503 with Retry-After. Then the relay
//     is restored, and new tokens for at most 10 s: every answer 200.
//  4. reload storm (SECURITY.md I13): the cached token for max(-duration,
//     15 s) while the configuration is reloaded -reloads times, evenly
//     spaced (`<bin> reload --force`). Bars: no HTTP answer but 200; at
//     most 2 transport errors per reload (a keep-alive connection the
//     replaced server closes).
//  5. memory: the gateway's RSS idle (before any load) at most 100 MiB, its
//     peak (VmHWM, after every scenario) at most 150 MiB.
//
// With -soak <file> (soak.sh's output) and -soak-minutes, the report
// carries the soak's verdict lines; the soak passes with at least 3
// verdicts and no FAIL.
//
// It exits 0 when every bar holds, 3 when one does not (the report is
// written either way), 1 when something broke.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

type config struct {
	gateway, baseline string
	admin             string
	pid               int
	bin, caddyfile    string
	cacert            string
	relayAddr         string
	relayTarget       string
	rate              int
	duration          time.Duration
	repeat            int
	reloads           int
	out               string
	soakFile          string
	soakMinutes       int
	revision          string
}

// The routes of the load (the sandbox case cnaf_qfv2 and its civil status).
const (
	fcPath       = "/v3/dss/quotient_familial/france_connect?recipient=13002526500013"
	baselinePath = "/v3/dss/quotient_familial/identite?nomNaissance=CNAF&prenoms%5B%5D=Georges&anneeDateNaissance=2002" +
		"&moisDateNaissance=1&jourDateNaissance=1&sexeEtatCivil=M&codeCogInseePaysNaissance=99100" +
		"&codeCogInseeCommuneNaissance=75002&recipient=13002526500013"
)

// Bars of SECURITY.md J06 and of the issue that set the memory targets.
const (
	maxP99Overhead = 10 * time.Millisecond
	maxIdleRSSMiB  = 100
	maxPeakRSSMiB  = 150
	maxOutage      = 20 * time.Second // below the harness's ttl_cap (30 s)
	maxRecovery    = 10 * time.Second
	minStorm       = 15 * time.Second
)

func main() {
	var c config
	flag.StringVar(&c.gateway, "gateway", "https://127.0.0.1:9443", "Passerelle's base URL")
	flag.StringVar(&c.baseline, "baseline", "https://127.0.0.1:9444", "the plain reverse_proxy site's base URL")
	flag.StringVar(&c.admin, "admin", "localhost:2919", "the gateway's admin endpoint, for reloads")
	flag.IntVar(&c.pid, "pid", 0, "the gateway's process id (required): RSS from /proc")
	flag.StringVar(&c.bin, "bin", "", "the passerelle binary the gateway runs (required): reloads, build information")
	flag.StringVar(&c.caddyfile, "config", "deploy/bench/Caddyfile.tls", "the gateway's Caddyfile, for reloads")
	flag.StringVar(&c.cacert, "cacert", "", "PEM certificate the gateway's TLS certificate chains to (required)")
	flag.StringVar(&c.relayAddr, "relay", "127.0.0.1:9086", "address of the checktoken relay (BENCH_FC_CHECKTOKEN_URL)")
	flag.StringVar(&c.relayTarget, "relay-to", "127.0.0.1:9081", "the sandbox FranceConnect the relay forwards to")
	flag.IntVar(&c.rate, "rate", 200, "requests per second of every load")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "duration of one run")
	flag.IntVar(&c.repeat, "repeat", 5, "repetitions of the nominal scenario")
	flag.IntVar(&c.reloads, "reloads", 10, "reloads of the reload storm")
	flag.StringVar(&c.out, "out", ".", "directory of load-report.json and load-report.md")
	flag.StringVar(&c.soakFile, "soak", "", "soak.sh's output, to carry its verdicts")
	flag.IntVar(&c.soakMinutes, "soak-minutes", 0, "the soak's duration, with -soak")
	flag.StringVar(&c.revision, "revision", "", "the source revision of -bin, when its build information has none (a release's)")
	flag.Parse()
	if c.pid == 0 || c.bin == "" || c.cacert == "" || c.rate < 10 || c.duration < time.Second || c.repeat < 1 || c.reloads < 1 {
		flag.Usage()
		os.Exit(2)
	}
	rep, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadreport:", err)
		os.Exit(1)
	}
	if !rep.Pass {
		os.Exit(3)
	}
}

// loader sends constant-rate loads and reads the gateway's memory.
type loader struct {
	c      config
	client *http.Client
	rss    func() (float64, error)
	label  string
	n      atomic.Int64 // new tokens made
}

func run(c config) (*Report, error) {
	pem, err := os.ReadFile(c.cacert)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("-cacert: no PEM certificate")
	}
	tlsConfig := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// One client for every load: its connections stay open from one load
	// to the next (an Attacker serves one attack). No proxy, HTTP/1.1.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: 10000, IdleConnTimeout: 90 * time.Second,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}}
	l := &loader{c: c, label: strconv.FormatInt(time.Now().UnixNano(), 36), client: client,
		rss: func() (float64, error) { return procStatusMiB(c.pid, "VmRSS") }}
	rly, err := newRelay(c.relayAddr, c.relayTarget)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	defer rly.cut()

	rep := &Report{Date: time.Now().UTC().Format(time.RFC3339)}
	if rep.Method, err = method(c, tlsConfig); err != nil {
		return nil, err
	}
	// Warm-up, not reported: connections open, the token cached.
	for _, t := range []vegeta.Targeter{l.target(c.baseline+baselinePath, ""), l.target(c.gateway+fcPath, "cnaf_qfv2")} {
		if r := l.load("warm-up", t, ok200, 2*time.Second, l.c.rate); r.Expected != r.Requests {
			return nil, fmt.Errorf("warm-up: %d of %d answers 200 (%s)", r.Expected, r.Requests, statuses(r.Status))
		}
	}
	rep.Scenarios = append(rep.Scenarios, l.nominal(), l.cacheMiss())
	outage, err := l.outage(rly)
	if err != nil {
		return nil, err
	}
	storm, err := l.reloadStorm()
	if err != nil {
		return nil, err
	}
	peak, err := procStatusMiB(c.pid, "VmHWM")
	if err != nil {
		return nil, err
	}
	rep.Scenarios = append(rep.Scenarios, outage, storm, Scenario{Name: "Memory",
		What: "The gateway's resident memory: idle, before any load, and its peak (VmHWM) once every scenario above has run.",
		Verdicts: []Verdict{
			{Name: fmt.Sprintf("RSS idle ≤ %d MiB", maxIdleRSSMiB), Value: fmt.Sprintf("%.1f MiB", rep.Method.IdleRSSMiB), Pass: rep.Method.IdleRSSMiB <= maxIdleRSSMiB},
			{Name: fmt.Sprintf("peak RSS ≤ %d MiB", maxPeakRSSMiB), Value: fmt.Sprintf("%.1f MiB", peak), Pass: peak <= maxPeakRSSMiB},
		}})
	if c.soakFile != "" {
		out, err := os.ReadFile(c.soakFile)
		if err != nil {
			return nil, err
		}
		rep.Soak = parseSoak(string(out), c.soakMinutes, 3)
	}
	rep.settle()
	return rep, rep.write(c.out)
}

// write writes load-report.json and load-report.md into dir, and the
// Markdown to stdout.
func (rep *Report) write(dir string) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "load-report.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	rep.markdown(&md)
	fmt.Print(md.String())
	return os.WriteFile(filepath.Join(dir, "load-report.md"), []byte(md.String()), 0o644)
}

// nominal is scenario 1.
func (l *loader) nominal() Scenario {
	s := Scenario{Name: "Nominal: cached token against reverse_proxy",
		What: fmt.Sprintf("Each repetition: Caddy's plain reverse_proxy to the sandbox provider, then Passerelle's FranceConnect route "+
			"with a cached token (same provider, same answer), %s each at %d/s; the order alternates.", l.c.duration, l.c.rate)}
	worst, overheads := time.Duration(-1<<63), []string{}
	for i := range l.c.repeat {
		base := func() Run {
			return l.load(fmt.Sprintf("%d reverse_proxy", i+1), l.target(l.c.baseline+baselinePath, ""), ok200, l.c.duration, l.c.rate)
		}
		pass := func() Run {
			return l.load(fmt.Sprintf("%d passerelle", i+1), l.target(l.c.gateway+fcPath, "cnaf_qfv2"), ok200, l.c.duration, l.c.rate)
		}
		var b, p Run
		if i%2 == 0 {
			b, p = base(), pass()
		} else {
			p, b = pass(), base()
		}
		s.Runs = append(s.Runs, b, p)
		over := time.Duration((p.Latency.P99 - b.Latency.P99) * float64(time.Millisecond))
		worst = max(worst, over)
		overheads = append(overheads, fmt.Sprintf("%+.2f", ms(over)))
	}
	s.Verdicts = []Verdict{allExpected("every answer 200", s.Runs...),
		{Name: fmt.Sprintf("p99 overhead over reverse_proxy ≤ %d ms in every repetition", maxP99Overhead.Milliseconds()),
			Value: fmt.Sprintf("worst %+.2f ms (ms, by repetition: %s)", ms(worst), strings.Join(overheads, ", ")), Pass: worst <= maxP99Overhead}}
	return s
}

// cacheMiss is scenario 2.
func (l *loader) cacheMiss() Scenario {
	r := l.load("new tokens", l.newTokens(l.c.gateway+fcPath), ok200, l.c.duration, l.c.rate)
	return Scenario{Name: "Cache miss: a new token on every request",
		What: fmt.Sprintf("Passerelle's FranceConnect route, %s at %d/s, each request with a token never sent before: "+
			"one checktoken call each (JWE decryption, JWS verification).", l.c.duration, l.c.rate),
		Runs: []Run{r}, Verdicts: []Verdict{allExpected("every answer 200", r)}}
}

// outage is scenario 3.
func (l *loader) outage(rly *relay) (Scenario, error) {
	d := min(l.c.duration, maxOutage)
	s := Scenario{Name: "FranceConnect outage, then recovery",
		What: fmt.Sprintf("Checktoken calls refused (the relay cut): for %s at %d/s, 9 requests in 10 with a token cached just "+
			"before, 1 in 10 with a new token; then FranceConnect back, new tokens for %s.", d, l.c.rate, min(l.c.duration, maxRecovery))}
	cached := fmt.Sprintf("cnaf_qfv2~%s-outage", l.label)
	if r := l.load("caching", l.target(l.c.gateway+fcPath, cached), ok200, time.Second, 10); r.Expected != r.Requests {
		return s, fmt.Errorf("outage: caching a token: %s", statuses(r.Status))
	}
	rly.cut()
	var hit, miss Run
	var wg sync.WaitGroup
	wg.Go(func() {
		hit = l.load("cached tokens, FranceConnect down", l.target(l.c.gateway+fcPath, cached), ok200, d, l.c.rate*9/10)
	})
	wg.Go(func() {
		miss = l.load("new tokens, FranceConnect down", l.newTokens(l.c.gateway+fcPath), unavailable, d, l.c.rate/10)
	})
	wg.Wait()
	if err := rly.restore(); err != nil {
		return s, fmt.Errorf("outage: restoring the relay: %w", err)
	}
	back := l.load("new tokens, FranceConnect back", l.newTokens(l.c.gateway+fcPath), ok200, min(l.c.duration, maxRecovery), l.c.rate)
	s.Runs = []Run{hit, miss, back}
	s.Verdicts = []Verdict{allExpected("cached tokens served: 200", hit), allExpected("new tokens refused: 503 with Retry-After", miss),
		allExpected("after the outage, new tokens served: 200", back)}
	return s, nil
}

// reloadStorm is scenario 4.
func (l *loader) reloadStorm() (Scenario, error) {
	d := max(l.c.duration, minStorm)
	s := Scenario{Name: "Reload storm (SECURITY.md I13)",
		What: fmt.Sprintf("Passerelle's FranceConnect route with a cached token, %s at %d/s, while the configuration is reloaded %d times "+
			"(`passerelle reload --force`), evenly spaced.", d, l.c.rate, l.c.reloads)}
	var reloadErr error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		period := d / time.Duration(l.c.reloads)
		wait := period / 2 // the first halfway through its period
		for i := range l.c.reloads {
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
			wait = period
			out, err := exec.Command(l.c.bin, "reload", "--config", l.c.caddyfile, "--address", l.c.admin, "--force").CombinedOutput()
			if err != nil && reloadErr == nil {
				reloadErr = fmt.Errorf("reload %d: %v: %s", i+1, err, out)
			}
		}
	}()
	r := l.load("cached token, reloads", l.target(l.c.gateway+fcPath, "cnaf_qfv2"), ok200, d, l.c.rate)
	close(stop)
	<-done
	if reloadErr != nil {
		return s, reloadErr
	}
	transport := r.Status["0"]
	answered := r
	answered.Requests -= transport
	s.Runs = []Run{r}
	s.Verdicts = []Verdict{allExpected("every HTTP answer 200", answered),
		{Name: "transport errors ≤ 2 per reload", Value: fmt.Sprintf("%d for %d reloads", transport, l.c.reloads), Pass: transport <= 2*l.c.reloads}}
	return s, nil
}

// ok200 expects a 200.
func ok200(r *vegeta.Result) bool { return r.Code == http.StatusOK }

// unavailable expects FranceConnect's unavailability: 503 with Retry-After.
func unavailable(r *vegeta.Result) bool {
	return r.Code == http.StatusServiceUnavailable && r.Headers.Get("Retry-After") != ""
}

// target is a fixed request, with a bearer token unless token is "".
func (l *loader) target(u, token string) vegeta.Targeter {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: u, Header: h})
}

// newTokens makes a request with a token never sent before each time: a
// valid token of the sandbox case cnaf_qfv2.
func (l *loader) newTokens(u string) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		t.Method, t.URL = http.MethodGet, u
		t.Header = http.Header{"Authorization": {fmt.Sprintf("Bearer cnaf_qfv2~%s-%d", l.label, l.n.Add(1))}}
		return nil
	}
}

// load sends targets at rate per second for d, then reads the gateway's
// RSS.
func (l *loader) load(label string, t vegeta.Targeter, expect func(*vegeta.Result) bool, d time.Duration, rate int) Run {
	r := Run{Label: label, Status: map[string]int{}}
	atk := vegeta.NewAttacker(vegeta.Client(l.client), vegeta.MaxBody(0))
	for res := range atk.Attack(t, vegeta.Rate{Freq: rate, Per: time.Second}, d, label) {
		r.Requests++
		r.Status[strconv.Itoa(int(res.Code))]++
		if expect(res) {
			r.Expected++
		}
		r.latencies = append(r.latencies, res.Latency)
	}
	r.summarize()
	r.RSSMiB, _ = l.rss()
	return r
}

// procStatusMiB reads a kB field of /proc/<pid>/status, in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}
