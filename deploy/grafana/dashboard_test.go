// Package grafana holds the Grafana dashboard (passerelle.json); this test
// checks that it parses and that every metric its queries name is one the
// gateway defines, so that no panel silently shows nothing.
package grafana

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// definedMetrics reads the metric names the gateway's Go code defines:
// Namespace "caddy" with a Subsystem and a Name, or a full name given to
// prometheus.NewDesc.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	opts := regexp.MustCompile(`Namespace: "caddy", Subsystem: "([a-z_]+)", Name: "([a-z_]+)"`)
	desc := regexp.MustCompile(`prometheus\.NewDesc\("(caddy_passerelle_[a-z_]+)"`)
	out := map[string]bool{}
	err := filepath.WalkDir("../../caddyplugin", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range opts.FindAllStringSubmatch(string(data), -1) {
			out["caddy_"+m[1]+"_"+m[2]] = true
		}
		for _, m := range desc.FindAllStringSubmatch(string(data), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("passerelle.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil || d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("dashboard: %v, uid %q, %d panels", err, d.UID, len(d.Panels))
	}
	defined := definedMetrics(t)
	if len(defined) < 10 {
		t.Fatalf("only %d metrics found in the code", len(defined))
	}
	runtime := map[string]bool{"go_memstats_heap_inuse_bytes": true, "go_goroutines": true, "go_gc_duration_seconds": true}
	name := regexp.MustCompile(`\b((?:caddy|go)_[a-z_]+)\b`)
	used := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range name.FindAllString(q.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && (defined[b] || runtime[b]) {
						base = b
					}
				}
				if !defined[base] && !runtime[base] {
					t.Errorf("panel %q: %s is not a metric the gateway defines", p.Title, m)
				}
				used[base] = true
			}
		}
	}
	for _, must := range []string{"caddy_passerelle_requests_total", "caddy_passerelle_token_checks_total", "caddy_passerelle_provider_duration_seconds",
		"caddy_passerelle_rate_limited_total", "caddy_passerelle_habilitation_reloads_total", "caddy_passerelle_front_logins_total"} {
		if !used[must] {
			t.Errorf("no panel shows %s", must)
		}
	}
}
