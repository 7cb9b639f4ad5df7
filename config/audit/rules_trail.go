package audit

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// checkAuditFailClosed (PA20): the audit trail goes through
// passerelle_buffered with on_full refuse, the only writer that stops data
// routes when its sink refuses records (SECURITY.md G09, I11), and not to
// Caddy's net writer (no TLS; what the kernel took for a dead connection
// is lost unseen). Every log that takes the trail is held to it, a copy
// as the original. An audit trail left in the default log is PA14's.
func checkAuditFailClosed(c *cfg) []Finding {
	var out []Finding
	for _, name := range c.auditLogs() {
		path := "logging.logs." + name + ".writer"
		switch w, _ := c.log(name)["writer"].(map[string]any); {
		case str(w, "output") != "passerelle_buffered":
			out = append(out, find("PA20", path, "written by "+orDefault(str(w, "output"), "stderr (the default)")+": a sink that refuses records does not stop data routes"))
		case str(w, "on_full") == "drop":
			out = append(out, find("PA20", path+".on_full", "drop: records are dropped when the sink refuses them, data routes keep serving"))
		case str(w, "writer", "output") == "net":
			out = append(out, find("PA20", path+".writer", "net: records travel without TLS, and a batch written into a connection the collector dropped is lost; write a file and ship it with an agent over TLS"))
		}
	}
	return out
}

// checkAuditSealed (PA23, SECURITY.md G09): the audit trail's records are
// sealed by the passerelle_sealed encoder, so that whoever holds the key
// can tell, wherever the trail went, a record altered, added or removed.
// Every log that takes the trail seals it: Caddy writes each record to
// all of them, and a copy unsealed is one altered unseen. An audit trail
// left in the default log is PA14's.
func checkAuditSealed(c *cfg) []Finding {
	var out []Finding
	for _, name := range c.auditLogs() {
		if format := str(c.log(name), "encoder", "format"); format != "passerelle_sealed" {
			out = append(out, find("PA23", "logging.logs."+name+".encoder", orDefault(format, "json (the default)")+
				": records not sealed; an altered, added or removed record goes unseen"))
		}
	}
	return out
}

// checkAuditUnfiltered (PA24, SECURITY.md G01, G09): every log that takes
// the audit trail keeps every record: no level above INFO, no sampling.
// Caddy drops what a log's level or sampling filters out before its
// encoder sees it, so such a record takes no sequence number: the seal
// cannot show it missing, and nothing counts it.
func checkAuditUnfiltered(c *cfg) []Finding {
	names := c.auditLogs()
	if names == nil {
		names = c.logsTaking("passerelle.audit")
	}
	var out []Finding
	for _, name := range names {
		log, path := c.log(name), "logging.logs."+name
		switch level := strings.ToUpper(str(log, "level")); level {
		case "", "INFO", "DEBUG": // DEBUG is PA13's
		default:
			out = append(out, find("PA24", path+".level", level+": the audit records (INFO) are dropped before they are sealed, unseen"))
		}
		if _, sampled := log["sampling"]; sampled {
			out = append(out, find("PA24", path+".sampling", "records dropped by sampling before they are sealed, unseen"))
		}
	}
	return out
}

// checkOnlyAuditRefuses (PA25, SECURITY.md G01): only the audit trail's
// passerelle_buffered writers refuse when full (on_full refuse, their
// default). While any such writer refuses, data routes answer 503 and
// their refusals go unrecorded: another log's failing sink (an access log)
// would stop the service and thin the audit trail, although the trail's
// own sink is healthy. Other logs drop what their sink refuses, counted
// (caddy_passerelle_log_lines_lost_total).
func checkOnlyAuditRefuses(c *cfg) []Finding {
	audits := c.logsTaking("passerelle.audit")
	logs := c.logs()
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		w, _ := dig(logs[name], "writer").(map[string]any)
		if slices.Contains(audits, name) || str(w, "output") != "passerelle_buffered" || str(w, "on_full") == "drop" {
			continue
		}
		out = append(out, find("PA25", "logging.logs."+name+".writer.on_full",
			"refuse (the default) on a log that is not the audit trail: its sink failing stops data routes"))
	}
	return out
}

