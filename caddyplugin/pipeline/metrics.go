package pipeline

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// The request path's metrics. Collectors are package-level: the owner of
// the metrics registry registers them (Collectors) on each registry it
// builds (Caddy builds one on each config load; STYLE.md §9). Every label
// comes from a closed, bounded set: catalogue endpoint ids, API error codes,
// provider names of the catalogue, cache levels, status classes, quota
// names; never a client address, a subject, a token hash or a SIRET
// (SECURITY.md G08).
var (
	metricRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "requests_total",
		Help: "Requests answered by the passerelle handler, by endpoint, decision and API error code.",
	}, []string{"endpoint", "decision", "code"})
	metricTokenChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "token_checks_total",
		Help: "FranceConnect token lookups, by source (l1, l2, checktoken) and result (active, inactive, error, abandoned: the caller hung up first).",
	}, []string{"source", "result"})
	metricFCFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "franceconnect_failures_total",
		Help: "FranceConnect checktoken calls that failed, once a call whichever requests shared it (callers that hung up included), by reason (fc_unavailable, fc_bad_response, jwks_unavailable, fc_client_auth_failed, internal_error).",
	}, []string{"reason"})
	metricProviderDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "provider_duration_seconds",
		Help:    "Duration of provider calls, by provider and status class.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
	}, []string{"provider", "status_class"})
	metricShed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "provider_shed_total",
		Help: "Provider calls refused at once, by provider and cause (in_flight: at the cap; circuit_open).",
	}, []string{"provider", "cause"})
	metricRequestsShed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "requests_shed_total",
		Help: "Requests refused at once (503) before any work, by cause (in_flight: the instance's max_in_flight; memory: near the memory limit).",
	}, []string{"cause"})
	metricRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "provider_retries_total",
		Help: "Provider calls never sent (connection failed), by provider and outcome (retried; budget_exhausted or deadline: not retried).",
	}, []string{"provider", "outcome"})
	metricRateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "rate_limited_total",
		Help: "Requests refused by a quota, by quota (habilitation, client_ip, failed_auth, citizen).",
	}, []string{"quota"})
	metricCertificateRefusals = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle", Name: "client_certificate_refusals_total",
		Help: "Calls of a habilitation bound to client certificates that presented none of them (SECURITY.md C09): a token tried by another party.",
	})
)

// Collectors returns the pipeline's collectors, for registration on a
// metrics registry: caddy_passerelle_requests_total, _token_checks_total,
// _franceconnect_failures_total,
// _provider_duration_seconds, _rate_limited_total, _provider_shed_total and
// _provider_retries_total. They are shared by every pipeline of the process.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{metricRequests, metricTokenChecks, metricFCFailures, metricProviderDuration, metricRateLimited, metricShed, metricRequestsShed, metricRetries, metricCertificateRefusals}
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
	shedCounters = labelMemo[labels2, prometheus.Counter]{child: func(k labels2) prometheus.Counter {
		return metricShed.WithLabelValues(k.a, k.b)
	}}
	shedRequests = labelMemo[string, prometheus.Counter]{child: func(cause string) prometheus.Counter {
		return metricRequestsShed.WithLabelValues(cause)
	}}
	retryCounters = labelMemo[labels2, prometheus.Counter]{child: func(k labels2) prometheus.Counter {
		return metricRetries.WithLabelValues(k.a, k.b)
	}}
	providerDurations = labelMemo[labels2, prometheus.Observer]{child: func(k labels2) prometheus.Observer {
		return metricProviderDuration.WithLabelValues(k.a, k.b)
	}}
)

// The causes of requests_shed_total.
const (
	shedCauseInFlight = "in_flight" // Config.InFlight is full
	shedCauseMemory   = "memory"    // Config.MemoryPressure
)

// Both causes of requests_shed_total, and every reason of
// franceconnect_failures_total, are exposed at 0 from the start:
// Prometheus's increase() and rate() see nothing in a series born at 1,
// so the first burst would not fire PasserelleRequestsShed or
// PasserelleFranceConnectErrors.
func init() {
	shedRequests.get(shedCauseInFlight)
	shedRequests.get(shedCauseMemory)
	// The reasons noteFranceConnectFailure counts (PasserelleFranceConnectErrors).
	for _, reason := range []string{fcverify.ReasonUnavailable, fcverify.ReasonBadResponse, fcverify.ReasonJWKSUnavailable,
		fcverify.ReasonClientAuth, fcverify.ReasonInternal} {
		metricFCFailures.WithLabelValues(reason)
	}
}
