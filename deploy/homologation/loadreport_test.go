package homologation

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadReport is the part of deploy/bench/loadreport's load-report.json
// that J06 asks for.
type loadReport struct {
	Method struct {
		Binary        string  `json:"binary_sha256"`
		GoVersion     string  `json:"go_version"`
		Revision      string  `json:"revision"`
		CPU           string  `json:"cpu"`
		LogicalCPUs   int     `json:"logical_cpus"`
		MemoryMiB     int64   `json:"memory_mib"`
		Kernel        string  `json:"kernel"`
		TLS           string  `json:"tls"`
		LoadGenerator string  `json:"load_generator"`
		Rate          int     `json:"rate_per_second"`
		Duration      string  `json:"duration"`
		Repetitions   int     `json:"repetitions"`
		IdleRSSMiB    float64 `json:"idle_rss_mib"`
	} `json:"method"`
	Scenarios []struct {
		Name string `json:"name"`
		Runs []struct {
			Label    string         `json:"label"`
			Requests int            `json:"requests"`
			Expected int            `json:"expected"`
			Status   map[string]int `json:"status"`
			Latency  struct {
				P99 float64 `json:"p99_ms"`
			} `json:"latency"`
		} `json:"runs"`
		Verdicts []struct {
			Name string `json:"name"`
			Pass bool   `json:"pass"`
		} `json:"verdicts"`
	} `json:"scenarios"`
	Soak *struct {
		Minutes  int      `json:"minutes"`
		Verdicts []string `json:"verdicts"`
		Pass     bool     `json:"pass"`
	} `json:"soak"`
	Pass bool `json:"pass"`
}

// TestJ06_LoadReport checks the load report the release job archives
// (SECURITY.md J06; deploy/bench/report.sh, run by
// deploy/supplychain/release.sh on the release's binary) in the artefacts
// named by PASSERELLE_RELEASE_DIR (.ci/test sets it; skipped without it):
// it measured that very binary (its SHA-256), states its method (machine,
// TLS on, rate, durations, repetitions), holds every scenario J06 names
// (nominal cache hit against reverse_proxy with the p99 overhead bar,
// cache miss, FranceConnect outage and recovery, reload storm, memory) with
// requests actually made, and the soak's verdicts; and every bar held.
// req: J06
func TestJ06_LoadReport(t *testing.T) {
	dir := os.Getenv(ReleaseDirEnv)
	if dir == "" {
		t.Skip(ReleaseDirEnv + " is not set: .ci/test runs the release job, then this test on its artefacts")
	}
	data, err := os.ReadFile(filepath.Join(dir, "load", "load-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep loadReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if md, err := os.ReadFile(filepath.Join(dir, "load", "load-report.md")); err != nil || !strings.Contains(string(md), "## Method") {
		t.Errorf("load-report.md missing or without its method: %v", err)
	}

	bin, err := os.ReadFile(filepath.Join(dir, "passerelle"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	m := rep.Method
	if m.Binary != hex.EncodeToString(sum[:]) {
		t.Errorf("the report measured binary %s, not the release's", m.Binary)
	}
	for name, v := range map[string]string{"go version": m.GoVersion, "revision": m.Revision, "CPU": m.CPU, "kernel": m.Kernel,
		"load generator": m.LoadGenerator, "duration": m.Duration} {
		if v == "" {
			t.Errorf("method: no %s", name)
		}
	}
	if m.LogicalCPUs < 1 || m.MemoryMiB < 1 || m.Rate < 1 || m.Repetitions < 1 || m.IdleRSSMiB <= 0 {
		t.Errorf("method: incomplete: %+v", m)
	}
	if !strings.HasPrefix(m.TLS, "TLS 1.3") && !strings.HasPrefix(m.TLS, "TLS 1.2") {
		t.Errorf("method: the load did not run over TLS 1.2 or 1.3: %q", m.TLS)
	}

	want := map[string]struct{ runs, verdicts int }{
		"Nominal: cached token against reverse_proxy": {2 * m.Repetitions, 2},
		"Cache miss: a new token on every request":    {1, 1},
		"FranceConnect outage, then recovery":         {3, 3},
		"Reload storm (SECURITY.md I13)":              {1, 2},
		"Memory":                                      {0, 2},
	}
	for _, s := range rep.Scenarios {
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		delete(want, s.Name)
		if len(s.Runs) != w.runs || len(s.Verdicts) != w.verdicts {
			t.Errorf("%s: %d runs and %d verdicts, want %d and %d", s.Name, len(s.Runs), len(s.Verdicts), w.runs, w.verdicts)
		}
		for _, r := range s.Runs {
			if r.Requests < 10 || r.Latency.P99 <= 0 {
				t.Errorf("%s, %s: %d requests, p99 %.2f ms: the load did not run", s.Name, r.Label, r.Requests, r.Latency.P99)
			}
		}
		for _, v := range s.Verdicts {
			if !v.Pass {
				t.Errorf("%s: %s: FAIL", s.Name, v.Name)
			}
		}
	}
	for name := range want {
		t.Errorf("scenario %q missing", name)
	}
	if rep.Soak == nil || rep.Soak.Minutes < 1 || len(rep.Soak.Verdicts) < 3 || !rep.Soak.Pass {
		t.Errorf("the soak's verdicts are missing or failed: %+v", rep.Soak)
	}
	if !rep.Pass {
		t.Error("the report's verdict is FAIL")
	}
}
