package homologation

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/loadreport"
)

// TestJ06_LoadReport checks the load report the release job archives
// (SECURITY.md J06; deploy/bench/report.sh, run by
// deploy/supplychain/release.sh on the release's binary) in the artefacts
// named by PASSERELLE_RELEASE_DIR (.ci/test sets it; skipped without it):
// it measured that very binary (its SHA-256), states its method (machine,
// gateway configuration, TLS on, rate, durations, repetitions), holds every
// scenario J06 names (nominal cache hit against reverse_proxy with the p99
// overhead bar, cache miss, FranceConnect checktoken outage and recovery,
// reload storm, memory), each run with at least 90 % of the requests asked,
// and the soak's verdicts; every bar held; and the
// release's dossier (07) sums it up as the report of its binary.
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
	rep, err := loadreport.Read(data)
	if err != nil {
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
		"load generator": m.LoadGenerator, "duration": m.Duration, "gateway setup": m.Gateway} {
		if v == "" {
			t.Errorf("method: no %s", name)
		}
	}
	if m.LogicalCPUs < 1 || m.MemoryMiB < 1 || m.Rate < 1 || m.Repetitions < 1 || m.Reloads < 1 || m.IdleRSSMiB <= 0 ||
		len(m.ConfigFiles) == 0 || !strings.Contains(m.ConfigFiles[0], " sha256:") {
		t.Errorf("method: incomplete: %+v", m)
	}
	if !strings.HasPrefix(m.TLS, "TLS 1.3") && !strings.HasPrefix(m.TLS, "TLS 1.2") {
		t.Errorf("method: the load did not run over TLS 1.2 or 1.3: %q", m.TLS)
	}

	want := map[string]struct{ runs, verdicts int }{
		"Nominal: cached token against reverse_proxy":    {2 * m.Repetitions, 3},
		"Cache miss: a new token on every request":       {1, 2},
		"FranceConnect checktoken outage, then recovery": {5, 13},
		"Reload storm (SECURITY.md I13)":                 {1, 3},
		"Memory":                                         {0, 2},
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
			if asked := float64(r.Rate) * r.Seconds; asked < 10 || float64(r.Requests) < 0.9*asked || r.Latency.P99 <= 0 {
				t.Errorf("%s, %s: %d requests of %.0f asked, p99 %.2f ms: the load did not run", s.Name, r.Label, r.Requests, asked, r.Latency.P99)
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
	// The release's dossier sums it up, as the report of this binary.
	supply, err := os.ReadFile(filepath.Join(dir, "dossier", "07-chaine-approvisionnement.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Binaire mesuré: `" + m.Binary + "` (le binaire décrit ci-dessus)", "Verdict d'ensemble: conforme"} {
		if !strings.Contains(string(supply), want) {
			t.Errorf("the release's dossier (07) lacks %q", want)
		}
	}
}
