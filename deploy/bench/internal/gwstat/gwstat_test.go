package gwstat

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMatchSeries(t *testing.T) {
	labels := map[string]string{"result": "active", "source": "checktoken"}
	const name = "caddy_passerelle_token_checks_total"
	for _, c := range []struct {
		line string
		want float64
		ok   bool
	}{
		{`caddy_passerelle_token_checks_total{result="active",source="checktoken"} 42`, 42, true},
		{`caddy_passerelle_token_checks_total{result="active",source="l1"} 42`, 0, false},
		{`caddy_passerelle_token_checks_total{result="inactive",source="checktoken"} 1`, 0, false},
		{`caddy_passerelle_token_checks_total_x{result="active",source="checktoken"} 1`, 0, false},
		{`# HELP caddy_passerelle_token_checks_total FranceConnect token lookups`, 0, false},
	} {
		got, ok := MatchSeries(c.line, name, labels)
		if ok != c.ok || got != c.want {
			t.Errorf("MatchSeries(%q) = %v, %v; want %v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestMatchSeriesSubset(t *testing.T) {
	labels := map[string]string{"endpoint": "dss_quotient_familial_fc"}
	const name = "caddy_passerelle_requests_total"
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{`caddy_passerelle_requests_total{code="",decision="allow",endpoint="dss_quotient_familial_fc"} 7`, true},
		{`caddy_passerelle_requests_total{code="37999",decision="error",endpoint="dss_quotient_familial_fc"} 7`, true},
		{`caddy_passerelle_requests_total{code="",decision="allow",endpoint="cnous_etudiant_boursier_v4_ine"} 7`, false},
		{`caddy_passerelle_requests_total{decision="allow"} 7`, false},
	} {
		if got, ok := matchSeries(c.line, name, labels, false); ok != c.ok || ok && got != 7 {
			t.Errorf("matchSeries(%q, subset) = %v, %v; want ok %v", c.line, got, ok, c.ok)
		}
	}
}

func TestCountLines(t *testing.T) {
	dir := t.TempDir()
	if n, err := CountLines(filepath.Join(dir, "missing.log")); n != 0 || err != nil {
		t.Errorf("missing file: %d, %v; want 0, nil", n, err)
	}
	path := filepath.Join(dir, "checktoken.log")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := CountLines(path); n != 3 || err != nil {
		t.Errorf("3 lines: %d, %v", n, err)
	}
}

func TestStatus(t *testing.T) {
	g := New(os.Getpid(), "", "")
	if kib, err := g.Status("VmRSS"); err != nil || kib < 1024 {
		t.Errorf("own VmRSS: %d KiB, %v", kib, err)
	}
	if _, err := g.Status("NoSuchField"); err == nil {
		t.Error("a missing field read as a value")
	}
}
