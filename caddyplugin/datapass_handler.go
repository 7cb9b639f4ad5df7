package caddyplugin

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/time/rate"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/framing"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/datapass"
)

func init() {
	caddy.RegisterModule(DataPassHandler{})
	httpcaddyfile.RegisterHandlerDirective("passerelle_datapass", parseDataPassHandler)
	httpcaddyfile.RegisterDirectiveOrder("passerelle_datapass", httpcaddyfile.Before, "respond")
}

var metricDataPassWebhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "passerelle", Name: "datapass_webhooks_total",
	Help: "DataPass webhook deliveries, by result (applied, pending, unchanged, stale, duplicate, ignored, test, unauthorized, wrong_environment, malformed, future, too_large, error).",
}, []string{"result"})

// The results PasserelleDataPassWebhooksRefused watches exist at 0 from the
// start: increase() sees nothing in a series born at 1.
func init() {
	for _, r := range []string{datapass.ResultUnauthorized, datapass.ResultWrongEnvironment, datapass.ResultMalformed,
		datapass.ResultFuture, "too_large", datapass.ResultError} {
		metricDataPassWebhooks.WithLabelValues(r)
	}
}

// DataPassHandler receives DataPass's webhooks (POST, the body raw, at most
// 1 MiB) for the passerelle app's datapass block. The signature is checked
// before anything else; a delivery DataPass must not send again is
// answered 204 without a body (never a token_id member, which DataPass
// would store as the request's external id). Each delivery leaves one
// audit record (event datapass_webhook) with derived fields and the body's
// SHA-256, never the body.
//
// Caddyfile (the route is the one registered at DataPass):
//
//	handle /datapass/webhook {
//	    passerelle_datapass
//	}
type DataPassHandler struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (DataPassHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle_datapass", New: func() caddy.Module { return new(DataPassHandler) }}
}

// Provision binds the handler to the passerelle app's DataPass state.
func (h *DataPassHandler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("passerelle")
	if err != nil {
		return errors.New("passerelle_datapass: the passerelle global option is required")
	}
	h.app = app.(*App)
	if h.app.datapass == nil {
		return errors.New("passerelle_datapass: the passerelle global option has no datapass block")
	}
	return registerCollector(ctx.GetMetricsRegistry(), metricDataPassWebhooks)
}

// ServeHTTP handles one delivery.
func (h *DataPassHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	framing.CloseIfChunked(w, r)
	w.Header().Del("Server")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return writeWebhookAnswer(w, http.StatusMethodNotAllowed, "method_not_allowed")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, datapass.MaxBodySize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			metricDataPassWebhooks.WithLabelValues("too_large").Inc()
			return writeWebhookAnswer(w, http.StatusRequestEntityTooLarge, "too_large")
		}
		return writeWebhookAnswer(w, http.StatusBadRequest, "unreadable")
	}
	out := h.app.datapass.processor.Deliver(r.Context(), r.Header.Get(datapass.SignatureHeader), r.Header.Get("X-App-Environment"), body)
	metricDataPassWebhooks.WithLabelValues(out.Result).Inc()
	// Unsigned deliveries cost the sender nothing: their audit records are
	// sampled (the metric counts them all) so that a flood does not flood
	// the audit trail.
	if out.Result != datapass.ResultUnauthorized || unauthorizedAudits.Allow() {
		h.app.auditDataPass(out)
	}
	if out.Err != nil {
		h.app.logger.Error("datapass: a webhook could not be applied; DataPass will deliver it again",
			zap.String("request_id", out.RequestID), zap.Error(out.Err))
	}
	if out.Status == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writeWebhookAnswer(w, out.Status, out.Result)
}

// unauthorizedAudits bounds the audit records of unsigned deliveries:
// one a second on average, bursts of 20, for the process.
var unauthorizedAudits = rate.NewLimiter(1, 20)

// writeWebhookAnswer writes an error answer naming the result only: nothing
// of the request is echoed.
func writeWebhookAnswer(w http.ResponseWriter, status int, result string) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, err := io.WriteString(w, `{"error":`+strconv.Quote(result)+"}\n")
	return err
}

// auditDataPass writes the audit record of a delivery: the event, the
// request, the organisation, the authorizations' ids, the habilitation
// bound, the result, the body's SHA-256 and the state in force after it.
func (a *App) auditDataPass(out datapass.Outcome) {
	c := a.audit.Check(zapcore.InfoLevel, "datapass webhook")
	if c == nil {
		return
	}
	fields := []zap.Field{
		zap.String("time", time.Now().UTC().Format(pipeline.AuditTimeLayout)),
		zap.String("event", "datapass_webhook"), zap.String("result", out.Result), zap.Int("status", out.Status),
	}
	if out.BodySHA256 != "" {
		fields = append(fields, zap.String("body_sha256", out.BodySHA256))
	}
	if out.Event != "" {
		fields = append(fields, zap.String("datapass_event", out.Event), zap.String("datapass_request_id", out.RequestID),
			zap.String("siret", out.SIRET), zap.Strings("authorization_ids", out.AuthorizationIDs))
	}
	if out.Habilitation != "" {
		fields = append(fields, zap.String("habilitation_id", out.Habilitation))
	}
	if r := out.Record; r != nil {
		fields = append(fields, zap.Bool("active", r.Active), zap.Strings("scopes", r.Scopes),
			zap.Time("fired_at", time.Unix(0, r.FiredAt).UTC()))
	}
	c.Write(fields...)
}

// parseDataPassHandler parses `passerelle_datapass` (no argument, no
// block): the secrets and rules are in the passerelle global option's
// datapass block.
func parseDataPassHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return new(DataPassHandler), parseNoArgs(h.Dispenser, "passerelle_datapass")
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*DataPassHandler)(nil)
	_ caddy.Provisioner           = (*DataPassHandler)(nil)
)
