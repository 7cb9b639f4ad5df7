package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// gateway reads the figures of the gateway process: from /proc (its pid) and
// from Caddy's admin endpoint and metrics listener, on loopback.
type gateway struct {
	pid     int
	admin   string // host:port of Caddy's admin endpoint
	metrics string // URL of the metrics endpoint
	client  *http.Client
}

func newGateway(pid int, admin, metrics string) *gateway {
	return &gateway{pid: pid, admin: admin, metrics: metrics, client: &http.Client{
		Timeout: 30 * time.Second,
		// No proxy, and a new connection per call, so that the sampler
		// leaves no idle connection (a goroutine and an fd) in the gateway.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}}
}

// sample is the state of the gateway at one instant.
type sample struct {
	rssKiB     int64 // VmRSS
	heapInuse  int64 // memstats.HeapInuse after a forced GC, bytes
	goroutines int64
	fds        int64
}

func (g *gateway) sample(ctx context.Context) (sample, error) {
	var s sample
	var err error
	if s.rssKiB, err = g.rss(); err != nil {
		return s, err
	}
	if s.heapInuse, err = g.heapInuse(ctx); err != nil {
		return s, err
	}
	if s.goroutines, err = g.goroutines(ctx); err != nil {
		return s, err
	}
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.pid))
	if err != nil {
		return s, err
	}
	s.fds = int64(len(entries))
	return s, nil
}

// rss reads VmRSS (KiB) from /proc/<pid>/status.
func (g *gateway) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", g.pid)
}

func (g *gateway) get(ctx context.Context, url string) (io.ReadCloser, error) {
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
func (g *gateway) heapInuse(ctx context.Context) (int64, error) {
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
func (g *gateway) goroutines(ctx context.Context) (int64, error) {
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

// counter returns the value of one series of the metrics endpoint, given its
// name and exact labels (0 when the series does not exist yet).
func (g *gateway) counter(ctx context.Context, name string, labels map[string]string) (float64, error) {
	body, err := g.get(ctx, g.metrics)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := matchSeries(sc.Text(), name, labels); ok {
			return v, nil
		}
	}
	return 0, sc.Err()
}

// matchSeries parses one line of the Prometheus text format,
// name{a="x",b="y"} value, and returns its value when the name and the label
// set are exactly those asked for.
func matchSeries(line, name string, labels map[string]string) (float64, bool) {
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
	if len(got) != len(labels) {
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

// cpuTimes reads the machine's CPU time from /proc/stat, in clock ticks:
// the time stolen by the hypervisor from this VM and the total. Their
// change over a minute tells whether the VM was starved (a neighbour), a
// cause of latency that no process here controls.
func cpuTimes() (steal, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPULine(line)
}

// parseCPULine reads the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal, then guest times, which user and nice include.
func parseCPULine(line string) (steal, total uint64, err error) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, f := range fields[1:9] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i == 7 {
			steal = v
		}
	}
	return steal, total, nil
}
