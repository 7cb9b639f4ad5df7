package audit

import (
	"slices"
	"testing"
)

// TestLogsAsCaddyRoutesThem: Caddy writes a logger's entries to every log
// whose include and exclude take it (the longest match wins within a log),
// and to a default log that takes everything when logging.logs names none.
// A second log taking the audit trail or the access log keeps a copy the
// first one's encoder does not protect; a log whose exclude drops the
// audit trail does not take it, whatever its include.
func TestLogsAsCaddyRoutesThem(t *testing.T) {
	logs := func(c map[string]any) map[string]any { return obj(c, "logging", "logs") }
	cases := []struct {
		name  string
		rules []string // nil: clean
		add   func(c map[string]any)
	}{
		{"a second log including passerelle: an unsealed copy", []string{"PA20", "PA23"}, func(c map[string]any) {
			logs(c)["zz_app"] = map[string]any{"include": []any{"passerelle"}}
		}},
		{"a log without include: the audit trail and the access log, unfiltered", []string{"PA12", "PA14", "PA20", "PA23"}, func(c map[string]any) {
			logs(c)["shipper"] = map[string]any{"writer": map[string]any{"output": "stdout"}}
		}},
		{"a second access log including http.log.access", []string{"PA12"}, func(c map[string]any) {
			logs(c)["zz_http"] = map[string]any{"include": []any{"http.log.access"}, "writer": map[string]any{"output": "stdout"}}
		}},
		{"no default log: Caddy's own takes everything", []string{"PA12", "PA14", "PA20", "PA23"}, func(c map[string]any) {
			delete(logs(c), "default")
		}},
		{"a default log that does not exclude the audit trail", []string{"PA20", "PA23"}, func(c map[string]any) {
			logs(c)["default"] = map[string]any{"exclude": []any{"http.log.access"}}
		}},
		{"the passerelle log excluding the audit trail", nil, func(c map[string]any) {
			logs(c)["app"] = map[string]any{"include": []any{"passerelle"}, "exclude": []any{"passerelle.audit"},
				"writer": map[string]any{"output": "stdout"}}
		}},
		{"no header logged at all", nil, func(c map[string]any) {
			fields := obj(c, "logging", "logs", "log0", "encoder", "fields")
			delete(fields, "request>headers>X-Api-Key")
			fields["request>headers"] = map[string]any{"filter": "delete"}
		}},
		{"the default log excluding every module", nil, func(c map[string]any) {
			logs(c)["default"] = map[string]any{"exclude": []any{"*"}}
		}},
	}
	for _, tc := range cases {
		c := clean()
		tc.add(c)
		got := rulesOf(run(t, c))
		slices.Sort(got)
		if !slices.Equal(got, tc.rules) {
			t.Errorf("%s: rules %v, want %v", tc.name, got, tc.rules)
		}
	}
}

// TestUnmappedHostsAccessLog: with logger_names, Caddy logs a request to a
// host they do not map (api.mairie.example. with its trailing dot) to the
// default access logger, http.log.access, unless skip_unmapped_hosts: the
// default log then writes its query string and X-Api-Key unless it
// excludes http.log.access.
func TestUnmappedHostsAccessLog(t *testing.T) {
	c := clean()
	obj(c, "logging", "logs", "default")["exclude"] = []any{"http.log.access.log0", "passerelle.audit"}
	if got := rulesOf(run(t, c)); !slices.Equal(got, []string{"PA12"}) {
		t.Errorf("the default log takes unmapped hosts' requests: %v, want PA12", got)
	}
	obj(publicServer(c), "logs")["skip_unmapped_hosts"] = true
	if got := run(t, c); len(got) != 0 {
		t.Errorf("skip_unmapped_hosts: %+v", got)
	}
}

// TestAccessLoggerNamesVar: a request whose handlers set
// access_logger_names (the Caddyfile's log_name, a vars handler) is
// logged under those names, whatever its host: a log taking one of them
// writes its query string and X-Api-Key unless it filters them (PA12),
// and shares the audit trail's sink if it writes there (PA14). A
// logger_names value may be one string, as Caddy reads it.
func TestAccessLoggerNamesVar(t *testing.T) {
	logName := func(c map[string]any, names ...any) {
		addRoute(c, map[string]any{"handler": "vars", "access_logger_names": names},
			map[string]any{"handler": "static_response", "status_code": 204.0})
	}
	cases := []struct {
		name  string
		rules []string
		add   func(c map[string]any)
	}{
		{"log_name to a log without filters", []string{"PA12"}, func(c map[string]any) {
			obj(c, "logging", "logs")["site"] = map[string]any{"include": []any{"http.log.access.site"}, "writer": map[string]any{"output": "stdout"}}
			logName(c, "site")
		}},
		{"log_name to the audit trail's file", []string{"PA12", "PA14"}, func(c map[string]any) {
			obj(c, "logging", "logs")["site"] = map[string]any{"include": []any{"http.log.access.site"},
				"writer": map[string]any{"output": "file", "filename": "/var/log/passerelle/audit.log",
					"roll_keep_days": 363.0, "roll_keep": -1.0, "roll_interval": 86400e9}}
			logName(c, "site")
		}},
		{"log_name \"\": the default access logger", []string{"PA12"}, func(c map[string]any) {
			obj(publicServer(c), "logs")["skip_unmapped_hosts"] = true
			obj(c, "logging", "logs", "default")["exclude"] = []any{"http.log.access.log0", "passerelle.audit"}
			logName(c, "")
		}},
		{"log_name to the filtered log", nil, func(c map[string]any) { logName(c, "log0") }},
		{"a logger_names string", []string{"PA12"}, func(c map[string]any) {
			obj(c, "logging", "logs")["site"] = map[string]any{"include": []any{"http.log.access.site"}, "writer": map[string]any{"output": "stdout"}}
			obj(publicServer(c), "logs", "logger_names")["site.example"] = "site"
		}},
	}
	for _, tc := range cases {
		c := clean()
		tc.add(c)
		got := rulesOf(run(t, c))
		slices.Sort(got)
		if !slices.Equal(got, tc.rules) {
			t.Errorf("%s: rules %v, want %v", tc.name, got, tc.rules)
		}
	}
}
