// Command soak is the load generator of deploy/bench/soak.sh: a long run of
// mixed Passerelle traffic at a bounded rate, with configuration reloads and
// habilitations rewrites, watching the gateway process for leaks.
//
// It drives the gateway with vegeta (github.com/tsenart/vegeta/v12/lib): a
// custom Targeter builds each request (tokens are made up on the fly), an
// Attacker sends them. Two phases:
//
//  1. probe: -probe of mixed traffic at no set rate (vegeta.Rate{Freq: 0})
//     with -workers workers, each with one request in flight: the maximum
//     throughput of the mix on this machine;
//  2. soak: -minutes of the same mix at a constant rate of -fraction of that
//     maximum (vegeta.Rate{Freq: n, Per: time.Second}), over at most
//     -connections connections, as a client's pool: a request beyond waits
//     for one. Unbounded, an open loop answers a slower moment (a reload
//     renews every connection) with more connections, each a TLS handshake
//     over TLS, which slows the next moment more: a spiral a real client's
//     pool does not make.
//
// The mix, out of every 100 requests, spread evenly (traffic.go):
//
//	60  FranceConnect route, the "cached" token, replaced every -rotate (20 s):
//	    cnaf_qfv2~<run>-c<generation>, a fresh valid token of the sandbox
//	    case cnaf_qfv2 that lives less than the cache's ttl_cap (30 s) → 200
//	 8  FranceConnect route, a token never sent before (cnaf_qfv2~<run>-n<n>) → 200
//	15  identité route, civil status of a sandbox case, API token
//	    sandbox_all_scopes → 200
//	 7  identité route, API token of the habilitation bench-quota (5/s) → 200 or 429
//	 5  FranceConnect route, an unknown token nope~<run>-<n> → 401
//	 5  identité route, a recipient failing Luhn → 422
//
// During the soak, every -reload-every (first at half the period) it runs
// `<bin> reload --config <config> --address <admin> --force`, and every
// -rewrite-every (first at 3/8 of the period) it rewrites -habilitations
// atomically (temp file, then rename) with the same rights and one comment
// line more. Every minute it prints the requests and rate of that minute,
// their status classes (2xx, 401, 422, 429, other), the answers that were not
// the expected one for their kind, the p99 latency, and the gateway's RSS
// (/proc/<pid>/status), heap in use after a forced GC (admin
// /debug/pprof/heap?gc=1, then memstats.HeapInuse from /debug/vars),
// goroutines (admin /debug/pprof/goroutine?debug=1) and open file
// descriptors (/proc/<pid>/fd).
//
// At the end: the least-squares slope per minute of those four figures over
// the minutes under load (and over their second half, past the ramp while
// the token cache fills), with their first and last values; the unexpected
// answers (another status than the kind's, or a transport error: PASS when
// none), except transport errors within reloadWindow of a reload, counted
// apart (a keep-alive connection the replaced server closes: at most 2 per
// reload); and the checktoken calls the sandbox FranceConnect received during
// the soak (lines of -checktoken-log, the upstream's access log of its
// checktoken route) against the distinct tokens sent, valid and unknown: PASS
// when equal, one checktoken per token despite the reloads and rewrites. The
// gateway's metric
// caddy_passerelle_token_checks_total{result="active",source="checktoken"}
// is printed next to the distinct valid tokens for reference: it counts
// requests answered from a checktoken call, so the requests that waited on
// another request's call for the same token count there too, and it exceeds
// the calls when a new token arrives on several connections at once.
//
// It exits 0 once it has printed its verdicts, 1 when something broke (the
// gateway unreachable, a failed reload, a failed sample).
//
// Usage (soak.sh passes these):
//
//	soak -pid <gateway pid> -bin <passerelle binary> -config deploy/bench/Caddyfile \
//	     -habilitations <copy of deploy/bench/habilitations.yaml> \
//	     -checktoken-log <BENCH_CHECKTOKEN_LOG of the upstream> [-minutes 30]
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passerelle-gw/passerelle/deploy/bench/internal/gwstat"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

type config struct {
	gatewayURL    string
	admin         string
	metricsURL    string
	pid           int
	bin           string
	caddyfile     string
	habilitations string
	minutes       int
	probe         time.Duration
	workers       uint64
	connections   int
	fraction      float64
	rate          int
	rotate        time.Duration
	reloadEvery   time.Duration
	rewriteEvery  time.Duration
	timeout       time.Duration
	checktokenLog string
	cacert        string
	roots         *x509.CertPool // from cacert; nil: the system's
}

