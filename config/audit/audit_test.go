package audit

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// clean is a production configuration that trips no rule: each case below
// changes one thing and must trip its rule, and only the rules it names.
func clean() map[string]any {
	return map[string]any{
		"admin": map[string]any{"listen": "unix//run/passerelle/admin.sock"},
		"logging": map[string]any{"logs": map[string]any{
			"default": map[string]any{"exclude": []any{"http.log.access", "passerelle.audit"}},
			"log0": map[string]any{
				"include": []any{"http.log.access.log0"},
				"writer":  map[string]any{"output": "file", "filename": "/var/log/passerelle/access.log", "roll_keep_days": 183.0, "roll_keep": -1.0, "roll_interval": 86400e9},
				"encoder": map[string]any{"format": "filter", "fields": map[string]any{
					"request>uri":               map[string]any{"filter": "regexp", "regexp": `\?.*`, "value": "?redacted"},
					"request>headers>X-Api-Key": map[string]any{"filter": "delete"},
				}},
			},
			"audit": map[string]any{
				"include": []any{"passerelle.audit"},
				"encoder": map[string]any{"format": "passerelle_sealed", "key": "{file./run/credentials/passerelle.service/audit-seal-key}", "key_id": "2026-12"},
				"writer": map[string]any{"output": "passerelle_buffered",
					"writer": map[string]any{"output": "file", "filename": "/var/log/passerelle/audit.log", "roll_keep_days": 363.0, "roll_keep": -1.0, "roll_interval": 86400e9}},
			},
		}},
		"apps": map[string]any{
			"passerelle": map[string]any{
				"franceconnect": map[string]any{
					"issuer": "https://oidc.franceconnect.gouv.fr/api/v2", "client_id": "fd",
					"client_secret": "{file./run/credentials/passerelle.service/fc-secret}", "decryption_keys": []any{"{file./run/credentials/passerelle.service/enc.jwk}"},
					"signing_algorithms": []any{"ES256"}, "skew": 10e9,
				},
				"cache": map[string]any{"secret": "{env.CACHE_SECRET}", "redis": map[string]any{
					"addrs": []any{"redis-1:26379"}, "master_name": "passerelle", "password": "{file./run/credentials/passerelle.service/redis}", "tls": true,
				}},
				"audit":       map[string]any{"pseudonym_key": "{file./run/credentials/passerelle.service/pseudo}"},
				"rate_limits": map[string]any{"habilitation": "20/s", "client_ip": "1000/m"},
				"upstreams":   map[string]any{"CNAV": map[string]any{"header_name": "Authorization", "header_value": "{file./run/credentials/passerelle.service/cnav}"}},
			},
			"http": map[string]any{"servers": map[string]any{
				"public": map[string]any{
					"listen":              []any{":443"},
					"automatic_https":     map[string]any{"disable_redirects": true},
					"read_header_timeout": 10e9, "read_timeout": 30e9, "write_timeout": 60e9, "idle_timeout": 120e9,
					"logs": map[string]any{"logger_names": map[string]any{"api.mairie.example": []any{"log0"}}},
					"routes": []any{map[string]any{"match": []any{map[string]any{"host": []any{"api.mairie.example"}}}, "handle": []any{map[string]any{"handler": "subroute", "routes": []any{
						map[string]any{"handle": []any{
							map[string]any{"handler": "passerelle"},
							map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": "provider.example:443"}},
								"transport": map[string]any{"protocol": "http", "tls": map[string]any{}, "response_header_timeout": 10e9}},
						}},
					}}}}},
				},
				"internal": map[string]any{
					"listen": []any{"127.0.0.1:9090"},
					"routes": []any{map[string]any{"handle": []any{map[string]any{"handler": "metrics"}}},
						map[string]any{"handle": []any{map[string]any{"handler": "passerelle_health"}}}},
				},
			}},
		},
	}
}

