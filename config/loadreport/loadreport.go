// Package loadreport is the format of Passerelle's load report (SECURITY.md
// J06): load-report.json, which deploy/bench/loadreport writes and the
// homologation dossier reads, and its Markdown rendering, load-report.md.
package loadreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Report is a load report: load-report.json as deploy/bench/loadreport
// writes it, and as the dossier (07) and TestJ06_LoadReport read it.
type Report struct {
	Date      string     `json:"date"`
	Method    Method     `json:"method"`
	Scenarios []Scenario `json:"scenarios"`
	// Soak holds the verdict lines of deploy/bench/soak.sh's output and its
	// duration; nil when no soak ran.
	Soak *Soak `json:"soak,omitempty"`
	Pass bool  `json:"pass"`
}

// Method is how the figures were made (SECURITY.md J06: hardware, TLS,
// durations, repetitions).
type Method struct {
	Binary        string   `json:"binary_sha256"`
	GoVersion     string   `json:"go_version"`
	Revision      string   `json:"revision"` // vcs.revision of the binary, if stamped
	CPU           string   `json:"cpu"`
	LogicalCPUs   int      `json:"logical_cpus"`
	MemoryMiB     int64    `json:"memory_mib"`
	Kernel        string   `json:"kernel"`
	TLS           string   `json:"tls"` // version and suite the gateway negotiated
	Protocol      string   `json:"protocol"`
	LoadGenerator string   `json:"load_generator"`
	Rate          int      `json:"rate_per_second"`
	Duration      string   `json:"duration"`
	Repetitions   int      `json:"repetitions"`
	Reloads       int      `json:"reloads"`
	SoakMinutes   int      `json:"soak_minutes"`
	Gateway       string   `json:"gateway_setup"` // what its configuration sets up
	ConfigFiles   []string `json:"config_files"`  // "path sha256:…", the Caddyfile and its imports
	IdleRSSMiB    float64  `json:"idle_rss_mib"`
	// ReleaseMethod: the run followed the release method (deploy/bench/loadreport),
	// not a shorter one.
	ReleaseMethod bool `json:"release_method"`
}

// Scenario is one J06 scenario: its runs and its verdicts.
type Scenario struct {
	Name     string    `json:"name"`
	What     string    `json:"what"`
	Runs     []Run     `json:"runs"`
	Verdicts []Verdict `json:"verdicts"`
}

// Run is one constant-rate load of a scenario.
type Run struct {
	Label    string         `json:"label"`
	Rate     int            `json:"rate_per_second"` // asked
	Seconds  float64        `json:"seconds"`         // asked
	Requests int            `json:"requests"`
	Expected int            `json:"expected"` // answers with the status the request called for
	Status   map[string]int `json:"status"`   // "0" counts transport errors
	Latency  LatencySummary `json:"latency"`
	RSSMiB   float64        `json:"rss_mib"` // the gateway's, right after the run
	// TransportErrors counts the transport errors by their text, without
	// the query strings it quotes and with its numbers (addresses, ports)
	// masked as "N": what failed, for a run whose "0" status is not empty.
	TransportErrors map[string]int `json:"transport_errors,omitempty"`
}

// LatencySummary is a run's latency distribution, in milliseconds.
type LatencySummary struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Verdict is one bar of a scenario.
type Verdict struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Pass  bool   `json:"pass"`
}

// Soak is the end of a soak.sh run.
type Soak struct {
	Minutes  int      `json:"minutes"`
	Verdicts []string `json:"verdicts"` // its lines ending in PASS or FAIL
	Pass     bool     `json:"pass"`
}

// Read reads a load-report.json: it must name the binary it measured and
// hold scenarios. Its overall verdict is computed again from the verdicts
// (Settle), whatever the file says.
func Read(data []byte) (*Report, error) {
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil || rep.Method.Binary == "" || len(rep.Scenarios) == 0 {
		return nil, errors.New("loadreport: not a load-report.json of deploy/bench/report.sh")
	}
	rep.Settle()
	return &rep, nil
}

