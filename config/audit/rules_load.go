package audit

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The rules on load and failure handling: quotas (PA15), server timeouts
// (PA16), retries (PA17) and provider timeouts (PA19).

// maxQuota is the fastest quota that still limits: 1000 requests a second
// (the default one, or a habilitation's own, checkHabilitations).
const maxQuota = 1000

// maxCitizenQuota is the fastest citizen quota that still limits: one
// request a second.
const maxCitizenQuota = 1.0

func checkQuotas(c *cfg) []Finding {
	var out []Finding
	for _, f := range []string{"habilitation", "client_ip"} {
		v := str(c.root, "apps", "passerelle", "rate_limits", f)
		if v == "" {
			continue
		}
		if perSecond, ok := rate(v); ok && perSecond > maxQuota {
			out = append(out, find("PA15", pp+".rate_limits."+f, v))
		}
	}
	// A citizen's quota (default 30/h) is what reveals enumeration by a
	// compromised caller (SECURITY.md F05): off, or faster than one a
	// second, it reveals nothing.
	if v := str(c.root, "apps", "passerelle", "rate_limits", "citizen"); v == "off" {
		out = append(out, find("PA15", pp+".rate_limits.citizen", v))
	} else if perSecond, ok := rate(v); ok && perSecond > maxCitizenQuota {
		out = append(out, find("PA15", pp+".rate_limits.citizen", v))
	}
	// Failed authentications per client network (default 20/m) keep a
	// flood of junk tokens from being relayed to FranceConnect (SECURITY.md
	// F04).
	if v := str(c.root, "apps", "passerelle", "rate_limits", "failed_auth"); v == "off" {
		out = append(out, find("PA15", pp+".rate_limits.failed_auth", v))
	} else if perSecond, ok := rate(v); ok && perSecond > maxFailedAuthQuota {
		out = append(out, find("PA15", pp+".rate_limits.failed_auth", v))
	}
	return out
}

// maxFailedAuthQuota is SECURITY.md F04's bound: 20 failed
// authentications a minute.
const maxFailedAuthQuota = 20.0 / 60

// rate reads "N/s", "N/m" or "N/h" as requests per second.
func rate(v string) (float64, bool) {
	n, unit, ok := strings.Cut(v, "/")
	count, err := strconv.ParseFloat(n, 64)
	if !ok || err != nil {
		return 0, false
	}
	switch unit {
	case "s":
		return count, true
	case "m":
		return count / 60, true
	case "h":
		return count / 3600, true
	}
	return 0, false
}

// checkTimeouts (PA16): a public server sets read_header_timeout,
// read_timeout, write_timeout and idle_timeout, each above zero (net/http
// has none for a negative one, Caddy none for a zero read_timeout), and
// keeps headers within 1 MiB. Without a write timeout, a caller that
// reads nothing (an HTTP/2 window of 0) holds its answer, up to a
// provider's max_response_bytes, and its goroutine for as long as it
// likes.
func checkTimeouts(c *cfg) []Finding {
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		srv := c.servers[name]
		if !public(srv) {
			continue
		}
		var missing []string
		for _, t := range []string{"read_header_timeout", "read_timeout", "write_timeout", "idle_timeout"} {
			if d, ok := duration(srv[t]); !ok || d <= 0 {
				missing = append(missing, t)
			}
		}
		if len(missing) > 0 {
			out = append(out, find("PA16", "apps.http.servers."+name, "no "+strings.Join(missing, ", ")))
		}
		if n, ok := srv["max_header_bytes"].(float64); ok && n > 1<<20 {
			out = append(out, find("PA16", "apps.http.servers."+name+".max_header_bytes", strconv.Itoa(int(n))))
		}
	}
	return out
}

// checkRetries: at most one retry, of GET requests only. Behind passerelle
// (a provider) none at all: the pipeline retries a call it could not send
// itself, once, with jitter and a budget (SECURITY.md E09), and Caddy's
// retries would come on top of its own, without either.
func checkRetries(c *cfg) []Finding {
	var out []Finding
	for _, h := range c.named("reverse_proxy") {
		limit := 1.0
		if h.mayAfter("passerelle") {
			limit = 0
		}
		if n, ok := dig(h.obj, "load_balancing", "retries").(float64); ok && n > limit {
			out = append(out, find("PA17", h.path+".load_balancing.retries", strconv.Itoa(int(n))))
		}
		// lb_try_duration retries a connection failure until it runs out,
		// whatever lb_retries says.
		if d, ok := duration(dig(h.obj, "load_balancing", "try_duration")); ok && d > 0 && limit == 0 {
			out = append(out, find("PA17", h.path+".load_balancing.try_duration", d.String()))
		}
		matchers, _ := dig(h.obj, "load_balancing", "retry_match").([]any)
		for _, m := range matchers {
			for _, method := range strs(m, "method") {
				if method != "GET" && method != "HEAD" {
					out = append(out, find("PA17", h.path+".load_balancing.retry_match", "retries "+method))
				}
			}
		}
	}
	return out
}

// checkProviderTimeouts: a reverse_proxy behind passerelle (a provider)
// needs a response header timeout (SECURITY.md E08): Caddy sets none, and a
// provider that accepts connections and never answers would hold each call
// until its caller gives up, without ever opening its circuit (I06). (The
// whole call, passerelle's provider_timeout, is refused above 15 s.)
func checkProviderTimeouts(c *cfg) []Finding {
	var out []Finding
	for _, h := range c.named("reverse_proxy") {
		if !h.mayAfter("passerelle") {
			continue
		}
		if d, ok := duration(dig(h.obj, "transport", "response_header_timeout")); !ok || d <= 0 {
			out = append(out, find("PA19", h.path+".transport", "no response_header_timeout"))
		}
	}
	return out
}
