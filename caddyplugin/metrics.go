package caddyplugin

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// Metrics, on Caddy's registry (its metrics endpoint). Collectors are
// package-level and registered again in every Provision, because Caddy
// builds a new registry on each config load (STYLE.md §9). Every label comes
// from a closed, bounded set: catalogue endpoint ids, API error codes, G04
// reasons, provider names of the catalogue, cache levels, status classes;
// never a client address, a subject, a token hash or a SIRET (SECURITY.md G08).
var (
	metricRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "requests_total",
		Help: "Requests answered by the passerelle handler, by endpoint, decision and API error code.",
	}, []string{"endpoint", "decision", "code"})
	metricTokenChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "token_checks_total",
		Help: "FranceConnect token lookups, by source (l1, l2, checktoken) and result (active, inactive, error).",
	}, []string{"source", "result"})
	metricProviderDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "provider_duration_seconds",
		Help:    "Duration of provider calls, by provider and status class.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
	}, []string{"provider", "status_class"})
	metricHabilitationReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "habilitation_reloads_total",
		Help: "Habilitation registry reload attempts, by result (ok, refused).",
	}, []string{"result"})
	metricCacheErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "cache_errors_total",
		Help: "Token cache Redis failures, each served as a miss (SECURITY.md B09), by kind (error, corrupt).",
	}, []string{"kind"})
	metricRateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "rate_limited_total",
		Help: "Requests refused by a quota, by quota (habilitation, client_ip).",
	}, []string{"quota"})
	metricRateLimitRedisErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "rate_limit_redis_errors_total",
		Help: "Quota decisions taken in process because Redis failed (SECURITY.md F06).",
	})
	metricMode = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "mode",
		Help: "1 for the mode the gateway runs in (production or sandbox; SECURITY.md H03).",
	}, []string{"mode"})
)

// registerMetrics registers the collectors on a config's registry.
func registerMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{metricRequests, metricTokenChecks, metricProviderDuration, metricHabilitationReloads, metricCacheErrors, metricRateLimited, metricRateLimitRedisErrors, metricMode} {
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

// statusClass returns "2xx", "4xx"… or "error" when no status was received.
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "error"
	}
	return statusClasses[status/100-1]
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// labelMemo keeps the children of a metric vector that the request path
// uses, by label values: a lookup is a lock-free map read, where the
// vector's own lookup hashes the values and takes a lock shared by every
// request. The label sets are closed (G08), so the memo stays small.
type labelMemo[K comparable, M any] struct {
	children sync.Map // K → M
	child    func(K) M
}

func (m *labelMemo[K, M]) get(k K) M {
	if c, ok := m.children.Load(k); ok {
		return c.(M)
	}
	c, _ := m.children.LoadOrStore(k, m.child(k))
	return c.(M)
}

type labels2 struct{ a, b string }

type labels3 struct{ a, b, c string }

var (
	requestCounters = labelMemo[labels3, prometheus.Counter]{child: func(k labels3) prometheus.Counter {
		return metricRequests.WithLabelValues(k.a, k.b, k.c)
	}}
	tokenCheckCounters = labelMemo[labels2, prometheus.Counter]{child: func(k labels2) prometheus.Counter {
		return metricTokenChecks.WithLabelValues(k.a, k.b)
	}}
	providerDurations = labelMemo[labels2, prometheus.Observer]{child: func(k labels2) prometheus.Observer {
		return metricProviderDuration.WithLabelValues(k.a, k.b)
	}}
)