// at follows a path of keys and indexes (ints) and returns the container.
func at(root map[string]any, path ...any) any {
	var v any = root
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

func obj(root map[string]any, path ...any) map[string]any { return at(root, path...).(map[string]any) }

func run(t *testing.T, c map[string]any) []Finding {
	t.Helper()
	b, _ := json.Marshal(c)
	fs, err := Run(b, Options{ReadFile: func(string) ([]byte, error) { return []byte(goodHabilitations), nil },
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

const goodHabilitations = `habilitations:
  - id: "dp-1"
    label: "Mairie"
    siret: "21930048000015"
    france_connect_client_ids: ["0f5e7b9d1c3a5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e"]
    modalities: [france_connect]
    scopes: [cnaf_quotient_familial]
`

func rulesOf(fs []Finding) []string {
	var ids []string
	for _, f := range fs {
		if !slices.Contains(ids, f.Rule) {
			ids = append(ids, f.Rule)
		}
	}
	return ids
}

func TestCleanConfig(t *testing.T) {
	if fs := run(t, clean()); len(fs) != 0 {
		t.Fatalf("a clean configuration trips %v: %+v", rulesOf(fs), fs)
	}
}

// public route chain: passerelle, reverse_proxy.
func route(c map[string]any) []any {
	return at(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0, "routes").([]any)
}

// req: B10, E05, G06, H04
func TestEachRule(t *testing.T) {
	pp := func(c map[string]any) map[string]any { return obj(c, "apps", "passerelle") }
	proxy := func(c map[string]any) map[string]any {
		return obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0, "routes", 0, "handle", 1)
	}
	cases := []struct {
		rule   string
		change func(c map[string]any)
	}{
		{"PA01", func(c map[string]any) { pp(c)["mode"] = "sandbox" }},
		{"PA01", func(c map[string]any) {
			r := obj(c, "apps", "http", "servers", "internal")
			r["routes"] = append(r["routes"].([]any), map[string]any{"handle": []any{map[string]any{"handler": "passerelle_sandbox_fc"}}})
		}},
		{"PA02", func(c map[string]any) {
			obj(c, "apps", "passerelle", "franceconnect")["client_secret"] = "s3cr3t-value-canary"
		}},
		{"PA02", func(c map[string]any) {
			obj(c, "apps", "passerelle", "upstreams", "CNAV")["header_value"] = "Bearer s3cr3t-value-canary"
		}},
		// Two references around a literal: the gateway takes it as a
		// literal (refused in production), so the audit does too.
		{"PA02", func(c map[string]any) {
			obj(c, "apps", "passerelle", "franceconnect")["client_secret"] = "{env.A}s3cr3t-value-canary{env.B}"
		}},
		{"PA03", func(c map[string]any) {
			obj(c, "apps", "passerelle", "franceconnect")["issuer"] = "http://fc.example/api/v2"
		}},
		{"PA03", func(c map[string]any) { obj(c, "apps", "passerelle", "cache", "redis")["tls"] = false }},
		{"PA03", func(c map[string]any) {
			pp(c)["datapass"] = map[string]any{"secret": "{file./run/credentials/p/dp}", "api": map[string]any{"url": "http://datapass.example"}}
		}},
		{"PA02", func(c map[string]any) { pp(c)["datapass"] = map[string]any{"secret": "sandbox-datapass-secret"} }},
		{"PA02", func(c map[string]any) {
			pp(c)["datapass"] = map[string]any{"secret": "{env.DP}", "api": map[string]any{"url": "https://datapass.example", "client_secret": "literal-canary"}}
		}},
		{"PA03", func(c map[string]any) { delete(proxy(c), "transport") }},
		{"PA04", func(c map[string]any) {
			obj(c, "apps", "passerelle", "franceconnect")["signing_algorithms"] = []any{"ES256", "HS256"}
		}},
		{"PA04", func(c map[string]any) {
			obj(c, "apps", "passerelle", "franceconnect")["key_algorithms"] = []any{"RSA1_5"}
		}},
		{"PA04", func(c map[string]any) { obj(c, "apps", "passerelle", "franceconnect")["skew"] = 120e9 }},
		// reverse_proxy /direct/* to the provider, before passerelle.
		{"PA05", func(c map[string]any) {
			direct := map[string]any{"match": []any{map[string]any{"path": []any{"/direct/*"}}},
				"handle": []any{map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": "provider.example:443"}},
					"transport": map[string]any{"protocol": "http", "tls": map[string]any{}}}}}
			obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0)["routes"] = append([]any{direct}, route(c)...)
		}},
		{"PA07", func(c map[string]any) { publicServer(c)["listen"] = []any{":80"} }},
		{"PA08", func(c map[string]any) {
			publicServer(c)["tls_connection_policies"] = []any{map[string]any{"protocol_min": "tls1.0"}}
		}},
		{"PA08", func(c map[string]any) {
			publicServer(c)["tls_connection_policies"] = []any{map[string]any{"cipher_suites": []any{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}}}
		}},
		{"PA08", func(c map[string]any) {
			publicServer(c)["tls_connection_policies"] = []any{map[string]any{"cipher_suites": []any{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256"}}}
		}},
		{"PA09", func(c map[string]any) { obj(proxy(c), "transport", "tls")["insecure_skip_verify"] = true }},
		{"PA10", func(c map[string]any) { obj(c, "admin")["listen"] = "0.0.0.0:2019" }},
		{"PA10", func(c map[string]any) { // the local admin runs beside the remote one
			obj(c, "admin")["listen"] = "0.0.0.0:2019"
			obj(c, "admin")["remote"] = map[string]any{"listen": ":2021"}
		}},
		{"PA11", func(c map[string]any) { obj(c, "apps", "http", "servers", "internal")["listen"] = []any{":9090"} }},
		{"PA12", func(c map[string]any) { delete(obj(c, "logging", "logs", "log0", "encoder", "fields"), "request>uri") }},
		{"PA12", func(c map[string]any) { // a query filter deleting one parameter keeps the others
			obj(c, "logging", "logs", "log0", "encoder", "fields")["request>uri"] = map[string]any{"filter": "query",
				"actions": []any{map[string]any{"type": "delete", "parameter": "token"}}}
		}},
		{"PA12", func(c map[string]any) { // a regexp removing one parameter keeps the others
			obj(c, "logging", "logs", "log0", "encoder", "fields")["request>uri"] = map[string]any{"filter": "regexp",
				"regexp": `nomNaissance=[^&]*`, "value": "nomNaissance=x"}
		}},
		{"PA12", func(c map[string]any) { // the civil status parameters one knows of, not the others
			obj(c, "logging", "logs", "log0", "encoder", "fields")["request>uri"] = map[string]any{"filter": "regexp",
				"regexp": `(nomNaissance|prenoms\[\]|anneeDateNaissance)=[^&]*`, "value": ""}
		}},
		{"PA12", func(c map[string]any) { // one route's query only
			obj(c, "logging", "logs", "log0", "encoder", "fields")["request>uri"] = map[string]any{"filter": "regexp",
				"regexp": `quotient_familial/identite\?.*`, "value": "quotient_familial/identite"}
		}},
		{"PA12", func(c map[string]any) {
			delete(obj(c, "logging", "logs", "log0", "encoder", "fields"), "request>headers>X-Api-Key")
		}},
		{"PA13", func(c map[string]any) { obj(c, "logging", "logs", "log0")["level"] = "DEBUG" }},
		{"PA13", func(c map[string]any) { obj(publicServer(c), "logs")["should_log_credentials"] = true }},
		{"PA14", func(c map[string]any) { delete(obj(c, "logging", "logs"), "audit") }},
		{"PA14", func(c map[string]any) {
			obj(c, "logging", "logs", "audit")["writer"] = map[string]any{"output": "file", "filename": "/var/log/passerelle/access.log"}
		}},
		// The same file through passerelle_buffered, rotated otherwise.
		{"PA14", func(c map[string]any) {
			obj(c, "logging", "logs", "audit", "writer", "writer")["filename"] = "/var/log/passerelle/../passerelle/access.log"
		}},
		{"PA15", func(c map[string]any) { obj(c, "apps", "passerelle", "rate_limits")["habilitation"] = "1000000/s" }},
		{"PA15", func(c map[string]any) { obj(c, "apps", "passerelle", "rate_limits")["citizen"] = "off" }},
		{"PA15", func(c map[string]any) { obj(c, "apps", "passerelle", "rate_limits")["citizen"] = "100/m" }},
		{"PA16", func(c map[string]any) { delete(publicServer(c), "read_header_timeout") }},
		{"PA16", func(c map[string]any) { publicServer(c)["read_timeout"] = 0.0 }},          // no timeout
		{"PA16", func(c map[string]any) { delete(publicServer(c), "write_timeout") }},       // a reader of nothing holds its answer
		{"PA16", func(c map[string]any) { publicServer(c)["read_header_timeout"] = "-1s" }}, // net/http: none
		{"PA16", func(c map[string]any) { publicServer(c)["max_header_bytes"] = float64(8 << 20) }},
		{"PA17", func(c map[string]any) { proxy(c)["load_balancing"] = map[string]any{"retries": 3.0} }},
		{"PA17", func(c map[string]any) { proxy(c)["load_balancing"] = map[string]any{"retries": 1.0} }}, // behind passerelle: none
		{"PA17", func(c map[string]any) { proxy(c)["load_balancing"] = map[string]any{"try_duration": 5e9} }},
		{"PA17", func(c map[string]any) {
			proxy(c)["load_balancing"] = map[string]any{"retry_match": []any{map[string]any{"method": []any{"POST"}}}}
		}},
		{"PA19", func(c map[string]any) { delete(obj(proxy(c), "transport"), "response_header_timeout") }},
		{"PA20", func(c map[string]any) {
			obj(c, "logging", "logs", "audit")["writer"] = map[string]any{"output": "file", "filename": "/var/log/passerelle/audit.log"}
		}},
		{"PA20", func(c map[string]any) { obj(c, "logging", "logs", "audit", "writer")["on_full"] = "drop" }},
		{"PA20", func(c map[string]any) {
			obj(c, "logging", "logs", "audit", "writer")["writer"] = map[string]any{"output": "net", "address": "tcp/logs.example:514"}
		}},
		{"PA21", func(c map[string]any) { delete(publicServer(c), "automatic_https") }},
		{"PA22", func(c map[string]any) { delete(obj(c, "logging", "logs", "log0", "writer"), "roll_keep_days") }}, // 90 days
		{"PA22", func(c map[string]any) {
			obj(c, "logging", "logs", "audit", "writer", "writer")["roll_keep_days"] = 400.0
		}},
		{"PA22", func(c map[string]any) { delete(obj(c, "logging", "logs", "audit", "writer", "writer"), "roll_keep") }}, // 10 files
		{"PA22", func(c map[string]any) { obj(c, "logging", "logs", "log0", "writer")["roll"] = false }},
		{"PA23", func(c map[string]any) { delete(obj(c, "logging", "logs", "audit"), "encoder") }},
		{"PA23", func(c map[string]any) {
			obj(c, "logging", "logs", "audit")["encoder"] = map[string]any{"format": "json"}
		}},
		{"PA15", func(c map[string]any) { obj(c, "apps", "passerelle", "rate_limits")["failed_auth"] = "off" }},
		{"PA15", func(c map[string]any) { obj(c, "apps", "passerelle", "rate_limits")["failed_auth"] = "100/m" }},
		{"PA24", func(c map[string]any) { obj(c, "logging", "logs", "audit")["level"] = "error" }},
		{"PA24", func(c map[string]any) {
			obj(c, "logging", "logs", "audit")["sampling"] = map[string]any{"interval": 1e9, "first": 100.0}
		}},
		{"PA25", func(c map[string]any) {
			obj(c, "logging", "logs", "log0")["writer"] = map[string]any{"output": "passerelle_buffered", "writer": map[string]any{"output": "stderr"}}
		}},
		{"PA26", func(c map[string]any) {
			publicServer(c)["trusted_proxies"] = map[string]any{"source": "static", "ranges": []any{"10.0.0.1/32"}}
		}},
		{"PA18", func(c map[string]any) {
			publicServer(c)["trusted_proxies"] = map[string]any{"source": "static", "ranges": []any{"0.0.0.0/0"}}
		}},
		{"PA18", func(c map[string]any) { // every IPv6 address, spelt otherwise
			publicServer(c)["trusted_proxies"] = map[string]any{"source": "static", "ranges": []any{"10.0.0.1", "0::0/0"}}
		}},
		{"PA18", func(c map[string]any) { // every IPv4 address in two halves
			publicServer(c)["trusted_proxies"] = map[string]any{"source": "static", "ranges": []any{"128.0.0.0/1", "0.0.0.0/1", "10.0.0.0/8"}}
		}},
		{"PA27", func(c map[string]any) { // tracing, OTEL_PROPAGATORS unset
			h := obj(c, "apps", "http", "servers", "public", "routes", 0)
			h["handle"] = append([]any{map[string]any{"handler": "tracing", "span": "passerelle"}}, h["handle"].([]any)...)
		}},
	}
	tried := map[string]bool{}
	for i, tc := range cases {
		c := clean()
		tc.change(c)
		fs := run(t, c)
		if !slices.Contains(rulesOf(fs), tc.rule) {
			t.Errorf("case %d: %s not tripped: %+v", i, tc.rule, fs)
		}
		for _, f := range fs {
			if strings.Contains(f.Detail+f.Path+f.Title, "s3cr3t") {
				t.Errorf("case %d: a finding quotes the secret: %+v", i, f)
			}
			if f.Path == "" || f.Fix == "" || f.Severity == 0 {
				t.Errorf("case %d: incomplete finding %+v", i, f)
			}
		}
		tried[tc.rule] = true
	}
	tried["PA06"] = true // TestHabilitations
	tried["PA28"] = true // TestPA28KeyCase (it needs the configuration's Go types)
	tried["PA29"] = true // TestPA29KeyFileModes (it needs file modes)
	for _, r := range Rules() {
		if !tried[r.ID] {
			t.Errorf("rule %s has no test", r.ID)
		}
	}
}

// TestHTTPSPort: a listener on the configured https_port is HTTPS.
func TestHTTPSPort(t *testing.T) {
	c := clean()
	srv := obj(c, "apps", "http", "servers", "public")
	srv["listen"] = []any{":8443"}
	if !slices.Contains(rulesOf(run(t, c)), "PA07") {
		t.Fatal(":8443 without https_port: not flagged")
	}
	obj(c, "apps", "http")["https_port"] = 8443.0
	if slices.Contains(rulesOf(run(t, c)), "PA07") {
		t.Fatal(":8443 with https_port 8443: flagged")
	}
}

func TestHabilitations(t *testing.T) {
	c := clean()
	c["apps"].(map[string]any)["passerelle"].(map[string]any)["habilitations"] = "/etc/passerelle/habilitations.yaml"
	b, _ := json.Marshal(c)
	for name, tc := range map[string]struct {
		file string
		err  error
		want bool
	}{
		"good":          {goodHabilitations, nil, false},
		"unknown scope": {strings.Replace(goodHabilitations, "cnaf_quotient_familial", "cnaf_tout", 1), nil, true},
		"bad SIRET":     {strings.Replace(goodHabilitations, "21930048000015", "21930048000016", 1), nil, true},
		"unreadable":    {"", errors.New("no such file"), true},
	} {
		fs, err := Run(b, Options{ReadFile: func(string) ([]byte, error) { return []byte(tc.file), tc.err }})
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(rulesOf(fs), "PA06"); got != tc.want {
			t.Errorf("%s: PA06 %v: %+v", name, got, fs)
		}
	}
	// A habilitation's own quota that does not limit (PA15).
	for rate, want := range map[string]bool{"20/s": false, "1000/s": false, "1001/s": true, "1000000/m": true} {
		file := goodHabilitations + "    rate_limit: \"" + rate + "\"\n"
		fs, err := Run(b, Options{ReadFile: func(string) ([]byte, error) { return []byte(file), nil }})
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(rulesOf(fs), "PA15"); got != want {
			t.Errorf("habilitation rate_limit %s: PA15 %v: %+v", rate, got, fs)
		}
	}
}

func TestIgnoreFile(t *testing.T) {
	ig, err := ParseIgnore([]byte("# accepted\nPA11 apps.http.servers.x -- the cluster network only\nPA15 -- load test platform\n"))
	if err != nil || len(ig) != 2 || ig[0].Path != "apps.http.servers.x" || ig[1].Why != "load test platform" {
		t.Fatalf("%+v %v", ig, err)
	}
	for _, bad := range []string{"PA11 apps.x", "PA11 apps.x --", "PA99 -- unknown rule", "PA11 a b -- too many"} {
		if _, err := ParseIgnore([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	fs := []Finding{{Rule: "PA11", Path: "apps.http.servers.x", Severity: Medium}, {Rule: "PA11", Path: "apps.http.servers.y", Severity: Medium}, {Rule: "PA15", Path: "p", Severity: Medium}}
	kept, ignored := Apply(fs, ig)
	if len(kept) != 1 || kept[0].Path != "apps.http.servers.y" || len(ignored) != 2 {
		t.Fatalf("kept %+v ignored %+v", kept, ignored)
	}
	if !AtOrAbove(kept, Medium) || AtOrAbove(kept, High) {
		t.Fatal("threshold")
	}
}

func TestReportFormats(t *testing.T) {
	c := clean()
	c["apps"].(map[string]any)["passerelle"].(map[string]any)["mode"] = "sandbox"
	fs := run(t, c)
	for _, format := range []string{"text", "json", "markdown"} {
		var b strings.Builder
		if err := Report(&b, format, fs, nil); err != nil || !strings.Contains(b.String(), "PA01") {
			t.Errorf("%s: %v %s", format, err, b.String())
		}
	}
	var out struct {
		Findings []Finding      `json:"findings"`
		Counts   map[string]int `json:"counts"`
	}
	var b strings.Builder
	_ = Report(&b, "json", fs, nil)
	if err := json.Unmarshal([]byte(b.String()), &out); err != nil || out.Counts["critical"] != 1 {
		t.Fatalf("%v %s", err, b.String())
	}
	if err := Report(os.Stdout, "yaml", fs, nil); err == nil {
		t.Fatal("unknown format accepted")
	}
	if _, err := Run([]byte("{not json"), Options{}); !errors.Is(err, ErrConfig) {
		t.Fatal("bad JSON accepted")
	}
}

// TestOTLPInClear: with Caddy's tracing handler, the OTLP exporter's
// environment decides where spans go; PA03 reports spans sent in clear off
// loopback, and nothing else.
func TestOTLPInClear(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false}, // the exporter's default: localhost
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.internal:4318"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel.internal:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://10.0.0.7:4318/v1/traces"}, true},
		{map[string]string{ // the traces variable wins over the general one
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://otel.internal:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otel.internal:4318/v1/traces"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "otel.internal:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.internal:4317", "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "TRUE"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, false},
	}
	for _, withTracing := range []bool{true, false} {
		for _, tc := range cases {
			c := clean()
			if withTracing {
				h := obj(c, "apps", "http", "servers", "public", "routes", 0)
				h["handle"] = append([]any{map[string]any{"handler": "tracing", "span": "passerelle"}}, h["handle"].([]any)...)
			}
			b, _ := json.Marshal(c)
			fs, err := Run(b, Options{
				ReadFile: func(string) ([]byte, error) { return []byte(goodHabilitations), nil },
				Getenv:   func(n string) string { return tc.env[n] },
			})
			if err != nil {
				t.Fatal(err)
			}
			got := slices.ContainsFunc(fs, func(f Finding) bool { return f.Rule == "PA03" && strings.Contains(f.Detail, "OTLP") })
			if want := tc.want && withTracing; got != want {
				t.Errorf("tracing %v, env %v: OTLP finding %v, want %v (%+v)", withTracing, tc.env, got, want, fs)
			}
			for _, f := range fs {
				for _, v := range tc.env {
					if strings.Contains(f.Detail+f.Path, v) {
						t.Errorf("a finding quotes the environment: %+v", f)
					}
				}
			}
		}
	}
}

// TestPA11InternalNetwork: metrics and probes on a listener bound to a
// private address of an internal network, serving nothing else, are not
// on the public listener; bound to every address, to a public address, or
// sharing the server with an API route, they are.
func TestPA11InternalNetwork(t *testing.T) {
	cases := []struct {
		listen []any
		api    bool
		want   bool
	}{
		{[]any{"127.0.0.1:9090"}, false, false},
		{[]any{"172.30.3.11:9090"}, false, false},
		{[]any{"[fd00::11]:9090"}, false, false},
		{[]any{"172.30.3.11:9090", "127.0.0.1:9090"}, false, false},
		{[]any{":9090"}, false, true},
		{[]any{"0.0.0.0:9090"}, false, true},
		{[]any{"203.0.113.5:9090"}, false, true},
		{[]any{"172.30.3.11:9090", "203.0.113.5:9090"}, false, true},
		{[]any{"172.30.3.11:9090"}, true, true},
	}
	for _, tc := range cases {
		c := clean()
		srv := obj(c, "apps", "http", "servers", "internal")
		srv["listen"] = tc.listen
		if tc.api {
			srv["routes"] = append(srv["routes"].([]any), map[string]any{"handle": []any{map[string]any{"handler": "passerelle"}}})
		}
		got := slices.Contains(rulesOf(run(t, c)), "PA11")
		if got != tc.want {
			t.Errorf("listen %v, API route %v: PA11 %v, want %v", tc.listen, tc.api, got, tc.want)
		}
	}
}

// TestPA27Propagators: with tracing, the caller's trace context is taken
// unless OTEL_PROPAGATORS holds none.
func TestPA27Propagators(t *testing.T) {
	for env, want := range map[string]bool{"": true, "tracecontext,baggage": true, "none": false, "tracecontext,none": false,
		"tracecontext, none": true, " none": true, "none ": true} {
		c := clean()
		h := obj(c, "apps", "http", "servers", "public", "routes", 0)
		h["handle"] = append([]any{map[string]any{"handler": "tracing", "span": "passerelle"}}, h["handle"].([]any)...)
		if got := slices.Contains(rulesOf(runWithEnv(t, c, "OTEL_PROPAGATORS", env)), "PA27"); got != want {
			t.Errorf("OTEL_PROPAGATORS=%q: PA27 %t, want %t", env, got, want)
		}
	}
}

// TestPA10CaddyAdminEnv: without admin.listen, the local admin API listens
// where CADDY_ADMIN says.
func TestPA10CaddyAdminEnv(t *testing.T) {
	for env, want := range map[string]bool{"": false, "localhost:2019": false, "unix//run/passerelle/admin.sock": false, "0.0.0.0:2019": true, ":2019": true} {
		c := clean()
		delete(obj(c, "admin"), "listen")
		if got := slices.Contains(rulesOf(runWithEnv(t, c, "CADDY_ADMIN", env)), "PA10"); got != want {
			t.Errorf("CADDY_ADMIN=%q: PA10 %t, want %t", env, got, want)
		}
	}
}

// runWithEnv audits c with one environment variable set.
func runWithEnv(t *testing.T, c map[string]any, name, value string) []Finding {
	t.Helper()
	b, _ := json.Marshal(c)
	fs, err := Run(b, Options{
		ReadFile: func(string) ([]byte, error) { return []byte(goodHabilitations), nil },
		Getenv: func(n string) string {
			if n == name {
				return value
			}
			return ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestDurationAsCaddyReadsIt: durations in days, as caddy.ParseDuration
// reads them, are not missed.
func TestDurationAsCaddyReadsIt(t *testing.T) {
	for in, want := range map[string]time.Duration{"1d": 24 * time.Hour, "1.5d2h": 38 * time.Hour, "10ms": 10 * time.Millisecond,
		"1h30m": 90 * time.Minute, "2d30s": 48*time.Hour + 30*time.Second, "-1d": -24 * time.Hour} {
		if got, ok := duration(in); !ok || got != want {
			t.Errorf("duration(%q) = %v, %t, want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"d", "1md", "x"} {
		if _, ok := duration(bad); ok {
			t.Errorf("duration(%q) read", bad)
		}
	}
}

// TestPA29KeyFileModes: a provider's client key or a loaded certificate's
// key readable beyond its owner is flagged; 0600 and 0400 are not.
func TestPA29KeyFileModes(t *testing.T) {
	c := clean()
	proxy := obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0, "routes", 0, "handle", 1)
	obj(proxy, "transport")["tls"] = map[string]any{"client_certificate_file": "/etc/passerelle/cnav.crt", "client_certificate_key_file": "/etc/passerelle/cnav.key"}
	obj(c, "apps")["tls"] = map[string]any{"certificates": map[string]any{"load_files": []any{map[string]any{"certificate": "/etc/passerelle/site.crt", "key": "/etc/passerelle/site.key"}}}}
	b, _ := json.Marshal(c)
	for _, tc := range []struct {
		modes map[string]fs.FileMode
		want  int
	}{
		{map[string]fs.FileMode{"/etc/passerelle/cnav.key": 0o600, "/etc/passerelle/site.key": 0o400}, 0},
		{map[string]fs.FileMode{"/etc/passerelle/cnav.key": 0o640, "/etc/passerelle/site.key": 0o600}, 1},
		{map[string]fs.FileMode{"/etc/passerelle/cnav.key": 0o644, "/etc/passerelle/site.key": 0o604}, 2},
	} {
		findings, err := Run(b, Options{ReadFile: func(string) ([]byte, error) { return []byte(goodHabilitations), nil },
			Stat: func(p string) (fs.FileInfo, error) {
				m, ok := tc.modes[p]
				if !ok {
					t.Errorf("stat of %s, not a key", p)
				}
				return fileWithMode(m), nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range findings {
			if f.Rule == "PA29" {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("modes %v: %d PA29 findings, want %d: %+v", tc.modes, n, tc.want, findings)
		}
	}
}

// fileWithMode is the fs.FileInfo of a file of root's group with mode m.
type fileWithMode fs.FileMode

func (m fileWithMode) Name() string       { return "key" }
func (m fileWithMode) Size() int64        { return 0 }
func (m fileWithMode) Mode() fs.FileMode  { return fs.FileMode(m) }
func (m fileWithMode) ModTime() time.Time { return time.Time{} }
func (m fileWithMode) IsDir() bool        { return false }
func (m fileWithMode) Sys() any           { return nil }
