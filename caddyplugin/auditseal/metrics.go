package auditseal

import (
	"github.com/prometheus/client_golang/prometheus"
)

// sealedDesc describes caddy_passerelle_audit_sealed_total: the last
// sequence number given under each key id by this process (its stream's
// boot), for the trail's verifier to compare with each stream's last
// record (a trail cut at its end) and to tell its streams from records
// copied in.
var sealedDesc = prometheus.NewDesc("caddy_passerelle_audit_sealed_total",
	"Records the process has sealed (passerelle_sealed), by key id and boot (seal_boot): the last seal_seq given.",
	[]string{"key_id", "boot"}, nil)

// Collector exports caddy_passerelle_audit_sealed_total; the passerelle
// app registers it on Caddy's metrics registry.
type Collector struct{}

// Describe implements prometheus.Collector.
func (Collector) Describe(ch chan<- *prometheus.Desc) { ch <- sealedDesc }

// Collect implements prometheus.Collector.
func (Collector) Collect(ch chan<- prometheus.Metric) {
	streams.Range(func(k, v any) bool {
		s := v.(*sealStream)
		if boot := s.begun(); boot != "" { // a stream that sealed nothing yet has no boot
			ch <- prometheus.MustNewConstMetric(sealedDesc, prometheus.CounterValue, float64(s.seq.Load()), k.(string), boot)
		}
		return true
	})
}
