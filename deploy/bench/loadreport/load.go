package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/passerelle-gw/passerelle/config/loadreport"
	"github.com/passerelle-gw/passerelle/deploy/bench/internal/gwstat"
)

// settle lets the sandbox FranceConnect write the log line of its last
// answers before they are counted.
const settle = 500 * time.Millisecond

// loader sends constant-rate loads and reads the gateway's figures.
type loader struct {
	c      config
	client *http.Client // shared by every load: its connections stay open
	gw     *gwstat.Gateway
	label  string       // makes this run's new tokens unique
	n      atomic.Int64 // new tokens made
}

// stream is one run of a load: the results it takes and what it expects.
type stream struct {
	run       *loadreport.Run
	expect    func(*vegeta.Result) bool
	match     func(*vegeta.Result) bool // nil: every result not taken before
	latencies []time.Duration
}

// load sends t's requests at rate per second for d, open loop, and hands
// each result to the first stream that matches it. Each stream's run gets
// its requested rate share and duration from the caller.
func (l *loader) load(t vegeta.Targeter, rate int, d time.Duration, streams ...*stream) {
	l.loadVia(l.client, t, rate, d, streams...)
}

// loadVia is load through another client.
func (l *loader) loadVia(client *http.Client, t vegeta.Targeter, rate int, d time.Duration, streams ...*stream) {
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.MaxBody(0))
	for _, s := range streams {
		s.run.Seconds = d.Seconds()
		if s.run.Status == nil {
			s.run.Status = map[string]int{}
		}
	}
	for res := range atk.Attack(t, vegeta.Rate{Freq: rate, Per: time.Second}, d, "loadreport") {
		for _, s := range streams {
			if s.match != nil && !s.match(res) {
				continue
			}
			r := s.run
			r.Requests++
			r.Status[strconv.Itoa(int(res.Code))]++
			if res.Code == 0 && res.Error != "" {
				if r.TransportErrors == nil {
					r.TransportErrors = map[string]int{}
				}
				r.TransportErrors[errorKind(res.Error)]++
			}
			if s.expect(res) {
				r.Expected++
			}
			s.latencies = append(s.latencies, res.Latency)
			break
		}
	}
	for _, s := range streams {
		s.run.Latency = summarize(s.latencies)
	}
}

var (
	// queries are the query strings of the URLs an error quotes: never in
	// a report, whatever they hold.
	queries = regexp.MustCompile(`\?[^"\s]*`)
	// numbers are the digit runs of an error's text: addresses and ports.
	numbers = regexp.MustCompile(`[0-9]+`)
)

// errorKind is a transport error's text without the query strings it
// quotes and with its numbers masked, so that the same failure on two
// connections counts once.
func errorKind(s string) string {
	return numbers.ReplaceAllString(queries.ReplaceAllString(s, "?…"), "N")
}

// run1 is a load of one stream: a new Run labelled label.
func (l *loader) run1(label string, t vegeta.Targeter, expect func(*vegeta.Result) bool, rate int, d time.Duration) loadreport.Run {
	r := loadreport.Run{Label: label, Rate: rate}
	l.load(t, rate, d, &stream{run: &r, expect: expect})
	return r
}

// rss is the gateway's VmRSS now, in MiB.
func (l *loader) rss() (float64, error) {
	kib, err := l.gw.Status("VmRSS")
	return float64(kib) / 1024, err
}

// checktokenCalls is how many checktoken calls the sandbox FranceConnect
// has answered so far (its access log, one line per call), read once it
// has logged its last answers.
func (l *loader) checktokenCalls() (int, error) {
	time.Sleep(settle)
	n, err := gwstat.CountLines(l.c.checktokenLog)
	return int(n), err
}

// checks reads the checktoken calls the sandbox FranceConnect answered and
// the gateway's count of checktoken calls that failed (refused, timed out,
// or shed at the in-flight cap).
func (l *loader) checks() (calls, failed int, err error) {
	if calls, err = l.checktokenCalls(); err != nil {
		return 0, 0, err
	}
	v, err := l.gw.Counter(context.Background(), "caddy_passerelle_token_checks_total",
		map[string]string{"source": "checktoken", "result": "error"})
	return calls, int(v), err
}

// ok200 expects a 200.
func ok200(r *vegeta.Result) bool { return r.Code == http.StatusOK }

// unavailable expects FranceConnect's unavailability: 503 with Retry-After.
func unavailable(r *vegeta.Result) bool {
	return r.Code == http.StatusServiceUnavailable && r.Headers.Get("Retry-After") != ""
}

// target is a fixed request, with a bearer token unless token is "".
func target(u, token string) vegeta.Target {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return vegeta.Target{Method: http.MethodGet, URL: u, Header: h}
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

// freshToken is a token of the sandbox case cnaf_qfv2 never sent before,
// to be cached by one request.
func (l *loader) freshToken(what string) string {
	return fmt.Sprintf("cnaf_qfv2~%s-%s%d", l.label, what, l.n.Add(1))
}
