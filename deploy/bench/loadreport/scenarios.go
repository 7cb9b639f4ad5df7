package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/passerelle-gw/passerelle/config/loadreport"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// nominal is scenario 1: each repetition one load alternating requests to
// the baseline and to Passerelle, so both percentiles come from the same
// window.
func (l *loader) nominal() (loadreport.Scenario, error) {
	c := l.c
	s := loadreport.Scenario{Name: "Nominal: cached token against reverse_proxy",
		What: fmt.Sprintf("Each repetition, one load of %s alternating Caddy's plain reverse_proxy to the sandbox provider and "+
			"Passerelle's FranceConnect route with a cached token (same provider and provider answer, which Passerelle filters), "+
			"%d/s each.", c.duration, c.rate)}
	calls0, err := l.checktokenCalls()
	if err != nil {
		return s, err
	}
	gw := c.gateway + fcPath
	worst, overheads := time.Duration(math.MinInt64), []string{}
	for i := range c.repeat {
		b := loadreport.Run{Label: fmt.Sprintf("%d reverse_proxy", i+1), Rate: c.rate}
		p := loadreport.Run{Label: fmt.Sprintf("%d passerelle", i+1), Rate: c.rate}
		both := vegeta.NewStaticTargeter(target(c.baseline+baselinePath, ""), target(gw, "cnaf_qfv2"))
		l.load(both, 2*c.rate, c.duration, &stream{run: &p, expect: ok200, match: func(r *vegeta.Result) bool { return r.URL == gw }},
			&stream{run: &b, expect: ok200})
		if b.RSSMiB, err = l.rss(); err != nil {
			return s, err
		}
		p.RSSMiB = b.RSSMiB
		s.Runs = append(s.Runs, b, p)
		over := time.Duration((p.Latency.P99 - b.Latency.P99) * float64(time.Millisecond))
		worst = max(worst, over)
		overheads = append(overheads, fmt.Sprintf("%+.2f", ms(over)))
	}
	calls1, err := l.checktokenCalls()
	if err != nil {
		return s, err
	}
	// The cached token is checked again each time its entry reaches
	// ttl_cap, and at no other time.
	renewals := int(math.Ceil(float64(c.repeat)*c.duration.Seconds()/c.ttlCap.Seconds())) + 1
	s.Verdicts = []loadreport.Verdict{allExpected("every answer 200", s.Runs...),
		{Name: fmt.Sprintf("p99 overhead over reverse_proxy ≤ %d ms in every repetition", maxP99Overhead.Milliseconds()),
			Value: fmt.Sprintf("worst %+.2f ms (ms, by repetition: %s)", ms(worst), strings.Join(overheads, ", ")), Pass: worst <= maxP99Overhead},
		{Name: fmt.Sprintf("cache hits: no checktoken call but the cache's renewals (one per ttl_cap, %s)", c.ttlCap),
			Value: fmt.Sprintf("%d calls (at most %d)", calls1-calls0, renewals), Pass: calls1-calls0 <= renewals}}
	return s, nil
}

// cacheMiss is scenario 2.
func (l *loader) cacheMiss() (loadreport.Scenario, error) {
	c := l.c
	s := loadreport.Scenario{Name: "Cache miss: a new token on every request",
		What: fmt.Sprintf("Passerelle's FranceConnect route, %s at %d/s, each request with a token never sent before: "+
			"one checktoken call each (JWE decryption, JWS verification).", c.duration, c.rate)}
	calls0, err := l.checktokenCalls()
	if err != nil {
		return s, err
	}
	r := l.run1("new tokens", l.newTokens(c.gateway+fcPath), ok200, c.rate, c.duration)
	if r.RSSMiB, err = l.rss(); err != nil {
		return s, err
	}
	calls1, err := l.checktokenCalls()
	if err != nil {
		return s, err
	}
	s.Runs = []loadreport.Run{r}
	s.Verdicts = []loadreport.Verdict{allExpected("every answer 200", r),
		{Name: "one checktoken call per new token", Value: fmt.Sprintf("%d calls for %d tokens", calls1-calls0, r.Requests), Pass: calls1-calls0 == r.Requests}}
	return s, nil
}

