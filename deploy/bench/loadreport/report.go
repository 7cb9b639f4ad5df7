package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/passerelle-gw/passerelle/config/loadreport"
)

// summarize sorts latencies and sums them up.
func summarize(latencies []time.Duration) loadreport.LatencySummary {
	slices.Sort(latencies)
	return loadreport.LatencySummary{P50: ms(percentile(latencies, 0.50)), P99: ms(percentile(latencies, 0.99)),
		Max: ms(percentile(latencies, 1))}
}

// percentile is the nearest-rank percentile q (0 < q ≤ 1) of sorted
// latencies; 0 when there are none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted)) + 0.999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// allExpected is a verdict that every answer of runs had the status its
// request called for, and that there was at least one.
func allExpected(name string, runs ...loadreport.Run) loadreport.Verdict {
	n, ok := 0, 0
	for _, r := range runs {
		n += r.Requests
		ok += r.Expected
	}
	return loadreport.Verdict{Name: name, Value: fmt.Sprintf("%d of %d", ok, n), Pass: n > 0 && ok == n}
}

// parseSoak reads the verdict lines of soak.sh's output: PASS when it has
// at least want of them and none failed.
func parseSoak(out string, minutes, want int) *loadreport.Soak {
	s := &loadreport.Soak{Minutes: minutes}
	passed, failed := 0, 0
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case strings.Contains(line, ": PASS"):
			passed++
		case strings.Contains(line, ": FAIL"):
			failed++
		default:
			continue
		}
		s.Verdicts = append(s.Verdicts, line)
	}
	s.Pass = passed >= want && failed == 0
	return s
}
