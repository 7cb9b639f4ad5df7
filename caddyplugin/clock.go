package caddyplugin

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/clock"
)

var (
	descClockSynchronised = prometheus.NewDesc("caddy_passerelle_clock_synchronised",
		"1 while the kernel reports the system clock synchronised by an NTP daemon; 0 when it does not, or when the state cannot be read "+
			"(a seccomp filter denying adjtimex, gVisor, not Linux) (SECURITY.md G11: token times are checked against this clock).",
		nil, nil)
	descClockMaxError = prometheus.NewDesc("caddy_passerelle_clock_max_error_seconds",
		"The kernel's bound on the system clock's error (adjtimex maxerror; 16 s once no daemon updates it).",
		nil, nil)
)

// clockState exports the clock's synchronisation, read from the kernel at
// each scrape (read: clock.Read). A state that cannot be read counts as
// not synchronised: the alert then says so, instead of watching nothing.
type clockState struct {
	read func() (clock.State, error)
}

// Describe implements prometheus.Collector.
func (clockState) Describe(ch chan<- *prometheus.Desc) {
	ch <- descClockSynchronised
	ch <- descClockMaxError
}

// Collect implements prometheus.Collector.
func (c clockState) Collect(ch chan<- prometheus.Metric) {
	s, err := c.read()
	synced := 0.0
	if err == nil && s.Synchronised {
		synced = 1
	}
	ch <- prometheus.MustNewConstMetric(descClockSynchronised, prometheus.GaugeValue, synced)
	if err == nil {
		ch <- prometheus.MustNewConstMetric(descClockMaxError, prometheus.GaugeValue, s.MaxError.Seconds())
	}
}

// clockWarning is given once per process, not at every reload.
var clockWarning sync.Once

// warnUnsynchronisedClock logs, once, a WARN line when the kernel reports
// the clock unsynchronised, or when its state cannot be read (SECURITY.md
// G11); the alert PasserelleClockNotSynchronised watches it afterwards.
func warnUnsynchronisedClock(log *zap.Logger) {
	clockWarning.Do(func() {
		switch s, err := clock.Read(); {
		case err != nil:
			log.Warn("cannot read whether the system clock is synchronised: caddy_passerelle_clock_synchronised reads 0 (systemd: ProtectClock=no and SystemCallFilter=adjtimex, as deploy/systemd/passerelle.service; SECURITY.md G11)",
				zap.Error(err))
		case !s.Synchronised:
			log.Warn("the system clock is not synchronised (no NTP daemon reports to the kernel): token lifetimes (60 s) are checked against it; run chrony or systemd-timesyncd (SECURITY.md G11)",
				zap.Duration("max_error", s.MaxError))
		}
	})
}
