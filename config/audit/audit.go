// Package audit reads a gateway's configuration (Caddy's JSON, as adapted
// from a Caddyfile) and reports the settings a homologation reviewer would
// refuse: sandbox modules, literal secrets, plain HTTP to FranceConnect or
// providers, weak JOSE allow-lists, providers reachable around the gateway,
// bad habilitations, public listeners without TLS, admin or metrics exposed,
// logs that keep query strings or credentials, missing timeouts or quotas,
// retries of non-idempotent requests, trusting every proxy (rules.go).
//
// Each finding has a rule id, a severity, what was found, where (the JSON
// path of the setting) and how to fix it. A finding never quotes a secret's
// value, nor anything of a habilitations file but its path and entry ids.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
)

// Severity orders findings: Critical > High > Medium > Low.
type Severity int

// Severities.
const (
	Low Severity = iota + 1
	Medium
	High
	Critical
)

var severityNames = map[Severity]string{Low: "low", Medium: "medium", High: "high", Critical: "critical"}

func (s Severity) String() string { return severityNames[s] }

// MarshalJSON writes the severity's name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads the severity's name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	v, err := ParseSeverity(name)
	*s = v
	return err
}

// ParseSeverity reads low, medium, high or critical.
func ParseSeverity(v string) (Severity, error) {
	for s, n := range severityNames {
		if strings.EqualFold(v, n) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("audit: severity %q: low, medium, high or critical", v)
}

// Finding is one unsafe setting.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	// Path is the JSON path of the setting in the adapted configuration.
	Path string `json:"path"`
	// Detail says what was found, without any secret value.
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix"`
}

// Options configure a run.
type Options struct {
	// ReadFile reads files the configuration names (the habilitations);
	// nil: such checks are skipped.
	ReadFile func(path string) ([]byte, error)
	// Getenv reads the environment the gateway will run with (the OTLP
	// exporter of Caddy's tracing handler is configured by OTEL_*
	// variables only); nil: such checks are skipped.
	Getenv func(name string) string
	// ConfigType is the Go type that decodes the whole configuration
	// (caddy.Config), and ModuleType the type of a module by its id (from
	// Caddy's registry): PA28 walks the configuration along them. Either
	// nil: PA28 is skipped.
	ConfigType reflect.Type
	ModuleType func(id string) (reflect.Type, bool)
	// Stat describes a file the configuration names, its links followed
	// (PA29's private keys, judged by PrivateFile); nil: PA29 is skipped.
	Stat func(path string) (fs.FileInfo, error)
}

// ErrConfig is returned for a configuration that cannot be read.
var ErrConfig = errors.New("audit: the configuration is not readable JSON")

// Run audits a Caddy JSON configuration and returns its findings, most
// severe first, then by rule and path.
func Run(config []byte, opts Options) ([]Finding, error) {
	var root map[string]any
	if err := json.Unmarshal(config, &root); err != nil {
		return nil, ErrConfig
	}
	c := &cfg{root: root, opts: opts}
	c.index()
	var out []Finding
	for _, r := range rules {
		out = append(out, r.check(c)...)
	}
	for i := range out {
		r := ruleByID[out[i].Rule]
		out[i].Severity, out[i].Title = r.severity, r.title
		if out[i].Fix == "" {
			out[i].Fix = r.fix
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity - a.Severity)
		}
		if a.Rule != b.Rule {
			return strings.Compare(a.Rule, b.Rule)
		}
		if a.Path != b.Path {
			return strings.Compare(a.Path, b.Path)
		}
		return strings.Compare(a.Detail, b.Detail)
	})
	// A named route invoked twice is walked twice: one finding each.
	return slices.Compact(out), nil
}

// Rule describes one rule, for the documentation and the reports.
type Rule struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	Fix      string   `json:"fix"`
}

// Rules lists every rule.
func Rules() []Rule {
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		out = append(out, Rule{ID: r.id, Severity: r.severity, Title: r.title, Fix: r.fix})
	}
	return out
}

// Ignore is one accepted finding: a rule, optionally at one path, with the
// reason it is accepted.
type Ignore struct {
	Rule, Path, Why string
}

// ParseIgnore reads an ignore file: one finding a line, "RULE [path] --
// justification"; # starts a comment. A line without a justification is
// an error: accepting a risk is a decision someone wrote down.
func ParseIgnore(data []byte) ([]Ignore, error) {
	var out []Ignore
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		head, why, ok := strings.Cut(line, "--")
		why = strings.TrimSpace(why)
		fields := strings.Fields(head)
		if !ok || why == "" || len(fields) == 0 || len(fields) > 2 {
			return nil, fmt.Errorf("audit: ignore file line %d: expected \"RULE [path] -- justification\"", i+1)
		}
		if _, known := ruleByID[fields[0]]; !known {
			return nil, fmt.Errorf("audit: ignore file line %d: unknown rule %q", i+1, fields[0])
		}
		ig := Ignore{Rule: fields[0], Why: why}
		if len(fields) == 2 {
			ig.Path = fields[1]
		}
		out = append(out, ig)
	}
	return out, nil
}

// Matches reports whether the ignore line accepts f: same rule, and same
// path unless the line names none.
func (ig Ignore) Matches(f Finding) bool {
	return ig.Rule == f.Rule && (ig.Path == "" || ig.Path == f.Path)
}

// Apply returns the findings not ignored, and those ignored.
func Apply(findings []Finding, ignores []Ignore) (kept, ignored []Finding) {
	for _, f := range findings {
		if slices.ContainsFunc(ignores, func(ig Ignore) bool { return ig.Matches(f) }) {
			ignored = append(ignored, f)
			continue
		}
		kept = append(kept, f)
	}
	return kept, ignored
}

// AtOrAbove reports whether a finding is at least threshold.
func AtOrAbove(findings []Finding, threshold Severity) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Severity >= threshold })
}