func main() {
	var c config
	flag.StringVar(&c.gatewayURL, "gateway", "http://127.0.0.1:9080", "gateway base URL (loopback)")
	flag.StringVar(&c.admin, "admin", "localhost:2919", "host:port of the gateway's Caddy admin endpoint")
	flag.StringVar(&c.metricsURL, "metrics", "http://127.0.0.1:9090/metrics", "gateway metrics URL")
	flag.IntVar(&c.pid, "pid", 0, "gateway process id (required): RSS and fds from /proc")
	flag.StringVar(&c.bin, "bin", "", "passerelle binary, for reloads (required)")
	flag.StringVar(&c.caddyfile, "config", "deploy/bench/Caddyfile", "gateway Caddyfile, for reloads")
	flag.StringVar(&c.habilitations, "habilitations", "", "habilitations file the gateway reads, rewritten during the soak (required)")
	flag.IntVar(&c.minutes, "minutes", 30, "soak duration in minutes")
	flag.DurationVar(&c.probe, "probe", 15*time.Second, "duration of the maximum-throughput probe")
	flag.Uint64Var(&c.workers, "workers", 32, "concurrent requests of the probe")
	flag.IntVar(&c.connections, "connections", 64, "connections of the soak, at most")
	flag.Float64Var(&c.fraction, "fraction", 0.5, "soak rate as a fraction of the probed maximum")
	flag.IntVar(&c.rate, "rate", 0, "soak rate in requests per second, instead of -fraction (to compare two builds at one rate)")
	flag.DurationVar(&c.rotate, "rotate", 20*time.Second, "lifetime of a cached token: keep it below the cache's ttl_cap")
	flag.DurationVar(&c.reloadEvery, "reload-every", time.Minute, "configuration reload period")
	flag.DurationVar(&c.rewriteEvery, "rewrite-every", 2*time.Minute, "habilitations rewrite period")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of one request")
	flag.StringVar(&c.checktokenLog, "checktoken-log", "", "the upstream's access log of checktoken calls, one line per call (required)")
	flag.StringVar(&c.cacert, "cacert", "", "PEM certificate an https -gateway's certificate chains to")
	flag.Parse()
	if c.pid == 0 || c.bin == "" || c.habilitations == "" || c.checktokenLog == "" || c.minutes < 1 || c.workers < 1 || c.connections < 1 ||
		c.fraction <= 0 || c.rotate <= 0 || c.reloadEvery <= 0 || c.rewriteEvery <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if c.cacert != "" {
		pem, err := os.ReadFile(c.cacert)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(2)
		}
		c.roots = x509.NewCertPool()
		if !c.roots.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "soak: -cacert: no PEM certificate")
			os.Exit(2)
		}
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// attacker returns a vegeta Attacker for loopback traffic: no proxy,
// keep-alive, HTTP/1.1, bodies drained but not kept.
func attacker(c config, opts ...func(*vegeta.Attacker)) *vegeta.Attacker {
	noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	return vegeta.NewAttacker(append([]func(*vegeta.Attacker){
		vegeta.Proxy(noProxy), vegeta.KeepAlive(true), vegeta.Timeout(c.timeout), vegeta.MaxBody(0), vegeta.HTTP2(false),
		vegeta.TLSConfig(&tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12}),
	}, opts...)...)
}

// tally counts results. The zero value is ready.
type tally struct {
	requests   int64
	classes    [5]int64 // 2xx, 401, 422, 429, other (a transport error included)
	unexpected int64
	transport  int64
	latency    vegeta.Metrics
}

var classNames = [5]string{"2xx", "401", "422", "429", "other"}

// add counts r, of kind k, and reports whether it was unexpected: another
// status than the kind's, or a transport error.
func (t *tally) add(r *vegeta.Result, k kind) bool {
	t.requests++
	switch c := r.Code; {
	case c >= 200 && c < 300:
		t.classes[0]++
	case c == http.StatusUnauthorized:
		t.classes[1]++
	case c == http.StatusUnprocessableEntity:
		t.classes[2]++
	case c == http.StatusTooManyRequests:
		t.classes[3]++
	default:
		t.classes[4]++
	}
	if r.Code == 0 {
		t.transport++
	}
	t.latency.Add(r)
	if r.Code == 0 || k >= nKinds || !k.expected(r.Code) {
		t.unexpected++
		return true
	}
	return false
}

func (t *tally) String() string {
	var b strings.Builder
	for i, n := range t.classes {
		fmt.Fprintf(&b, "%s %d  ", classNames[i], n)
	}
	fmt.Fprintf(&b, "unexpected %d", t.unexpected)
	return b.String()
}

// reloadWindow is how long after a reload starts (and 1 s before) a
// transport error counts as the reload's.
const reloadWindow = 10 * time.Second

