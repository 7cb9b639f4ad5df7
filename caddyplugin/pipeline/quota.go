package pipeline

import (
	"context"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// LimitClient takes one request from the client address quota, before
// FranceConnect is asked (SECURITY.md F04), and returns the error to answer
// when it is spent (429) or cannot be decided. The address is Config.ClientIP's
// (Caddy's client IP, which honours trusted_proxies only, D04), or the
// connection's, counted per network (IPv6 per ClientIPv6Prefix, /64 by
// default: one subscriber holds a whole /64), hashed before it becomes a
// Redis key.
func (p *Pipeline) LimitClient(r *http.Request, c *Call) *apierror.Error {
	c.client = p.Limiter.ClientKey(p.ClientIPKey, p.ClientAddr(r), p.ClientIPv6Prefix)
	return p.limit(r.Context(), c.client, p.ClientQuota, quotaClientIP, c)
}

// ClientAddr is the client address of a request: Config.ClientIP's (the
// server's, trusted proxies honoured), or the connection's.
func (p *Pipeline) ClientAddr(r *http.Request) string {
	if p.ClientIP != nil {
		if ip := p.ClientIP(r); ip != "" {
			return ip
		}
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	return ip
}

// Quota names, as the rate_limited_total metric counts refusals.
const (
	quotaClientIP     = "client_ip"
	quotaFailedAuth   = "failed_auth"
	quotaHabilitation = "habilitation"
	quotaCitizen      = "citizen"
)

// limitCitizen takes one request from the quota of one citizen within one
// habilitation (SECURITY.md F05; Config.CitizenQuota). A caller asking
// about the same person again and again is refused 429, and the refusals
// are a security alert (possible enumeration by a compromised caller):
// each is counted, and a warning names the habilitation and the endpoint,
// never the citizen (the audit record of each refusal carries its
// pseudonym), at most once a minute for each.
func (p *Pipeline) limitCitizen(ctx context.Context, hab *habilitation.Habilitation, citizen string, c *Call) *apierror.Error {
	if citizen == "" { // no quota, or a call that names nobody
		return nil
	}
	key := p.Limiter.CitizenKey(p.ClientIPKey, hab.LimiterKey(), citizen)
	aerr := p.limit(ctx, key, p.CitizenQuota, quotaCitizen, c)
	if aerr != nil && aerr.Reason == apierror.ReasonRateLimited && citizenAlerts.due(labels2{hab.ID, c.ep.ID}, time.Now()) {
		p.Logger.Warn("citizen quota exceeded: possible enumeration",
			zap.String("alert", "citizen_quota"), zap.String("habilitation", hab.ID), zap.String("endpoint", c.ep.ID))
	}
	return aerr
}

// citizenAlerts spaces the citizen quota's warnings: one a minute for each
// habilitation and endpoint (a bounded set), however many refusals.
var citizenAlerts = alertThrottle{every: time.Minute}

// certificateAlerts spaces RefuseCertificate's warnings the same way.
var certificateAlerts = alertThrottle{every: time.Minute}

// RefuseCertificate answers a call of hab, bound to client certificates,
// that presented none of them (SECURITY.md C09) on endpoint (a catalogue
// endpoint id, or "introspect"): most likely a token that leaked, tried by
// another party. A security alert: client_certificate_refusals_total, and
// a WARN line naming the habilitation and the endpoint, never the
// certificate, at most once a minute for each.
func (p *Pipeline) RefuseCertificate(hab *habilitation.Habilitation, endpoint string, now time.Time) *apierror.Error {
	metricCertificateRefusals.Inc()
	if p.Logger != nil && certificateAlerts.due(labels2{hab.ID, endpoint}, now) {
		p.Logger.Warn("client certificate refused: a token of a certificate-bound habilitation came without its certificate",
			zap.String("alert", "client_certificate"), zap.String("habilitation", hab.ID), zap.String("endpoint", endpoint))
	}
	return apierror.ClientCertificateMismatch()
}

// alertThrottle reports when a warning is due again for a key.
type alertThrottle struct {
	every time.Duration
	last  sync.Map // labels2 → *atomic.Int64, Unix nanoseconds of the last warning
}

// due reports whether no warning was given for k within every, and if so
// records one at now.
func (a *alertThrottle) due(k labels2, now time.Time) bool {
	v, ok := a.last.Load(k)
	if !ok {
		v, _ = a.last.LoadOrStore(k, new(atomic.Int64))
	}
	last := v.(*atomic.Int64)
	prev := last.Load()
	if prev != 0 && now.UnixNano()-prev < int64(a.every) {
		return false
	}
	return last.CompareAndSwap(prev, now.UnixNano())
}

// limit takes one request from a quota; the decision feeds the RateLimit
// headers. A citizen's quota shows in them only when it refuses: they keep
// telling the habilitation's quota, as API Particulier's do.
func (p *Pipeline) limit(ctx context.Context, key string, q ratelimit.Quota, name string, c *Call) *apierror.Error {
	// The limiter reads the clock itself: a request's start time can be a
	// FranceConnect round trip old, and an earlier time would rewind an
	// in-process limiter (x/time/rate credits the interval again).
	d, err := p.Limiter.Allow(ctx, key, q)
	if err != nil {
		return apierror.Internal()
	}
	if d.Allowed && name == quotaCitizen {
		return nil
	}
	c.rate = d
	if !d.Allowed {
		c.refusedBy, c.refusedPer = name, q.Per
		metricRateLimited.WithLabelValues(name).Inc()
		return apierror.RateLimited(int(math.Ceil(d.RetryAfter.Seconds())))
	}
	return nil
}

// setRateLimitHeaders writes API Particulier's RateLimit headers: the
// quota, what is left of it, and when it is whole again (Unix time). The
// values are kept in vals; the three numbers share one string.
func setRateLimitHeaders(h http.Header, d ratelimit.Decision, now time.Time, vals *[3]string) {
	var buf [3 * 20]byte
	b := strconv.AppendInt(buf[:0], int64(d.Limit), 10)
	n1 := len(b)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	n2 := len(b)
	b = strconv.AppendInt(b, now.Add(d.Reset).Unix()+1, 10)
	all := string(b)
	*vals = [3]string{all[:n1], all[n1:n2], all[n2:]}
	h["Ratelimit-Limit"] = vals[0:1:1]
	h["Ratelimit-Remaining"] = vals[1:2:2]
	h["Ratelimit-Reset"] = vals[2:3:3]
}

// setRateLimitFields writes, on a refusal, the IETF RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers) beside API Particulier's
// (SECURITY.md F03): the policy of the quota that refused, by name, with
// its quota q and window w in seconds, and that nothing is left of it for
// t seconds: RateLimit-Policy: "habilitation";q=20;w=1 and
// RateLimit: "habilitation";r=0;t=1. A refusal only: no cost on the
// request path.
func setRateLimitFields(h http.Header, name string, limit int, per, retryAfter time.Duration) {
	window := max(int64(math.Ceil(per.Seconds())), 1)
	h["Ratelimit-Policy"] = []string{strconv.Quote(name) + ";q=" + strconv.Itoa(limit) + ";w=" + strconv.FormatInt(window, 10)}
	h["Ratelimit"] = []string{strconv.Quote(name) + ";r=0;t=" + strconv.FormatInt(max(int64(math.Ceil(retryAfter.Seconds())), 1), 10)}
}