// outage is scenario 3: checktoken refused, then stalled, then back.
func (l *loader) outage(rly *relay) (loadreport.Scenario, error) {
	c := l.c
	d, back := min(c.duration, maxOutagePhase), min(c.duration, maxRecovery)
	s := loadreport.Scenario{Name: "FranceConnect checktoken outage, then recovery",
		What: fmt.Sprintf("Checktoken calls refused (the relay cut), then stalled (the relay holds connections: the gateway's "+
			"checktoken timeout and in-flight cap act), %s each at %d/s: 9 requests in 10 with a token cached just before, 1 in 10 "+
			"with a new token. Then checktoken back, new tokens for %s. FranceConnect's JWKS stays up.", d, c.rate, back)}
	for _, phase := range []struct {
		name   string
		breaks func() error
	}{{"refused", func() error { rly.cut(); return nil }}, {"stalled", rly.stall}} {
		held0 := rly.held.Load()
		hit, miss, verdicts, err := l.outagePhase(phase.name, phase.breaks, rly, d)
		if phase.name == "stalled" {
			held := rly.held.Load() - held0
			verdicts = append(verdicts, loadreport.Verdict{Name: "stalled: the relay held the gateway's checktoken connections, answering none",
				Value: fmt.Sprintf("%d connections held", held), Pass: held >= 1})
		}
		if err != nil {
			return s, err
		}
		s.Runs = append(s.Runs, hit, miss)
		s.Verdicts = append(s.Verdicts, verdicts...)
	}
	calls0, err := l.checktokenCalls()
	if err != nil {
		return s, err
	}
	r := l.run1("new tokens, checktoken back", l.newTokens(c.gateway+fcPath), ok200, c.rate, back)
	if r.RSSMiB, err = l.rss(); err != nil {
		return s, err
	}
	calls1, err := l.checktokenCalls()
	if err != nil {
		return s, err
	}
	s.Runs = append(s.Runs, r)
	s.Verdicts = append(s.Verdicts, allExpected("after the outage, new tokens served: 200", r),
		loadreport.Verdict{Name: "after the outage, one checktoken call per new token", Value: fmt.Sprintf("%d calls for %d tokens", calls1-calls0, r.Requests),
			Pass: calls1-calls0 == r.Requests})
	return s, nil
}

