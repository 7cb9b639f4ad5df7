package caddyplugin

import (
	"errors"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/auditseal"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/clock"
	"github.com/passerelle-gw/passerelle/caddyplugin/logbuffer"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// Metrics, on Caddy's registry (its metrics endpoint): the app's here, the
// request path's in package pipeline (pipeline.Collectors). Collectors are
// package-level and registered again in every Provision, because Caddy
// builds a new registry on each config load (STYLE.md §9). Every label comes
// from a closed, bounded set: catalogue endpoint ids, API error codes, G04
// reasons, provider names of the catalogue, cache levels, status classes;
// never a client address, a subject, a token hash or a SIRET (SECURITY.md G08).
var (
	metricHabilitationReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "habilitation_reloads_total",
		Help: "Habilitation registry reload attempts, by result (ok, refused).",
	}, []string{"result"})
	metricCacheErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "cache_errors_total",
		Help: "Token cache Redis failures, each served as a miss (SECURITY.md B09), by kind (error, corrupt).",
	}, []string{"kind"})
	metricRateLimitRedisErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "rate_limit_redis_errors_total",
		Help: "Quota decisions taken in process because Redis failed (SECURITY.md F06).",
	})
	metricAuditWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "audit_write_errors_total",
		Help: "Audit records (or batches of them) that the audit log's writer refused (SECURITY.md G01): a decision without its record.",
	})
	metricMemoryPressure = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "memory_pressure",
		Help: "1 while the process is above 90 % of its memory limit (until it is under 80 %): data routes answer 503 (SECURITY.md F09, I16).",
	}, func() float64 {
		if memoryGuard().Pressure() {
			return 1
		}
		return 0
	})
	metricMode = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "mode",
		Help: "1 for the mode the gateway runs in (production or sandbox; SECURITY.md H03).",
	}, []string{"mode"})
)

// Both kinds of cache_errors_total exist at 0 from the start: rate() sees
// nothing in a series born at 1 (PasserelleRedisErrors).
func init() {
	metricCacheErrors.WithLabelValues("error")
	metricCacheErrors.WithLabelValues("corrupt")
}

// registerMetrics registers the app's and the pipeline's collectors on a
// config's registry.
func registerMetrics(reg prometheus.Registerer) error {
	for _, c := range append(pipeline.Collectors(), metricHabilitationReloads, metricCacheErrors, metricRateLimitRedisErrors, metricAuditWriteErrors, logbuffer.LostLines, logbuffer.WriteFailures, logbuffer.RefusingGauge, metricMemoryPressure, metricMode, clockState{clock.Read}, auditseal.Collector{}) {
		if err := registerCollector(reg, c); err != nil {
			return err
		}
	}
	return nil
}

// registerCollector registers c on a config's registry, once.
func registerCollector(reg prometheus.Registerer, c prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	var are prometheus.AlreadyRegisteredError
	if err := reg.Register(c); err != nil && !errors.As(err, &are) {
		return err
	}
	return nil
}

// habilitationStates are the values of the state label of
// caddy_passerelle_habilitations_state.
var habilitationStates = []string{habilitation.StateOK, habilitation.StateRefused, habilitation.StateMissing, habilitation.StateUnreadable}

var (
	descHabilitationsState = prometheus.NewDesc("caddy_passerelle_habilitations_state",
		"1 for the reload state of the habilitations registry: ok, refused (the file on disk was refused, the previous "+
			"registry serves with the revocations and removals it carries), missing (file deleted: nothing is served) or unreadable.",
		[]string{"state"}, nil)
	descHabilitationsStateSince = prometheus.NewDesc("caddy_passerelle_habilitations_state_since_seconds",
		"Unix time at which the habilitations registry entered its current reload state.", nil, nil)
)

// habilitationState exports the registry's reload state, read at scrape
// time from the watcher of the configuration in force.
type habilitationState struct{ watcher *habilitation.Watcher }

// Describe implements prometheus.Collector.
func (c habilitationState) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHabilitationsState
	ch <- descHabilitationsStateSince
}

// Collect implements prometheus.Collector.
func (c habilitationState) Collect(ch chan<- prometheus.Metric) {
	st := c.watcher.Status()
	for _, s := range habilitationStates {
		v := 0.0
		if s == st.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descHabilitationsState, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(descHabilitationsStateSince, prometheus.GaugeValue, float64(st.Since.Unix()))
}

// countWriteErrors returns l with its write errors counted in
// metricAuditWriteErrors. zap reports a core's write error to the logger's
// error output (stderr by default) and drops it; this error output forwards
// to stderr as before and counts each report.
func countWriteErrors(l *zap.Logger) *zap.Logger {
	return l.WithOptions(zap.ErrorOutput(zapcore.Lock(countingSyncer{os.Stderr})))
}

// countingSyncer counts the reports written to it and forwards them.
type countingSyncer struct{ zapcore.WriteSyncer }

func (c countingSyncer) Write(p []byte) (int, error) {
	metricAuditWriteErrors.Inc()
	return c.WriteSyncer.Write(p)
}