// orDefault is s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Retention bounds of SECURITY.md G10 (CNIL, délibération 2021-122): audit
// records and operational logs are kept at least 6 months and, unless a
// written justification says otherwise (an ignore line), at most 12.
const (
	minRetentionDays = 183
	maxRetentionDays = 366
	// rollSlackDays: with a roll every day at least, a record outlives
	// roll_keep_for by up to two days: the day before its file is rolled,
	// and the day until the next roll deletes what has aged out (timberjack
	// deletes when it rolls, by the roll's date).
	rollSlackDays = 2
)

// Caddy's file writer defaults (modules/logging/filewriter.go), which a
// writer without roll_keep or roll_keep_days gets.
const (
	CaddyRollKeep     = 10
	CaddyRollKeepDays = 90
)

// checkRetention (PA22): every log written to a file on this host (the
// audit trail and the access logs, directly or through passerelle_buffered)
// keeps its records between 6 and 12 months, by age alone:
//   - it is rotated (not roll false), at least once a day (roll_interval
//     24h or less, or roll_at / roll_minutes): a file rolled only when full
//     keeps its first records past roll_keep_for by the time it took to
//     fill, weeks at low traffic;
//   - roll_keep_for (90 days by default) plus that slack lies in 6 to 12
//     months;
//   - roll_keep is -1: rolled files beyond roll_keep (10 by default) are
//     deleted whatever their age, so a positive count keeps 6 months or
//     not depending on the traffic (10 files of 100 MiB: months for a small
//     collectivité, days for a large one). The disk is then sized for 12
//     months of records; a full disk stops data routes (SECURITY.md G09),
//     it loses nothing.
//
// Logs shipped elsewhere (stdout, stderr, net) are retained by what
// receives them.
func checkRetention(c *cfg) []Finding {
	var out []Finding
	logs := c.logs()
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		log, _ := logs[name].(map[string]any)
		w, at := innerWriter(log)
		if str(w, "output") != "file" {
			continue
		}
		path := "logging.logs." + name + at
		if w["roll"] == false {
			out = append(out, find("PA22", path+".roll", "never rotated: kept without limit"))
			continue
		}
		switch days := intOr(w, "roll_keep_days", CaddyRollKeepDays); {
		case days < 0:
			out = append(out, find("PA22", path+".roll_keep_days", "rolled files never deleted by age"))
		case days < minRetentionDays || days+rollSlackDays > maxRetentionDays:
			out = append(out, find("PA22", path+".roll_keep_days", fmt.Sprintf("records kept %d to %d days, want within %d to %d (roll_keep_for %dh to %dh)",
				days, days+rollSlackDays, minRetentionDays, maxRetentionDays, minRetentionDays*24, (maxRetentionDays-rollSlackDays)*24)))
		}
		if keep := intOr(w, "roll_keep", CaddyRollKeep); keep > 0 {
			out = append(out, find("PA22", path+".roll_keep", fmt.Sprintf("rolled files beyond %d deleted whatever their age: whether 6 months are kept depends on the traffic; roll_keep -1 deletes by age alone", keep)))
		}
		if !dailyRoll(w) {
			out = append(out, find("PA22", path+".roll_interval", "not rolled every day: a file's first records outlive roll_keep_for by the time it takes to fill; roll_interval 24h"))
		}
	}
	return out
}

// dailyRoll reports whether a file writer rolls its file every day at
// least: roll_interval of 24 h or less (a number of nanoseconds, or a Go
// duration), or rolls at set times (roll_at, daily; roll_minutes, hourly).
func dailyRoll(w map[string]any) bool {
	if len(strs(w, "roll_at")) > 0 {
		return true
	}
	if m, _ := w["roll_minutes"].([]any); len(m) > 0 {
		return true
	}
	d, _ := duration(w["roll_interval"])
	return d > 0 && d <= 24*time.Hour
}

// intOr is the number at key, or def when it is missing or zero (Caddy's
// zero values mean its default).
func intOr(obj map[string]any, key string, def int) int {
	if v, ok := obj[key].(float64); ok && v != 0 {
		return int(v)
	}
	return def
}
