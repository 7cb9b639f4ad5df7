package audit

// The rules on logs: the access log's query strings and API key (PA12),
// log levels (PA13) and the audit trail's own sink (PA14), with the
// helpers that find which log takes which logger.

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// accessLoggerNamesVar is the variable that names a request's access
// loggers (caddyhttp.AccessLoggerNameVarKey).
const accessLoggerNamesVar = "access_logger_names"

// logs returns logging.logs.
func (c *cfg) logs() map[string]any {
	l, _ := dig(c.root, "logging", "logs").(map[string]any)
	return l
}

// takes reports whether a log of logging.logs takes a logger's entries, as
// Caddy's CustomLog.loggerAllowed decides: every logger when the log has
// neither include nor exclude; otherwise the longest namespace of include
// that is the logger or one of its parents (passerelle takes
// passerelle.audit) must be longer than the longest of exclude ("*"
// excludes every module's logger).
func takes(log any, logger string) bool {
	include, exclude := strs(log, "include"), strs(log, "exclude")
	if len(include) == 0 && len(exclude) == 0 {
		return true
	}
	longest := func(namespaces []string) int {
		n := 0
		for _, ns := range namespaces {
			if strings.HasPrefix(logger+".", ns+".") && len(ns) > n {
				n = len(ns)
			}
		}
		return n
	}
	accept, reject := longest(include), longest(exclude)
	if len(include) > 0 && accept == 0 || slices.Contains(exclude, "*") {
		return false
	}
	return accept > reject || len(include) == 0 && reject == 0
}

// LogFor returns the name of the first log of Caddy's logging.logs (as
// JSON decodes it), in name order, that includes a logger by name and
// takes its entries (takes); "" when none does and the entries go to the
// default log only.
func LogFor(logs map[string]any, logger string) string {
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		if len(strs(logs[name], "include")) > 0 && takes(logs[name], logger) {
			return name
		}
	}
	return ""
}

// logsTaking returns, in name order, every log that takes a logger's
// entries: Caddy writes each entry to all of them, not to the first one
// only. Without a default log in logging.logs, Caddy sets up its own
// (stderr, every logger), named default here.
func (c *cfg) logsTaking(logger string) []string {
	logs := c.logs()
	names := slices.Collect(maps.Keys(logs))
	if _, ok := logs["default"]; !ok {
		names = append(names, "default")
	}
	slices.Sort(names)
	return slices.DeleteFunc(names, func(n string) bool { return !takes(logs[n], logger) })
}

// log returns one log of logging.logs; nil for Caddy's own default log.
func (c *cfg) log(name string) map[string]any {
	l, _ := c.logs()[name].(map[string]any)
	return l
}

// auditLogs returns the logs that take the audit trail, when one of them
// includes it by name; nil when the trail is left to logs that take every
// logger (PA14's).
func (c *cfg) auditLogs() []string {
	names := c.logsTaking("passerelle.audit")
	if !slices.ContainsFunc(names, func(n string) bool { return len(strs(c.log(n), "include")) > 0 }) {
		return nil
	}
	return names
}

// checkAccessLogQuery (PA12): every log that takes a server's access
// logger filters the query string and the API key out of it, not only the
// first one: a second log taking http.log.access, or one without include,
// writes the same entries through its own encoder.
func checkAccessLogQuery(c *cfg) []Finding {
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		logsCfg, ok := c.servers[name]["logs"].(map[string]any)
		if !ok {
			continue // no access log
		}
		for _, logger := range c.accessLoggers(name, logsCfg) {
			for _, lname := range c.logsTaking(logger) {
				out = append(out, accessLogFilters(c.log(lname), lname, name)...)
			}
		}
	}
	return out
}

// accessLogFilters checks the encoder of one log taking server's access
// logger.
func accessLogFilters(l map[string]any, lname, server string) []Finding {
	var out []Finding
	filter := func(field string) map[string]any {
		if str(l, "encoder", "format") != "filter" {
			return nil
		}
		f, _ := dig(l, "encoder", "fields", field).(map[string]any)
		return f
	}
	// A delete or replace filter on request or request>headers drops
	// the fields below it too.
	parentDropped := func(field string) bool {
		for i := strings.LastIndex(field, ">"); i > 0; i = strings.LastIndex(field[:i], ">") {
			if f := str(filter(field[:i]), "filter"); f == "delete" || f == "replace" {
				return true
			}
		}
		return false
	}
	if !dropsQuery(filter("request>uri")) && !parentDropped("request>uri") {
		out = append(out, find("PA12", "logging.logs."+lname, "server "+server+": request>uri logged with its query string"))
	}
	// Caddy redacts Authorization and Cookie, not the legacy API key
	// header: the habilitation's API token would be logged.
	if f := filter("request>headers>X-Api-Key"); !parentDropped("request>headers>X-Api-Key") &&
		(f == nil || !slices.Contains([]string{"delete", "replace", "hash"}, str(f, "filter"))) {
		out = append(out, find("PA12", "logging.logs."+lname, "server "+server+": request>headers>X-Api-Key logged as is"))
	}
	return out
}

