package dossier

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/passerelle-gw/passerelle/config/audit"
)

// deployed is what the dossier reads from the deployed configuration
// (Caddy's JSON): never a secret's value, only whether a setting is there.
type deployed struct {
	mode          string // production (default) or sandbox
	cataloguePath string // "" for the embedded catalogue
	habilitations string // path of the habilitations file
	ttlCap        time.Duration
	negativeTTL   time.Duration
	redis         bool
	redisTLS      bool
	redisSentinel bool
	// upstreams maps a provider name to its credential's kind.
	upstreams map[string]string
	// served holds the endpoint ids the passerelle handlers serve; nil:
	// the whole catalogue (a handler without an endpoint list).
	served   map[string]bool
	handlers bool // at least one passerelle handler
	front    bool // a passerelle_front handler
	tracing  bool // Caddy's tracing handler
	pseudoV  string
	audit    *logSink
	access   []logSink
}

// logSink is a log of Caddy's logging app and where it writes.
type logSink struct {
	name   string
	output string // file, net, stderr, …
	// keepDays and keepFiles are roll_keep_days and roll_keep of a file
	// writer (Caddy's defaults 90 and 10 when unset): rolled files go at
	// whichever comes first; rollOff: rotation disabled (kept forever).
	keepDays, keepFiles int
	rollOff             bool
	buffered            bool // behind passerelle_buffered
}

// The gateway's defaults (caddyplugin/app.go); Caddy's file writer's are
// audit.CaddyRollKeep and audit.CaddyRollKeepDays.
const (
	defaultTTLCap      = 30 * time.Second
	defaultNegativeTTL = 5 * time.Second
)

// readDeployed reads the configuration; it fails only on JSON that is not
// an object.
func readDeployed(config []byte) (*deployed, error) {
	var root map[string]any
	if err := json.Unmarshal(config, &root); err != nil {
		return nil, fmt.Errorf("dossier: the configuration is not readable JSON: %w", err)
	}
	d := &deployed{mode: "production", ttlCap: defaultTTLCap, negativeTTL: defaultNegativeTTL,
		upstreams: map[string]string{}, pseudoV: "v1"}
	p, _ := dig(root, "apps", "passerelle").(map[string]any)
	if m := str(p, "mode"); m != "" {
		d.mode = m
	}
	d.cataloguePath = str(p, "catalogue")
	d.habilitations = str(p, "habilitations")
	if v, ok := duration(dig(p, "cache", "ttl_cap")); ok {
		d.ttlCap = v
	}
	if v, ok := duration(dig(p, "cache", "negative_ttl")); ok {
		d.negativeTTL = v
	}
	if r, ok := dig(p, "cache", "redis").(map[string]any); ok {
		d.redis = true
		d.redisTLS = r["tls"] == true
		d.redisSentinel = str(r, "master_name") != ""
	}
	if v := str(p, "audit", "pseudonym_key_version"); v != "" {
		d.pseudoV = v
	}
	ups, _ := dig(p, "upstreams").(map[string]any)
	for name, u := range ups {
		switch {
		case dig(u, "oauth2") != nil:
			d.upstreams[name] = "OAuth2 client credentials"
		case str(u, "header_value") != "":
			d.upstreams[name] = "en-tête statique " + str(u, "header_name")
		default:
			d.upstreams[name] = "déclaré sans crédit"
		}
	}
	walk(dig(root, "apps", "http"), func(h map[string]any) {
		switch h["handler"] {
		case "passerelle":
			ids, _ := h["endpoints"].([]any)
			if !d.handlers {
				d.handlers = true
				if len(ids) > 0 {
					d.served = map[string]bool{}
				}
			}
			if len(ids) == 0 {
				d.served = nil
			}
			if d.served != nil {
				for _, id := range ids {
					if s, ok := id.(string); ok {
						d.served[s] = true
					}
				}
			}
		case "passerelle_front":
			d.front = true
		case "tracing":
			d.tracing = true
		}
	})
	logs, _ := dig(root, "logging", "logs").(map[string]any)
	auditLog := audit.LogFor(logs, "passerelle.audit") // as the audit's PA14 reads it
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		l := logs[name]
		s := sinkOf(name, dig(l, "writer"))
		switch {
		case name == auditLog:
			d.audit = &s
		case slices.ContainsFunc(strs(l, "include"), func(i string) bool { return strings.HasPrefix(i, "http.log.access") }):
			d.access = append(d.access, s)
		}
	}
	return d, nil
}

// sinkOf describes a log writer, looking through passerelle_buffered.
func sinkOf(name string, w any) logSink {
	s := logSink{name: name, output: "stderr"} // Caddy's default writer
	if str(w, "output") == "passerelle_buffered" {
		s.buffered = true
		w = dig(w, "writer")
	}
	if o := str(w, "output"); o != "" {
		s.output = o
	}
	if s.output == "file" {
		s.keepDays, s.keepFiles = audit.CaddyRollKeepDays, audit.CaddyRollKeep
		if n, ok := dig(w, "roll_keep_days").(float64); ok && n > 0 {
			s.keepDays = int(n)
		}
		if n, ok := dig(w, "roll_keep").(float64); ok && n != 0 {
			s.keepFiles = int(n) // negative: no limit by count
		}
		s.rollOff = dig(w, "roll_disabled") == true || dig(w, "roll") == false
	}
	return s
}

// retention says how long a sink keeps its records.
func (s *logSink) retention() string {
	switch {
	case s == nil:
		return "aucun journal dédié: les enregistrements vont au journal par défaut (à corriger, règle PA14)"
	case s.output == "file" && s.rollOff:
		return "fichier sans rotation: conservé sans limite (à borner par l'exploitant)"
	case s.output == "file":
		if s.keepFiles <= 0 {
			return fmt.Sprintf("%d jours après la rotation de leur fichier (roll_keep_for; règle PA22), puis selon le puits de l'exploitant", s.keepDays)
		}
		return fmt.Sprintf("%d jours après la rotation de leur fichier (roll_keep_for) au plus, mais pas plus de %d fichiers (roll_keep), quel que soit leur âge (règle PA22), puis selon le puits de l'exploitant", s.keepDays, s.keepFiles)
	}
	return "selon le puits de l'exploitant (sortie " + s.output + ")"
}

// walk calls f on every object of v holding a "handler" member.
func walk(v any, f func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["handler"].(string); ok {
			f(x)
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			walk(x[k], f)
		}
	case []any:
		for _, e := range x {
			walk(e, f)
		}
	}
}

// duration reads a caddy.Duration: nanoseconds, or a Go duration string.
func duration(v any) (time.Duration, bool) {
	switch x := v.(type) {
	case float64:
		return time.Duration(x), x > 0
	case string:
		d, err := time.ParseDuration(x)
		return d, err == nil && d > 0
	}
	return 0, false
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := dig(v, path...).(string)
	return s
}

func strs(v any, path ...string) []string {
	a, _ := dig(v, path...).([]any)
	out := make([]string, 0, len(a))
	for _, e := range a {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// seconds writes a duration in French, in seconds.
func seconds(d time.Duration) string {
	return strings.TrimSuffix(fmt.Sprintf("%g", d.Seconds()), ".0") + " s"
}