// outagePhase caches a token, breaks checktoken, loads cached and new
// tokens together for d, and restores checktoken.
func (l *loader) outagePhase(name string, breakCheckToken func() error, rly *relay, d time.Duration) (hit, miss loadreport.Run, verdicts []loadreport.Verdict, err error) {
	c := l.c
	gw := c.gateway + fcPath
	cached := l.freshToken("outage-")
	if code, err := l.get(gw, cached); err != nil || code != http.StatusOK {
		return hit, miss, nil, fmt.Errorf("caching a token: %d, %v", code, err)
	}
	calls0, failed0, err := l.checks()
	if err != nil {
		return hit, miss, nil, err
	}
	if err := breakCheckToken(); err != nil {
		return hit, miss, nil, err
	}
	hit = loadreport.Run{Label: "cached tokens, checktoken " + name, Rate: c.rate * 9 / 10}
	miss = loadreport.Run{Label: "new tokens, checktoken " + name, Rate: c.rate / 10}
	var wg sync.WaitGroup
	wg.Go(func() {
		l.load(vegeta.NewStaticTargeter(target(gw, cached)), hit.Rate, d, &stream{run: &hit, expect: ok200})
	})
	wg.Go(func() { l.load(l.newTokens(gw), miss.Rate, d, &stream{run: &miss, expect: unavailable}) })
	wg.Wait()
	if err := rly.restore(); err != nil {
		return hit, miss, nil, fmt.Errorf("restoring the relay: %w", err)
	}
	if hit.RSSMiB, err = l.rss(); err != nil {
		return hit, miss, nil, err
	}
	miss.RSSMiB = hit.RSSMiB
	calls1, failed1, err := l.checks()
	if err != nil {
		return hit, miss, nil, err
	}
	unavailable := miss.Status["503"]
	deadline := c.checktokenTimeout + deadlineSlack
	return hit, miss, []loadreport.Verdict{
		allExpected(name+": cached tokens served: 200", hit),
		allExpected(name+": new tokens refused: 503 with Retry-After", miss),
		{Name: fmt.Sprintf("%s: new tokens answered within the checktoken timeout (%s) + %s", name, c.checktokenTimeout, deadlineSlack),
			Value: fmt.Sprintf("slowest %.0f ms", miss.Latency.Max), Pass: miss.Latency.Max <= ms(deadline)},
		{Name: name + ": FranceConnect received no checktoken call", Value: fmt.Sprintf("%d calls", calls1-calls0), Pass: calls1 == calls0},
		{Name: name + ": each 503 is a failed checktoken (token_checks_total{source=\"checktoken\",result=\"error\"})",
			Value: fmt.Sprintf("+%d for %d answers 503", failed1-failed0, unavailable), Pass: failed1-failed0 == unavailable},
	}, nil
}

// reloadStorm is scenario 4: SECURITY.md I13's reloads under a constant
// rate, scheduled from the start of the load, the last at least
// stormTail before its end.
func (l *loader) reloadStorm() (loadreport.Scenario, error) {
	c := l.c
	d := max(c.duration, time.Duration(c.reloads)*minReloadSpacing+stormLead+stormTail)
	spacing := (d - stormLead - stormTail) / time.Duration(c.reloads)
	migrate, restore := migrateRequests()
	defer restore()
	s := loadreport.Scenario{Name: "Reload storm (SECURITY.md I13)",
		What: fmt.Sprintf("Passerelle's FranceConnect route with a cached token, %s at %d/s, while the configuration is reloaded %d times "+
			"(`passerelle reload --force`), one every %s from %s after the start; %s.", d, c.rate, c.reloads, spacing.Round(time.Millisecond), stormLead, migrate)}
	start := time.Now()
	var done, failed int
	var last time.Time
	var firstErr string
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := range c.reloads {
			time.Sleep(time.Until(start.Add(stormLead + time.Duration(i)*spacing)))
			ctx, cancel := context.WithTimeout(context.Background(), max(2*spacing, 10*time.Second))
			out, err := exec.CommandContext(ctx, c.bin, "reload", "--config", c.caddyfile, "--address", c.admin, "--force").CombinedOutput()
			cancel()
			if err != nil {
				failed++
				if firstErr == "" {
					firstErr = fmt.Sprintf("; reload %d failed: %v: %s", i+1, err, strings.TrimSpace(string(out)))
				}
				continue
			}
			done, last = done+1, time.Now()
		}
	}()
	handled0, err := l.handledFC()
	if err != nil {
		return s, err
	}
	log0, err := fileSize(c.gatewayLog)
	if err != nil {
		return s, err
	}
	retry := &unansweredRetry{base: l.client.Transport}
	r := loadreport.Run{Label: "cached token, reloads", Rate: c.rate}
	l.loadVia(&http.Client{Timeout: l.client.Timeout, Transport: retry}, vegeta.NewStaticTargeter(target(c.gateway+fcPath, "cnaf_qfv2")),
		c.rate, d, &stream{run: &r, expect: ok200})
	end := time.Now()
	<-finished
	time.Sleep(settle)
	handled1, err := l.handledFC()
	if err != nil {
		return s, err
	}
	panics, err := countPanics(c.gatewayLog, log0)
	if err != nil {
		return s, err
	}
	if r.RSSMiB, err = l.rss(); err != nil {
		return s, err
	}
	retried, answered := int(retry.retried.Load()), r.Status["200"]
	s.Runs = []loadreport.Run{r}
	s.Verdicts = []loadreport.Verdict{
		allExpected("no failed request: every answer 200, no transport error", r),
		{Name: "every reload done, the last at least 1 s before the load's end",
			Value: fmt.Sprintf("%d of %d, the last %.1f s before the end%s", done, c.reloads, end.Sub(last).Seconds(), firstErr),
			Pass:  done == c.reloads && failed == 0 && end.Sub(last) >= time.Second},
		{Name: "requests a replaced server closed unread on a new connection (golang/go#75591), sent again once: " +
			"none reached Passerelle (requests it handled, any decision, = answers 200) nor panicked a handler " +
			"(no panic in the gateway's log), at most one a reload",
			Value: fmt.Sprintf("%d sent again; %d handled, %d answers 200; %d panics logged", retried, handled1-handled0, answered, panics),
			Pass:  handled1-handled0 == answered && panics == 0 && retried <= c.reloads},
	}
	return s, nil
}

