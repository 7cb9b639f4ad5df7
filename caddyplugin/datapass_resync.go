package caddyplugin

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/outbound"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/datapass"
)

// Bounds of the resync interval.
const (
	minResyncEvery = time.Minute
	maxResyncEvery = 24 * time.Hour
)

// loadResync prepares the resync from DataPass's API, when configured.
func (a *App) loadResync(st *dataPassState) error {
	c := a.DataPass.API
	if c == nil {
		return nil
	}
	st.every = time.Duration(c.Every)
	if st.every == 0 {
		st.every = datapass.DefaultResyncEvery
	}
	if st.every < minResyncEvery || st.every > maxResyncEvery {
		return errors.New("passerelle: datapass api every: want 1m to 24h")
	}
	secret, err := a.resolveSecret("datapass api client_secret", c.ClientSecret)
	if err != nil {
		return err
	}
	if c.ClientID == "" || secret == "" {
		return errors.New("passerelle: datapass api: client_id and client_secret are required")
	}
	api, err := datapass.NewAPI(datapass.APIConfig{BaseURL: c.URL, TokenURL: c.TokenURL, ClientID: c.ClientID, ClientSecret: secret,
		HTTPClient: dataPassClient()})
	if err != nil {
		return err
	}
	st.resync = &datapass.Resync{
		API: api, Store: st.store, Bindings: a.watcher.Current, SIRETs: slices.Clone(a.DataPass.SIRETs),
		KnownScope: a.cat.KnowsScope, WebhookID: c.WebhookID,
		Log: func(msg string, err error) {
			if err != nil {
				a.logger.Error(msg, zap.Error(err))
				return
			}
			a.logger.Info(msg)
		},
	}
	if t, ok := lastResyncs.Load(c.URL); ok {
		st.resync.SetLastSuccess(t.(time.Time))
	}
	st.resync.Done = func(rep datapass.Report) {
		lastResyncs.Store(c.URL, st.resync.LastSuccess())
		metricDataPassFailedDeliveries.Set(float64(rep.FailedDeliveries))
		a.auditResync(rep)
	}
	return nil
}

var metricDataPassFailedDeliveries = prometheus.NewGauge(prometheus.GaugeOpts{
	Namespace: "caddy", Subsystem: "passerelle", Name: "datapass_failed_deliveries",
	Help: "Failed webhook deliveries DataPass reported at the last resync (-1: not readable); the resync repaired their effect.",
})

// auditResync writes the audit record of a successful resync: what it read
// and changed, counts only.
func (a *App) auditResync(rep datapass.Report) {
	c := a.audit.Check(zapcore.InfoLevel, "datapass resync")
	if c == nil {
		return
	}
	c.Write(zap.String("time", time.Now().UTC().Format(pipeline.AuditTimeLayout)),
		zap.String("event", "datapass_resync"), zap.String("result", "ok"),
		zap.Int("organisations", rep.SIRETs), zap.Int("requests", rep.Requests), zap.Int("changed", rep.Applied),
		zap.Int("narrowed", rep.Narrowed), zap.Int("widened", rep.Widened), zap.Int("failed_deliveries", rep.FailedDeliveries))
}

// dataPassClient calls DataPass's API with the outbound policy (SECURITY.md
// E03, E08), except for the response headers, awaited for the whole call's
// bound: DataPass builds a whole page (up to 8 MiB) before its headers.
func dataPassClient() *http.Client {
	t := outbound.Transport()
	t.ResponseHeaderTimeout = datapass.DefaultAPITimeout
	return &http.Client{Transport: t} // NewAPI sets the timeout and refuses redirects
}
