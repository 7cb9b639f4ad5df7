package loadreport

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSettleAndMarkdown(t *testing.T) {
	rep := &Report{Date: "2026-12-07T00:00:00Z", Method: Method{Binary: "abc", TLS: "TLS 1.3, TLS_AES_128_GCM_SHA256", Rate: 200}}
	rep.Settle()
	if rep.Pass {
		t.Fatal("a report without scenarios passed")
	}
	rep.Scenarios = []Scenario{{Name: "Nominal", Runs: []Run{{Label: "1 passerelle", Requests: 3, Expected: 3,
		Status: map[string]int{"200": 3, "0": 1}, Latency: LatencySummary{P99: 1.5},
		TransportErrors: map[string]int{"read: connection reset by peer": 1}}},
		Verdicts: []Verdict{{Name: "every answer 200", Value: "3 of 3", Pass: true}}}}
	rep.Soak = &Soak{Minutes: 1, Verdicts: []string{"a: PASS", "b: PASS", "one checktoken per token: PASS"}, Pass: true}
	rep.Settle()
	if !rep.Pass {
		t.Fatal("a passing report failed")
	}
	var md strings.Builder
	rep.Markdown(&md)
	for _, want := range []string{"# Passerelle load report (SECURITY.md J06), 2026-12-07T00:00:00Z: PASS (short run, not the release method)\n",
		"TLS 1.3, TLS_AES_128_GCM_SHA256", "| 1 passerelle | 3 | 3 | 0 ×1, 200 ×3 | 0.00 | 1.50 |",
		"- 1 passerelle, transport error ×1: `read: connection reset by peer`\n",
		"- every answer 200: 3 of 3: **PASS**", "## Soak, 1 min", "- one checktoken per token: PASS"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	rep.Method.ReleaseMethod = true
	md.Reset()
	rep.Markdown(&md)
	if !strings.HasPrefix(md.String(), "# Passerelle load report (SECURITY.md J06), 2026-12-07T00:00:00Z: PASS\n") {
		t.Errorf("a release-method report's title: %q", strings.SplitN(md.String(), "\n", 2)[0])
	}

	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Read(data)
	if err != nil || !back.Pass || back.Scenarios[0].Runs[0].Latency.P99 != 1.5 || back.Soak.Minutes != 1 {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	// The overall verdict follows from the verdicts, not from the file's.
	lying := strings.Replace(string(data), `"pass":true}]}],"soak"`, `"pass":false}]}],"soak"`, 1)
	if lying == string(data) {
		t.Fatal("the test's edit did not apply")
	}
	if back, err := Read([]byte(lying)); err != nil || back.Pass {
		t.Errorf("a failed verdict under a PASS overall verdict read as PASS: %v", err)
	}

	rep.Soak.Pass = false
	rep.Settle()
	if rep.Pass {
		t.Error("a failed soak passed")
	}
	rep.Soak.Pass = true
	rep.Scenarios[0].Verdicts = append(rep.Scenarios[0].Verdicts, Verdict{Name: "p99", Pass: false})
	rep.Settle()
	if rep.Pass {
		t.Error("a failed bar passed")
	}
}

func TestReadRefuses(t *testing.T) {
	for _, bad := range []string{`not json`, `{"method":{},"scenarios":[{}]}`, `{"method":{"binary_sha256":"x"}}`} {
		if _, err := Read([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