// dropsQuery reports whether a log filter of request>uri keeps no query
// string: delete, replace, or a regexp that, tried on the URIs of several
// routes, leaves each path followed by the same text whatever the query (a
// query filter deleting some parameters, or a regexp removing some of them
// or applying to one route only, keeps the rest).
func dropsQuery(f map[string]any) bool {
	switch str(f, "filter") {
	case "delete", "replace":
		return true
	case "regexp":
		re, err := regexp.Compile(str(f, "regexp"))
		if err != nil {
			return false
		}
		probes := [][2]string{ // path, query
			{"/v3/dss/quotient_familial/identite", "?nomNaissance=DUPONT&prenoms%5B%5D=JEAN&anneeDateNaissance=1962&moisDateNaissance=8&recipient=1"},
			{"/v3/men/scolarites/identite", "?nomNaissance=MARTIN&prenoms[]=LEA&sexeEtatCivil=F&codeCogInseeCommuneNaissance=75107"},
			{"/api/v2/composition-familiale-v2", "?nomUsage=DURAND&jourDateNaissance=24&ine=1234567890A"},
		}
		rest := ""
		for i, p := range probes {
			got, ok := strings.CutPrefix(re.ReplaceAllString(p[0]+p[1], str(f, "value")), p[0])
			if !ok || i > 0 && got != rest {
				return false
			}
			rest = got
		}
		return true
	}
	return false
}

// accessLoggers are the logger names of a server's access log (logsCfg):
// per host (logger_names), and the default one (default_logger_name, else
// http.log.access), which takes every request to a host logger_names does
// not map, unless skip_unmapped_hosts: a Host header with a trailing dot,
// an address, a name the load balancer passes on. A request whose
// handlers set the variable access_logger_names (a vars handler, the
// Caddyfile's log_name) is logged under those names instead, whatever its
// host: they are added (an empty one is http.log.access).
func (c *cfg) accessLoggers(server string, logsCfg map[string]any) []string {
	var loggers []string
	names, _ := logsCfg["logger_names"].(map[string]any)
	for _, host := range slices.Sorted(maps.Keys(names)) {
		// A string is one name, as Caddy's StringArray reads it.
		if n, ok := names[host].(string); ok {
			loggers = append(loggers, accessLogger(n))
		}
		for _, n := range strs(names, host) {
			loggers = append(loggers, accessLogger(n))
		}
	}
	if len(loggers) == 0 || logsCfg["skip_unmapped_hosts"] != true {
		loggers = append(loggers, accessLogger(str(logsCfg, "default_logger_name")))
	}
	for _, h := range c.named("vars") {
		if h.server != server {
			continue
		}
		// Caddy takes the variable only as a list (a string is ignored).
		names, _ := h.obj[accessLoggerNamesVar].([]any)
		for _, n := range names {
			if n, ok := n.(string); ok {
				loggers = append(loggers, accessLogger(n))
			}
		}
	}
	return loggers
}

// accessLogger is the logger of an access logger name: http.log.access
// itself for none.
func accessLogger(name string) string {
	if name == "" {
		return "http.log.access"
	}
	return "http.log.access." + name
}

func checkLogLevels(c *cfg) []Finding {
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		if dig(c.servers[name], "logs", "should_log_credentials") == true {
			out = append(out, find("PA13", "apps.http.servers."+name+".logs.should_log_credentials", "credentials logged"))
		}
		if dig(c.servers[name], "logs", "trace") == true {
			out = append(out, find("PA13", "apps.http.servers."+name+".logs.trace", "trace logging"))
		}
	}
	logs := c.logs()
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		if strings.EqualFold(str(logs[name], "level"), "debug") {
			out = append(out, find("PA13", "logging.logs."+name+".level", "DEBUG"))
		}
	}
	return out
}

// checkAuditSink (PA14): a log includes the audit trail by name, and no
// log that takes it writes where an access log writes (the same log, or
// the same sink).
func checkAuditSink(c *cfg) []Finding {
	audits := c.auditLogs()
	if audits == nil {
		return []Finding{find("PA14", "logging.logs", "no log includes passerelle.audit: the audit trail goes to the default log")}
	}
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		logsCfg, ok := c.servers[name]["logs"].(map[string]any)
		if !ok {
			continue
		}
		for _, aname := range audits {
			shares := func(logger string) bool {
				return slices.ContainsFunc(c.logsTaking(logger), func(lname string) bool {
					return lname == aname || sink(c.log(aname)) == sink(c.log(lname))
				})
			}
			if slices.ContainsFunc(c.accessLoggers(name, logsCfg), shares) {
				out = append(out, find("PA14", "logging.logs."+aname, "the same sink as the access log of server "+name))
			}
		}
	}
	return out
}

// innerWriter returns the writer that writes a log's records, looking
// through passerelle_buffered (which wraps another), and its JSON path
// from the log; nil when the log names none (stderr).
func innerWriter(log map[string]any) (map[string]any, string) {
	w, _ := log["writer"].(map[string]any)
	path := ".writer"
	for str(w, "output") == "passerelle_buffered" {
		w, _ = w["writer"].(map[string]any)
		path += ".writer"
	}
	return w, path
}

// sink names where a log's records end up, whatever writes them there:
// the innermost writer (passerelle_buffered wraps another) and its file or
// address; stderr when the log names no writer.
func sink(log map[string]any) string {
	w, _ := innerWriter(log)
	switch out := str(w, "output"); out {
	case "":
		return "stderr"
	case "file":
		return "file " + filepath.Clean(str(w, "filename"))
	case "net":
		return "net " + str(w, "address")
	default:
		return out
	}
}
