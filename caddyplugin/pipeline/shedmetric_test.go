package pipeline

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRequestsShedExposedFromStart: requests_shed_total has its series,
// in_flight and memory, at 0 before any request is shed. Prometheus's
// increase() sees no increase in a series whose first sample is already
// 1: a single burst of refusals (a Redis stall of a few seconds) would
// never fire PasserelleRequestsShed.
func TestRequestsShedExposedFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricRequestsShed)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	causes := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "cause" {
					causes[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, cause := range []string{shedCauseInFlight, shedCauseMemory} {
		if v, ok := causes[cause]; !ok || v != 0 {
			t.Errorf("requests_shed_total{cause=%q}: exposed %v, value %v; want exposed at 0 before any shed", cause, ok, v)
		}
	}
}
