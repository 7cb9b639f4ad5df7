package front

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

// Metrics, on Caddy's registry. Every label value comes from a closed list:
// results and rp reasons, dataset statuses, moments.
var (
	loginsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle_front", Name: "logins_total",
		Help: "FranceConnect logins through the front, by result (ok, fc_cancelled, state_invalid, id_token_invalid, …).",
	}, []string{"result"})
	datasetsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle_front", Name: "datasets_total",
		Help: "Datasets fetched at login, by status (ok, error, too_large: fetched but over max_handoff_bytes).",
	}, []string{"status"})
	handoffsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle_front", Name: "handoffs_total",
		Help: "Hand-offs of identity and data to the app, by moment: transmit (Cas 2, once) or login (Cas 1, each assertion signed).",
	}, []string{"moment"})
	logoutsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle_front", Name: "logouts_total",
		Help: "Logouts, by result (franceconnect, local_only, no_session, cross_site, state_invalid).",
	}, []string{"result"})
	accountHeadersTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle_front", Name: "account_headers_total",
		Help: "Account headers (X-Passerelle-Account) taken off the app's answers, by result (ok, invalid).",
	}, []string{"result"})
	sessionsCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "passerelle_front", Name: "sessions_created_total",
		Help: "Sessions created by this instance (logins and pre-login sessions holding an account).",
	})
)

// liveFronts are the fronts of the configurations loaded, for the sessions
// gauge (a front leaves at Cleanup).
var liveFronts sync.Map // *Front → struct{}

var descSessionsActive = prometheus.NewDesc("caddy_passerelle_front_sessions_active",
	"Sessions alive in the front's store (Redis: every instance's), by app_id; counted at most every 15 s.",
	[]string{"app_id"}, nil)

// sessionsCollector reads each front's session count at scrape time.
type sessionsCollector struct{}

// Describe implements prometheus.Collector.
func (sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descSessionsActive }

// Collect implements prometheus.Collector.
func (sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	liveFronts.Range(func(k, _ any) bool {
		f := k.(*Front)
		if seen[f.AppID] {
			return true
		}
		if n, ok := f.activeSessions(); ok {
			seen[f.AppID] = true
			ch <- prometheus.MustNewConstMetric(descSessionsActive, prometheus.GaugeValue, float64(n), f.AppID)
		}
		return true
	})
}

// sessionCount is the last count of a front's sessions.
type sessionCount struct {
	mu sync.Mutex
	n  int
	ok bool
	at time.Time
}

// activeSessions counts the front's live sessions, at most every 15 s.
func (f *Front) activeSessions() (int, bool) {
	f.active.mu.Lock()
	defer f.active.mu.Unlock()
	if now := f.now(); now.Sub(f.active.at) >= 15*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n, ok, err := f.sessions.Active(ctx)
		cancel()
		if !ok || err != nil {
			return f.active.n, f.active.ok
		}
		f.active.n, f.active.ok, f.active.at = n, true, now
	}
	return f.active.n, f.active.ok
}

// Cleanup implements caddy.CleanerUpper: the front leaves the gauge and
// lets its in-process session store go (kept while a newer configuration
// uses it).
func (f *Front) Cleanup() error {
	liveFronts.Delete(f)
	if f.memoryKey != "" {
		_, _ = memoryStores.Delete(f.memoryKey)
		f.memoryKey = ""
	}
	return nil
}

func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{loginsTotal, datasetsTotal, handoffsTotal, logoutsTotal, accountHeadersTotal, sessionsCreated, sessionsCollector{}} {
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

func (f *Front) metric(v *prometheus.CounterVec, label string) { v.WithLabelValues(label).Inc() }

// tracerName names the front's spans' instrumentation scope.
const tracerName = "github.com/passerelle-gw/passerelle/caddyplugin/front"

// span starts a passerelle.front.* span when the request is traced (Caddy's
// tracing handler), a no-op one otherwise. Attributes are closed-list
// values only: never an identity, a token or a URL with a code.
func span(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, "passerelle.front."+name)
}

// endSpan records a closed-list result.
func endSpan(sp trace.Span, result string) {
	sp.SetAttributes(attribute.String("passerelle.front.result", result))
	if result != "ok" {
		sp.SetStatus(codes.Error, "refused")
	}
	sp.End()
}

// auditLogin writes the audit record of a login: the citizen key, never
// the identity; each dataset's status.
func (f *Front) auditLogin(sub, result string, datasets map[string]handoff.Dataset) {
	f.auditEvent("front_login", sub, result, datasets)
}

// auditEvent writes one audit record on the passerelle.audit logger: event
// (front_login, front_handoff, front_logout), result, the app, the
// citizen's pseudonym (HMAC of FranceConnect's sub, as the data-provider
// records key it) and, for a login, each dataset's status and API code.
func (f *Front) auditEvent(event, sub, result string, datasets map[string]handoff.Dataset) {
	c := f.audit.Check(zapcore.InfoLevel, "front "+event)
	if c == nil {
		return
	}
	fields := []zap.Field{
		zap.String("time", f.now().UTC().Format(pipeline.AuditTimeLayout)),
		zap.String("event", event), zap.String("result", result), zap.String("app_id", f.AppID),
		zap.String("instance", hostname),
	}
	if p := f.pipe.Pseudonymizer; p != nil && sub != "" {
		fields = append(fields, zap.String("citizen_key", p.CitizenKey(sub)), zap.String("citizen_key_basis", "sub"),
			zap.String("pseudonym_key_version", p.Version()))
	}
	if len(datasets) > 0 {
		fields = append(fields, zap.Object("datasets", datasetStatuses(datasets)))
	}
	c.Write(fields...)
}

// datasetStatuses writes {name: "ok" | "error <code>"}.
type datasetStatuses map[string]handoff.Dataset

// MarshalLogObject implements zapcore.ObjectMarshaler.
func (d datasetStatuses) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for name, ds := range d {
		v := ds.Status
		if ds.Error != nil {
			v += " " + ds.Error.Code
		}
		enc.AddString(name, v)
	}
	return nil
}

// hostname names the instance in audit records.
var hostname = func() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}()
