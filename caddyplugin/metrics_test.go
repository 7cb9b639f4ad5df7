package caddyplugin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/passerelle-gw/passerelle/config/datapass"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// TestAlertRulesNameExposedMetrics: every metric and label the shipped
// alerting rules (deploy/prometheus/alerts.yaml) use is one the gateway
// exposes, so that no alert silently watches nothing.
func TestAlertRulesNameExposedMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.yaml")
	if err := os.WriteFile(path, []byte(`habilitations:
  - {id: a, label: A, siret: "13002526500013", modalities: [identite], scopes: [x]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := habilitation.NewWatcher(path, time.Second, habilitation.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := registerCollector(reg, habilitationState{w}); err != nil {
		t.Fatal(err)
	}
	dp := &dataPassState{store: datapass.NewMemory(), resync: &datapass.Resync{}}
	if err := registerCollector(reg, dataPassCollector{dp, time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := registerCollector(reg, metricDataPassWebhooks); err != nil {
		t.Fatal(err)
	}
	// Vectors expose a family once they have a child. The pipeline's are
	// touched by traffic (an answer, then a 429 of the client quota), with
	// values other tests accept; the app's are touched here, and their
	// children removed afterwards, since the vectors are process-wide.
	f := newFixture(t, func(a *App) { a.RateLimits.ClientIP = "1/m" })
	for _, want := range []int{200, 429} {
		if w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody); w.Code != want {
			t.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
		}
	}
	// The failures' vectors: FranceConnect down for a token not cached,
	// then a request shed near the memory limit.
	g := newFixture(t)
	g.fcDown.Store(true)
	if w := g.serve(t, context.Background(), acrTokenPrefix+"eidas1", "recipient="+testSIRET, unitBody); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("FranceConnect down: %d", w.Code)
	}
	g.h.pipe.MemoryPressure = func() bool { return true }
	if w := g.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("memory pressure: %d", w.Code)
	}
	// cache_errors_total and datapass_webhooks_total exist from the start
	// (TestAlertedCountersExposedFromStart).
	touched := []struct {
		vec    interface{ DeleteLabelValues(...string) bool }
		labels []string
	}{
		{metricHabilitationReloads.MetricVec, []string{"ok"}},
		{metricMode.MetricVec, []string{"sandbox"}},
	}
	metricHabilitationReloads.WithLabelValues(touched[0].labels...)
	metricMode.WithLabelValues(touched[1].labels...)
	t.Cleanup(func() {
		for _, c := range touched {
			c.vec.DeleteLabelValues(c.labels...)
		}
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string][]string{}
	for _, f := range families {
		var names []string
		for _, lp := range f.GetMetric()[0].GetLabel() {
			names = append(names, lp.GetName())
		}
		labels[f.GetName()] = names
	}

	data, err := os.ReadFile("../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
				Labels      map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	metricRe := regexp.MustCompile(`(caddy_passerelle_[a-z_]+)(\{[^}]*\})?`)
	labelRe := regexp.MustCompile(`([a-z_]+)\s*(=~|!=|!~|=)`)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %q: alert, expr and a severity are required", r.Alert)
			}
			uses := metricRe.FindAllStringSubmatch(r.Expr, -1)
			if r.Labels["source"] == "blackbox" {
				// Probed from outside: the blackbox exporter's metrics only.
				if len(uses) != 0 || !strings.Contains(r.Expr, "probe_ssl_earliest_cert_expiry") {
					t.Errorf("%s: a blackbox rule names probe_ssl_earliest_cert_expiry and no gateway metric", r.Alert)
				}
				continue
			}
			if len(uses) == 0 {
				t.Errorf("%s: names no passerelle metric", r.Alert)
			}
			for _, m := range uses {
				have, ok := labels[m[1]]
				if !ok {
					t.Errorf("%s: metric %s is not exposed", r.Alert, m[1])
					continue
				}
				for _, l := range labelRe.FindAllStringSubmatch(m[2], -1) {
					if !slices.Contains(have, l[1]) {
						t.Errorf("%s: %s has no label %s", r.Alert, m[1], l[1])
					}
				}
			}
		}
	}
	if n < 11 {
		t.Fatalf("%d rules", n)
	}
}

// failingWriter refuses every write, like a full disk or a closed socket.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }
func (failingWriter) Sync() error               { return nil }

// TestAuditWriteErrorsCounted: a record the audit log's writer refuses is
// counted (the PasserelleAuditWriteErrors alert watches the counter), and a
// record it accepts is not (SECURITY.md G01).
func TestAuditWriteErrorsCounted(t *testing.T) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var ok bytes.Buffer
	good := countWriteErrors(zap.New(zapcore.NewCore(enc, zapcore.AddSync(&ok), zap.InfoLevel)))
	bad := countWriteErrors(zap.New(zapcore.NewCore(enc, failingWriter{}, zap.InfoLevel)))

	before := counterValue(t, metricAuditWriteErrors)
	good.Info("decision")
	if got := counterValue(t, metricAuditWriteErrors) - before; got != 0 || ok.Len() == 0 {
		t.Fatalf("accepted record: %v errors counted, %d bytes written", got, ok.Len())
	}
	bad.Info("decision")
	bad.Named("front").Info("decision")
	if got := counterValue(t, metricAuditWriteErrors) - before; got != 2 {
		t.Fatalf("refused records: %v errors counted, want 2", got)
	}
}

// counterValue reads a counter's value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestAlertedCountersExposedFromStart: the counters the alerting rules
// watch with increase() or rate() exist, for each label value the rules
// look at, before anything happened (Prometheus sees no increase in a
// series born at 1: a first burst would fire nothing). The series of the
// providers and quotas exist once a pipeline is built.
func TestAlertedCountersExposedFromStart(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := registerCollector(reg, metricDataPassWebhooks); err != nil {
		t.Fatal(err)
	}
	newFixture(t) // builds a pipeline: the guarded providers' and the quotas' series
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				have[mf.GetName()+"{"+l.GetName()+"="+l.GetValue()+"}"] = true
			}
		}
	}
	for _, want := range []string{
		"caddy_passerelle_franceconnect_failures_total{reason=fc_unavailable}",
		"caddy_passerelle_franceconnect_failures_total{reason=fc_bad_response}",
		"caddy_passerelle_franceconnect_failures_total{reason=jwks_unavailable}",
		"caddy_passerelle_franceconnect_failures_total{reason=fc_client_auth_failed}",
		"caddy_passerelle_provider_shed_total{provider=franceconnect}",
		"caddy_passerelle_provider_shed_total{provider=CNAV}",
		"caddy_passerelle_requests_shed_total{cause=in_flight}",
		"caddy_passerelle_rate_limited_total{quota=citizen}",
		"caddy_passerelle_cache_errors_total{kind=error}",
		"caddy_passerelle_datapass_webhooks_total{result=unauthorized}",
		"caddy_passerelle_datapass_webhooks_total{result=error}",
	} {
		if !have[want] {
			t.Errorf("%s is not exposed before it happens", want)
		}
	}
}