// handledFC is how many requests Passerelle has answered on the reload
// storm's route so far, whatever its decision
// (caddy_passerelle_requests_total).
func (l *loader) handledFC() (int, error) {
	v, err := l.gw.Sum(context.Background(), "caddy_passerelle_requests_total", map[string]string{"endpoint": "dss_quotient_familial_fc"})
	return int(v), err
}

// panicMarks are what a log line of a recovered handler panic holds: Go's
// net/http server's (a handler outside Passerelle's pipeline), the
// pipeline's own (recoverPanic).
var panicMarks = []string{"http: panic serving", `"pipeline panic"`}

// fileSize is the size of the file at path.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// countPanics counts the lines written to the log at path after its first
// from bytes that record a handler panic.
func countPanics(path string, from int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return 0, err
	}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for _, m := range panicMarks {
			if strings.Contains(sc.Text(), m) {
				n++
				break
			}
		}
	}
	return n, sc.Err()
}

// migrateRequestsSysctl moves the connections waiting in a closed
// listening socket's accept queue to another socket of its SO_REUSEPORT
// group (Linux 5.14+), instead of resetting them.
const migrateRequestsSysctl = "/proc/sys/net/ipv4/tcp_migrate_req"

// migrateRequests sets net.ipv4.tcp_migrate_req to 1 for the reload storm
// when it can (root; the setting is the network namespace's), as README.md
// ("Several instances") and the deploy references have it: at each reload
// Caddy opens new listening sockets and closes the old ones, and without
// it the kernel resets a connection still waiting in an old socket's
// accept queue, before any server reads it. It returns what the report
// says of the setting, and the function that puts the old value back.
func migrateRequests() (string, func()) {
	old, err := os.ReadFile(migrateRequestsSysctl)
	switch {
	case err != nil:
		return "net.ipv4.tcp_migrate_req unavailable (kernel before 5.14): an old listening socket's waiting connections may be reset", func() {}
	case strings.TrimSpace(string(old)) != "0":
		return "net.ipv4.tcp_migrate_req=" + strings.TrimSpace(string(old)), func() {}
	}
	if err := os.WriteFile(migrateRequestsSysctl, []byte("1"), 0); err != nil {
		return "net.ipv4.tcp_migrate_req=0, not settable here: an old listening socket's waiting connections may be reset", func() {}
	}
	return "net.ipv4.tcp_migrate_req=1, set for this scenario (it was 0)", func() { _ = os.WriteFile(migrateRequestsSysctl, old, 0) }
}

// get sends one request with token and drains the answer.
func (l *loader) get(u, token string) (int, error) {
	t := target(u, token)
	req, err := http.NewRequest(t.Method, t.URL, nil)
	if err != nil {
		return 0, err
	}
	req.Header = t.Header
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
