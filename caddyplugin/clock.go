package caddyplugin

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/clock"
)

var (
	descClockSynchronised = prometheus.NewDesc("caddy_passerelle_clock_synchronised",
		"1 while the kernel reports the system clock synchronised by an NTP daemon, 0 otherwise (SECURITY.md G11: token times are checked against it).",
		nil, nil)
	descClockMaxError = prometheus.NewDesc("caddy_passerelle_clock_max_error_seconds",
		"The kernel's bound on the system clock's error (adjtimex maxerror; 16 s once no daemon updates it).",
		nil, nil)
)

// clockState exports the clock's synchronisation, read from the kernel at
// each scrape; nothing where the system does not tell it.
type clockState struct{}

// Describe implements prometheus.Collector.
func (clockState) Describe(ch chan<- *prometheus.Desc) {
	ch <- descClockSynchronised
	ch <- descClockMaxError
}

// Collect implements prometheus.Collector.
func (clockState) Collect(ch chan<- prometheus.Metric) {
	s, err := clock.Read()
	if err != nil {
		return
	}
	synced := 0.0
	if s.Synchronised {
		synced = 1
	}
	ch <- prometheus.MustNewConstMetric(descClockSynchronised, prometheus.GaugeValue, synced)
	ch <- prometheus.MustNewConstMetric(descClockMaxError, prometheus.GaugeValue, s.MaxError.Seconds())
}

// clockWarning is given once per process, not at every reload.
var clockWarning sync.Once

// warnUnsynchronisedClock logs, once, a WARN line when the kernel reports
// the clock unsynchronised (SECURITY.md G11); the alert
// PasserelleClockNotSynchronised watches it afterwards.
func warnUnsynchronisedClock(log *zap.Logger) {
	clockWarning.Do(func() {
		if s, err := clock.Read(); err == nil && !s.Synchronised {
			log.Warn("the system clock is not synchronised (no NTP daemon reports to the kernel): token lifetimes (60 s) are checked against it; run chrony or systemd-timesyncd (SECURITY.md G11)",
				zap.Duration("max_error", s.MaxError))
		}
	})
}
