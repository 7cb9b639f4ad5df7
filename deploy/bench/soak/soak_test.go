package main

import (
	"math"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestSlope(t *testing.T) {
	for _, c := range []struct {
		name   string
		xs, ys []float64
		want   float64
		ok     bool
	}{
		{"line", []float64{0, 1, 2, 3}, []float64{5, 7, 9, 11}, 2, true},
		{"flat", []float64{0, 1, 2}, []float64{4, 4, 4}, 0, true},
		{"noisy", []float64{0, 1, 2, 3}, []float64{1, 3, 2, 4}, 0.8, true},
		{"decreasing", []float64{1, 2}, []float64{10, 4}, -6, true},
		{"one point", []float64{1}, []float64{1}, 0, false},
		{"same x", []float64{2, 2}, []float64{1, 3}, 0, false},
		{"lengths differ", []float64{0, 1}, []float64{1}, 0, false},
	} {
		got, ok := slope(c.xs, c.ys)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: slope = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestPlan(t *testing.T) {
	p := plan(weights)
	if len(p) != 100 {
		t.Fatalf("plan has %d entries, want 100", len(p))
	}
	var count [nKinds]int
	for _, k := range p {
		count[k]++
	}
	if count != weights {
		t.Errorf("plan counts %v, want %v", count, weights)
	}
	// Spread: in any 20 consecutive requests, the 60 % kind appears 10 to 14 times.
	for i := range p {
		n := 0
		for j := range 20 {
			if p[(i+j)%len(p)] == cached {
				n++
			}
		}
		if n < 10 || n > 14 {
			t.Fatalf("window at %d holds %d cached requests", i, n)
		}
	}
}

func TestClassify(t *testing.T) {
	tr := newTraffic("http://127.0.0.1:9080", "test", 1<<62)
	tg := tr.targeter()
	seen := map[kind]int{}
	for range 100 {
		tgt := new(vegeta.Target)
		if err := tg(tgt); err != nil {
			t.Fatal(err)
		}
		k, gen := classify(tgt.URL)
		if k >= nKinds {
			t.Fatalf("classify(%q) = unknown kind", tgt.URL)
		}
		if (k == cached) != (gen == 0) {
			t.Errorf("classify(%q) = %v, generation %d", tgt.URL, kindNames[k], gen)
		}
		seen[k]++
	}
	for k := range nKinds {
		if seen[k] != weights[k] {
			t.Errorf("%s: %d targets, want %d", kindNames[k], seen[k], weights[k])
		}
	}
	if k, _ := classify("http://x/#nonsense"); k != nKinds {
		t.Errorf("classify(nonsense) = %v", k)
	}
}

// TestNearReload: a transport error counts as a reload's from 1 s before
// it to reloadWindow after it, not outside.
func TestNearReload(t *testing.T) {
	r := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	reloads := []time.Time{r}
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{{-2 * time.Second, false}, {-500 * time.Millisecond, true}, {0, true}, {reloadWindow - time.Millisecond, true}, {reloadWindow + time.Second, false}} {
		if got := nearReload(reloads, r.Add(tc.at)); got != tc.want {
			t.Errorf("%s from the reload: %v, want %v", tc.at, got, tc.want)
		}
	}
	if nearReload(nil, r) {
		t.Error("no reload, yet a reload's error")
	}
}

// TestParseCPULine: steal is the eighth figure; guest times, already in
// user and nice, are not added twice; a malformed line is an error.
func TestParseCPULine(t *testing.T) {
	steal, total, err := parseCPULine("cpu  100 2 30 500 4 0 6 8 50 0")
	if err != nil || steal != 8 || total != 650 {
		t.Fatalf("steal %d total %d, %v", steal, total, err)
	}
	for _, bad := range []string{"", "cpu 1 2 3", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3 4 5 6 7 x"} {
		if _, _, err := parseCPULine(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if steal, total, err := cpuTimes(); err != nil || total == 0 || steal > total {
		t.Errorf("this machine: steal %d total %d, %v", steal, total, err)
	}
}