// nearReload reports whether t falls within reloadWindow of a reload.
func nearReload(reloads []time.Time, t time.Time) bool {
	for _, r := range reloads {
		if t.After(r.Add(-time.Second)) && t.Before(r.Add(reloadWindow)) {
			return true
		}
	}
	return false
}

func run(c config) error {
	ctx := context.Background()
	gw := gwstat.New(c.pid, c.admin, c.metricsURL)
	if _, err := gw.Sample(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	label := strconv.FormatInt(time.Now().UnixNano(), 36)

	// Phase 1: maximum throughput of the mix.
	fmt.Printf("probe: %s of mixed traffic, %d workers, no set rate\n", c.probe, c.workers)
	var probe tally
	began := time.Now()
	atk := attacker(c, vegeta.Workers(c.workers), vegeta.MaxWorkers(c.workers))
	for r := range atk.Attack(newTraffic(c.gatewayURL, label+"p", c.rotate).targeter(), vegeta.Rate{Freq: 0}, c.probe, "probe") {
		k, _ := classify(r.URL)
		probe.add(r, k)
	}
	elapsed := time.Since(began)
	probe.latency.Close()
	answered := probe.requests - probe.transport
	maxRate := float64(answered) / elapsed.Seconds()
	fmt.Printf("probe: %d answers in %.1f s: %.0f/s; %s; latency p50 %s p99 %s\n",
		answered, elapsed.Seconds(), maxRate, &probe, probe.latency.Latencies.P50, probe.latency.Latencies.P99)
	rate := int(maxRate * c.fraction)
	if c.rate > 0 {
		rate = c.rate
	}
	if answered == 0 || rate < 1 {
		return errors.New("probe: the gateway answered nothing")
	}

	// Phase 2: the soak.
	activeChecks := map[string]string{"result": "active", "source": "checktoken"}
	checks0, err := gw.Counter(ctx, "caddy_passerelle_token_checks_total", activeChecks)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	calls0, err := gwstat.CountLines(c.checktokenLog)
	if err != nil {
		return err
	}
	original, err := os.ReadFile(c.habilitations)
	if err != nil {
		return err
	}
	fmt.Printf("soak: %d min at %d/s (%.0f %% of %.0f/s), cached token rotated every %s, reload every %s, habilitations rewritten every %s\n",
		c.minutes, rate, 100*float64(rate)/maxRate, maxRate, c.rotate, c.reloadEvery, c.rewriteEvery)

	var (
		mu      sync.Mutex // guards broken and the counters below
		broken  []string
		series  [4][]float64 // RSS MiB, heap in use MiB, goroutines, fds
		minutes []float64
	)
	// Per minute, next to the answers: the provider calls the gateway
	// shed at its in-flight cap (they are 503s, counted unexpected), and
	// the share of the machine's CPU the hypervisor stole: a starved VM
	// stalls every process at once, and an open-model load piles up calls
	// in flight meanwhile.
	shedLabels := map[string]string{"provider": "CNAV", "cause": "in_flight"}
	lastShed, _ := gw.Counter(ctx, "caddy_passerelle_provider_shed_total", shedLabels)
	lastSteal, lastTotal, _ := cpuTimes()
	report := func(m int, t *tally) {
		line := fmt.Sprintf("minute %3d:", m)
		if t != nil {
			t.latency.Close()
			line += fmt.Sprintf(" %7d req (%6.1f/s)  %s  p99 %-9s", t.requests, float64(t.requests)/60, t, t.latency.Latencies.P99.Round(10*time.Microsecond))
			if shed, err := gw.Counter(ctx, "caddy_passerelle_provider_shed_total", shedLabels); err == nil {
				line += fmt.Sprintf("  shed %.0f", shed-lastShed)
				lastShed = shed
			}
			if steal, total, err := cpuTimes(); err == nil && total > lastTotal {
				line += fmt.Sprintf("  steal %.1f %%", 100*float64(steal-lastSteal)/float64(total-lastTotal))
				lastSteal, lastTotal = steal, total
			}
			line += " |"
		}
		s, err := gw.Sample(ctx)
		if err != nil {
			mu.Lock()
			broken = append(broken, fmt.Sprintf("minute %d: sample: %v", m, err))
			mu.Unlock()
			fmt.Printf("%s sample failed: %v\n", line, err)
			return
		}
		values := [4]float64{float64(s.RSSKiB) / 1024, float64(s.HeapInuse) / (1 << 20), float64(s.Goroutines), float64(s.FDs)}
		minutes = append(minutes, float64(m))
		for i, v := range values {
			series[i] = append(series[i], v)
		}
		fmt.Printf("%s RSS %.1f MiB  heap in use %.1f MiB  goroutines %d  fds %d\n", line, values[0], values[1], s.Goroutines, s.FDs)
	}
	report(0, nil)

	// The consumer counts results per minute and in total.
	var (
		minute      = new(tally)
		total       tally
		generations = map[int64]bool{} // cached-token generations answered
		freshSent   int64              // fresh tokens answered
		unknownSent int64              // unknown tokens answered
		odd         = map[string]int64{}
		// Reloads replace the servers: a request sent on a keep-alive
		// connection the replaced server is closing gets EOF or a reset
		// (Caddy's, and the client's to retry). Such transport errors
		// within reloadWindow of a reload are counted apart.
		reloadTimes []time.Time
		reloadRaces int64
		// Unexpected statuses (not transport errors) within reloadWindow
		// of a reload: a reload's load-time work competes for the CPU.
		nearReloads int64
	)
	soak := newTraffic(c.gatewayURL, label+"s", c.rotate)
	atk = attacker(c, vegeta.MaxWorkers(10000), vegeta.MaxConnections(c.connections))
	start := time.Now()
	results := atk.Attack(soak.targeter(), vegeta.Rate{Freq: rate, Per: time.Second}, time.Duration(c.minutes)*time.Minute, "soak")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range results {
			k, gen := classify(r.URL)
			mu.Lock()
			if r.Code == 0 && nearReload(reloadTimes, r.Timestamp) {
				reloadRaces++
				mu.Unlock()
				continue
			}
			minute.add(r, k)
			if total.add(r, k) {
				if r.Code != 0 && nearReload(reloadTimes, r.Timestamp) {
					nearReloads++
				}
				name := "?"
				if k < nKinds {
					name = kindNames[k]
				}
				what := strconv.Itoa(int(r.Code))
				if r.Code == 0 {
					// The cause, without the URL and the addresses.
					what = r.Error
					if i := strings.LastIndex(what, ": "); i >= 0 {
						what = what[i+2:]
					}
				}
				odd[name+" → "+what]++
			}
			if r.Code != 0 {
				switch k {
				case cached:
					generations[gen] = true
				case fresh:
					freshSent++
				case unknown:
					unknownSent++
				}
			}
			mu.Unlock()
		}
	}()

	// Reloads and rewrites, until the load ends.
	stop, cancel := context.WithCancel(ctx)
	var jobs sync.WaitGroup
	var reloads, reloadFailures, rewrites int
	jobs.Go(func() {
		periodic(stop, start, c.reloadEvery/2, c.reloadEvery, func(n int) {
			mu.Lock()
			reloadTimes = append(reloadTimes, time.Now())
			mu.Unlock()
			rctx, rcancel := context.WithTimeout(ctx, time.Minute)
			defer rcancel()
			out, err := exec.CommandContext(rctx, c.bin, "reload", "--config", c.caddyfile, "--address", c.admin, "--force").CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			reloads++
			if err != nil {
				reloadFailures++
				broken = append(broken, fmt.Sprintf("reload %d: %v: %s", n, err, out))
				fmt.Printf("reload %d failed: %v\n%s", n, err, out)
			}
		})
	})
	jobs.Go(func() {
		periodic(stop, start, c.rewriteEvery*3/8, c.rewriteEvery, func(n int) {
			err := rewrite(c.habilitations, original, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				broken = append(broken, fmt.Sprintf("rewrite %d: %v", n, err))
				fmt.Printf("habilitations rewrite %d failed: %v\n", n, err)
				return
			}
			rewrites++
		})
	})

	take := func() *tally {
		mu.Lock()
		defer mu.Unlock()
		t := minute
		minute = new(tally)
		return t
	}
	for m := 1; m < c.minutes; m++ {
		time.Sleep(time.Until(start.Add(time.Duration(m) * time.Minute)))
		report(m, take())
	}
	<-done // the last minute, and the requests still in flight
	cancel()
	jobs.Wait()
	report(c.minutes, take())

	// Verdicts.
	checks1, err := gw.Counter(ctx, "caddy_passerelle_token_checks_total", activeChecks)
	if err != nil {
		broken = append(broken, fmt.Sprintf("metrics: %v", err))
	}
	calls1, err := gwstat.CountLines(c.checktokenLog)
	if err != nil {
		broken = append(broken, err.Error())
	}
	habOK, _ := gw.Counter(ctx, "caddy_passerelle_habilitation_reloads_total", map[string]string{"result": "ok"})
	habRefused, _ := gw.Counter(ctx, "caddy_passerelle_habilitation_reloads_total", map[string]string{"result": "refused"})
	total.latency.Close()
	mu.Lock()
	defer mu.Unlock()
	took := time.Since(start)
	fmt.Printf("\nsoak: %d requests in %.1f min at %d/s asked (%.1f/s answered); %s; latency p50 %s p99 %s max %s\n",
		total.requests, took.Minutes(), rate, float64(total.requests-total.transport)/took.Seconds(), &total,
		total.latency.Latencies.P50, total.latency.Latencies.P99, total.latency.Latencies.Max)
	fmt.Printf("unexpected answers: %d, transport errors among them %d, other answers within %s of a reload %d (those windows: %.0f %% of the run): %s\n",
		total.unexpected, total.transport, reloadWindow, nearReloads,
		min(100, 100*float64(reloads)*(reloadWindow+time.Second).Seconds()/took.Seconds()), verdict(total.unexpected == 0))
	fmt.Printf("transport errors within %s of a reload (a keep-alive connection closed by the replaced server): %d for %d reloads: %s (at most 2 per reload)\n",
		reloadWindow, reloadRaces, reloads, verdict(reloadRaces <= 2*int64(reloads)))
	for _, k := range sortedKeys(odd) {
		fmt.Printf("  %s: %d\n", k, odd[k])
	}
	valid := int64(len(generations)) + freshSent
	calls := calls1 - calls0
	fmt.Printf("checktoken calls received by the sandbox FranceConnect during the soak: %d; distinct tokens sent: %d"+
		" (%d valid: %d cached, %d fresh; %d unknown): %s (one checktoken per token)\n",
		calls, valid+unknownSent, valid, len(generations), freshSent, unknownSent, verdict(calls == valid+unknownSent))
	fmt.Printf("gateway metric token_checks_total{result=\"active\",source=\"checktoken\"}: +%.0f for %d distinct valid tokens"+
		" (it counts requests answered from a checktoken call, those that waited on another request's call included)\n",
		checks1-checks0, valid)
	fmt.Printf("reloads %d (%d failed), habilitations rewrites %d; gateway habilitation reloads since start: ok %.0f, refused %.0f\n",
		reloads, reloadFailures, rewrites, habOK, habRefused)
	// Trends over the samples taken under load (minute 1 on); minute 0,
	// before the soak's load, is shown for reference. The slope over the
	// second half leaves out the ramp while bounded structures fill
	// (connection pools, the token cache up to rate × TTL): a leak keeps
	// its slope there.
	names := [4]string{"RSS (MiB)", "heap in use after GC (MiB)", "goroutines", "open fds"}
	for i, ys := range series {
		xs := minutes
		before := "-"
		if len(xs) > 0 && xs[0] == 0 {
			before = strconv.FormatFloat(ys[0], 'f', 1, 64)
			xs, ys = xs[1:], ys[1:]
		}
		if len(ys) == 0 {
			continue
		}
		trend := "n/a (fewer than 2 minutes)"
		if b, ok := slope(xs, ys); ok {
			trend = fmt.Sprintf("%+.3f per minute", b)
		}
		if h := len(xs) / 2; len(xs) >= 4 {
			b, _ := slope(xs[h:], ys[h:])
			trend += fmt.Sprintf(", %+.3f over minutes %d-%d", b, int(xs[h]), int(xs[len(xs)-1]))
		}
		fmt.Printf("trend %-27s before load %7s  minute %d %8.1f  minute %d %8.1f  least-squares slope %s\n",
			names[i], before, int(xs[0]), ys[0], int(xs[len(xs)-1]), ys[len(ys)-1], trend)
	}
	if len(broken) > 0 {
		return fmt.Errorf("something broke:\n  %s", strings.Join(broken, "\n  "))
	}
	return nil
}

// periodic calls f(1), f(2)… at start+first, start+first+every…, until ctx
// is done.
func periodic(ctx context.Context, start time.Time, first, every time.Duration, f func(n int)) {
	for n := 1; ; n++ {
		t := time.NewTimer(time.Until(start.Add(first + time.Duration(n-1)*every)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			f(n)
		}
	}
}

// rewrite replaces the habilitations file atomically: the original content,
// same rights, plus a comment line with the revision number, written to a
// temporary file in the same directory, then renamed over it.
func rewrite(path string, original []byte, n int) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".habilitations-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	content := append([]byte(nil), original...)
	if len(content) > 0 && content[len(content)-1] != '\n' {
		content = append(content, '\n')
	}
	content = fmt.Appendf(content, "# soak revision %d, %s\n", n, time.Now().UTC().Format(time.RFC3339))
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
