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

// logs returns logging.logs.
func (c *cfg) logs() map[string]any {
	l, _ := dig(c.root, "logging", "logs").(map[string]any)
	return l
}

// includes reports whether a log's include entry takes a logger: the
// logger itself or one of its parents (passerelle takes passerelle.audit).
func includes(include, logger string) bool {
	return logger == include || strings.HasPrefix(logger, include+".")
}

// LogFor returns the name of the log of Caddy's logging.logs (as JSON
// decodes it) that takes a logger's entries: the first one, in name order,
// whose include takes it (includes); "" when none does and the entries go
// to the default log.
func LogFor(logs map[string]any, logger string) string {
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		if slices.ContainsFunc(strs(logs[name], "include"), func(inc string) bool { return includes(inc, logger) }) {
			return name
		}
	}
	return ""
}

// sinkOf returns the log that receives a logger's entries: LogFor's, else
// the default one.
func (c *cfg) sinkOf(logger string) (string, map[string]any) {
	logs := c.logs()
	name := LogFor(logs, logger)
	if name == "" {
		name = "default"
	}
	m, _ := logs[name].(map[string]any)
	return name, m
}

func checkAccessLogQuery(c *cfg) []Finding {
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		logsCfg, ok := c.servers[name]["logs"].(map[string]any)
		if !ok {
			continue // no access log
		}
		for _, logger := range accessLoggers(logsCfg) {
			lname, l := c.sinkOf(logger)
			filter := func(field string) map[string]any {
				if str(l, "encoder", "format") != "filter" {
					return nil
				}
				f, _ := dig(l, "encoder", "fields", field).(map[string]any)
				return f
			}
			if !dropsQuery(filter("request>uri")) {
				out = append(out, find("PA12", "logging.logs."+lname, "server "+name+": request>uri logged with its query string"))
			}
			// Caddy redacts Authorization and Cookie, not the legacy API
			// key header: the habilitation's API token would be logged.
			if f := filter("request>headers>X-Api-Key"); f == nil || !slices.Contains([]string{"delete", "replace", "hash"}, str(f, "filter")) {
				out = append(out, find("PA12", "logging.logs."+lname, "server "+name+": request>headers>X-Api-Key logged as is"))
			}
		}
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

// accessLoggers are the logger names of a server's access log: per host
// (logger_names), the default one, or http.log.access.
func accessLoggers(logsCfg map[string]any) []string {
	var loggers []string
	if n := str(logsCfg, "default_logger_name"); n != "" {
		loggers = append(loggers, "http.log.access."+n)
	}
	names, _ := logsCfg["logger_names"].(map[string]any)
	for _, host := range slices.Sorted(maps.Keys(names)) {
		for _, n := range strs(names, host) {
			loggers = append(loggers, "http.log.access."+n)
		}
	}
	if len(loggers) == 0 {
		loggers = []string{"http.log.access"}
	}
	return loggers
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

func checkAuditSink(c *cfg) []Finding {
	aname, alog := c.sinkOf("passerelle.audit")
	if aname == "default" {
		return []Finding{find("PA14", "logging.logs", "no log includes passerelle.audit: the audit trail goes to the default log")}
	}
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		logsCfg, ok := c.servers[name]["logs"].(map[string]any)
		if !ok {
			continue
		}
		for _, logger := range accessLoggers(logsCfg) {
			lname, llog := c.sinkOf(logger)
			if lname == aname || sink(alog) == sink(llog) {
				out = append(out, find("PA14", "logging.logs."+aname, "the same sink as the access log of server "+name))
				break
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
