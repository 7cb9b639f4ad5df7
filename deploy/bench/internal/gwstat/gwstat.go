// Package gwstat reads the figures of a running gateway process for the
// load harness (deploy/bench/soak, deploy/bench/loadreport): from /proc
// (its pid), from Caddy's admin endpoint and metrics listener on loopback,
// and the upstream's log of checktoken calls.
package gwstat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Gateway reads the figures of the gateway process: from /proc (its pid) and
// from Caddy's admin endpoint and metrics listener, on loopback.
type Gateway struct {
	pid     int
	admin   string // host:port of Caddy's admin endpoint
	metrics string // URL of the metrics endpoint
	client  *http.Client
}

// New reads the gateway process pid, whose admin endpoint is admin
// (host:port) and metrics endpoint the URL metrics.
func New(pid int, admin, metrics string) *Gateway {
	return &Gateway{pid: pid, admin: admin, metrics: metrics, client: &http.Client{
		Timeout: 30 * time.Second,
		// No proxy, and a new connection per call, so that the sampler
		// leaves no idle connection (a goroutine and an fd) in the gateway.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}}
}

// Sample is the state of the gateway at one instant.
type Sample struct {
	RSSKiB     int64 // VmRSS
	HeapInuse  int64 // memstats.HeapInuse after a forced GC, bytes
	Goroutines int64
	FDs        int64
}

// Sample reads the gateway's RSS, heap in use after a forced GC,
// goroutines and open file descriptors.
func (g *Gateway) Sample(ctx context.Context) (Sample, error) {
	var s Sample
	var err error
	if s.RSSKiB, err = g.Status("VmRSS"); err != nil {
		return s, err
	}
	if s.HeapInuse, err = g.heapInuse(ctx); err != nil {
		return s, err
	}
	if s.Goroutines, err = g.goroutines(ctx); err != nil {
		return s, err
	}
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.pid))
	if err != nil {
		return s, err
	}
	s.FDs = int64(len(entries))
	return s, nil
}

// Status reads a kB field of /proc/<pid>/status (VmRSS, VmHWM), in KiB.
func (g *Gateway) Status(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, g.pid)
}

func (g *Gateway) get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// heapInuse forces a GC (the heap profile with gc=1), then reads
// memstats.HeapInuse from the expvar endpoint (/debug/vars).
func (g *Gateway) heapInuse(ctx context.Context) (int64, error) {
	body, err := g.get(ctx, "http://"+g.admin+"/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, body)
	body.Close()
	if body, err = g.get(ctx, "http://"+g.admin+"/debug/vars"); err != nil {
		return 0, err
	}
	defer body.Close()
	var vars struct {
		Memstats struct{ HeapInuse int64 } `json:"memstats"`
	}
	if err := json.NewDecoder(body).Decode(&vars); err != nil {
		return 0, fmt.Errorf("/debug/vars: %w", err)
	}
	return vars.Memstats.HeapInuse, nil
}

// goroutines reads "goroutine profile: total N", the first line of the
// goroutine profile in text form.
func (g *Gateway) goroutines(ctx context.Context) (int64, error) {
	body, err := g.get(ctx, "http://"+g.admin+"/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	line, _ := bufio.NewReader(body).ReadString('\n')
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("goroutine profile: unexpected first line %q", line)
	}
	return strconv.ParseInt(v, 10, 64)
}

// Counter returns the value of one series of the metrics endpoint, given its
// name and exact labels (0 when the series does not exist yet).
func (g *Gateway) Counter(ctx context.Context, name string, labels map[string]string) (float64, error) {
	return g.sum(ctx, func(line string) (float64, bool) { return MatchSeries(line, name, labels) })
}

// Sum returns the sum of the series of the metrics endpoint named name whose
// labels include labels (every decision of one endpoint, say).
func (g *Gateway) Sum(ctx context.Context, name string, labels map[string]string) (float64, error) {
	return g.sum(ctx, func(line string) (float64, bool) { return matchSeries(line, name, labels, false) })
}

// sum adds the values of the lines of the metrics endpoint that match.
func (g *Gateway) sum(ctx context.Context, match func(line string) (float64, bool)) (float64, error) {
	body, err := g.get(ctx, g.metrics)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	total := 0.0
	for sc.Scan() {
		if v, ok := match(sc.Text()); ok {
			total += v
		}
	}
	return total, sc.Err()
}

// MatchSeries parses one line of the Prometheus text format,
// name{a="x",b="y"} value, and returns its value when the name and the label
// set are exactly those asked for.
func MatchSeries(line, name string, labels map[string]string) (float64, bool) {
	return matchSeries(line, name, labels, true)
}

// matchSeries is MatchSeries; with exact false, the line's labels need only
// include those asked for.
func matchSeries(line, name string, labels map[string]string, exact bool) (float64, bool) {
	rest, ok := strings.CutPrefix(line, name+"{")
	if !ok {
		return 0, false
	}
	set, value, ok := strings.Cut(rest, "} ")
	if !ok {
		return 0, false
	}
	got := map[string]string{}
	for pair := range strings.SplitSeq(set, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return 0, false
		}
		got[k] = strings.Trim(v, `"`)
	}
	if exact && len(got) != len(labels) {
		return 0, false
	}
	for k, v := range labels {
		if got[k] != v {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	return f, err == nil
}

// CountLines counts the lines of a file; a missing file has none.
func CountLines(path string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, err
		}
	}
}