// Settle sets the report's overall verdict: PASS when it has scenarios and
// every verdict, the soak's included, passed.
func (rep *Report) Settle() {
	rep.Pass = len(rep.Scenarios) > 0
	for _, s := range rep.Scenarios {
		for _, v := range s.Verdicts {
			rep.Pass = rep.Pass && v.Pass
		}
	}
	if rep.Soak != nil {
		rep.Pass = rep.Pass && rep.Soak.Pass
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// Markdown writes the report for people (load-report.md): the method, then
// each scenario's runs and verdicts.
func (rep *Report) Markdown(w io.Writer) {
	m := rep.Method
	short := ""
	if !m.ReleaseMethod {
		short = " (short run, not the release method)"
	}
	fmt.Fprintf(w, "# Passerelle load report (SECURITY.md J06), %s: %s%s\n\n", rep.Date, passFail(rep.Pass), short)
	fmt.Fprintf(w, "Made by `deploy/bench/report.sh` (its header has the method in full).\n\n## Method\n\n")
	for _, kv := range [][2]string{
		{"binary (SHA-256)", m.Binary}, {"built with", m.GoVersion}, {"revision", m.Revision},
		{"CPU", fmt.Sprintf("%s, %d logical CPUs", m.CPU, m.LogicalCPUs)}, {"memory", fmt.Sprintf("%d MiB", m.MemoryMiB)},
		{"kernel", m.Kernel}, {"TLS between the callers and the gateway", m.TLS}, {"protocol", m.Protocol},
		{"load generator", m.LoadGenerator},
		{"gateway configuration", strings.Join(m.ConfigFiles, ", ")}, {"it sets up", m.Gateway},
		{"rate, duration, repetitions", fmt.Sprintf("%d requests/s, %s a run, %d repetitions of the nominal scenario, %d reloads, a soak of %d min",
			m.Rate, m.Duration, m.Repetitions, m.Reloads, m.SoakMinutes)},
		{"gateway RSS idle, before any load", fmt.Sprintf("%.1f MiB", m.IdleRSSMiB)},
	} {
		fmt.Fprintf(w, "- %s: %s\n", kv[0], kv[1])
	}
	for _, s := range rep.Scenarios {
		fmt.Fprintf(w, "\n## %s\n\n%s\n\n", s.Name, s.What)
		if len(s.Runs) > 0 {
			runTable(w, s.Runs)
		}
		for _, v := range s.Verdicts {
			fmt.Fprintf(w, "- %s: %s: **%s**\n", v.Name, v.Value, passFail(v.Pass))
		}
	}
	if rep.Soak != nil {
		fmt.Fprintf(w, "\n## Soak, %d min (deploy/bench/soak.sh)\n\n", rep.Soak.Minutes)
		for _, v := range rep.Soak.Verdicts {
			fmt.Fprintf(w, "- %s\n", v)
		}
	}
}

// runTable writes one line per run, then a blank line.
func runTable(w io.Writer, runs []Run) {
	fmt.Fprintln(w, "| run | requests | expected answers | statuses | p50 ms | p99 ms | max ms | gateway RSS MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range runs {
		fmt.Fprintf(w, "| %s | %d | %d | %s | %.2f | %.2f | %.2f | %.1f |\n", r.Label, r.Requests, r.Expected,
			statuses(r.Status), r.Latency.P50, r.Latency.P99, r.Latency.Max, r.RSSMiB)
	}
	fmt.Fprintln(w)
	for _, r := range runs {
		for _, e := range slices.Sorted(maps.Keys(r.TransportErrors)) {
			fmt.Fprintf(w, "- %s, transport error ×%d: `%s`\n", r.Label, r.TransportErrors[e], e)
		}
	}
}

// statuses writes a status histogram as "200 ×n, 503 ×m" ("0" is a
// transport error).
func statuses(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
