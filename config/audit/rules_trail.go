package audit

import (
	"fmt"
	"maps"
	"slices"
)

// checkAuditFailClosed (PA20): the audit trail goes through
// passerelle_buffered with on_full refuse, the only writer that stops data
// routes when its sink refuses records (SECURITY.md G09, I11), and not to
// Caddy's net writer (no TLS; what the kernel took for a dead connection
// is lost unseen). An audit trail left in the default log is PA14's.
func checkAuditFailClosed(c *cfg) []Finding {
	name, log := c.sinkOf("passerelle.audit")
	if name == "default" {
		return nil
	}
	path := "logging.logs." + name + ".writer"
	switch w, _ := log["writer"].(map[string]any); {
	case str(w, "output") != "passerelle_buffered":
		return []Finding{find("PA20", path, "written by "+orNone(str(w, "output"))+": a sink that refuses records does not stop data routes")}
	case str(w, "on_full") == "drop":
		return []Finding{find("PA20", path+".on_full", "drop: records are dropped when the sink refuses them, data routes keep serving")}
	case str(w, "writer", "output") == "net":
		return []Finding{find("PA20", path+".writer", "net: records travel without TLS, and a batch written into a connection the collector dropped is lost; write a file and ship it with an agent over TLS")}
	}
	return nil
}

// orNone is s, or "stderr (the default)" when s is empty.
func orNone(s string) string {
	if s == "" {
		return "stderr (the default)"
	}
	return s
}

// Retention bounds of SECURITY.md G10 (CNIL, délibération 2021-122): audit
// records and operational logs are kept at least 6 months and, unless a
// written justification says otherwise (an ignore line), at most 12.
const (
	minRetentionDays = 183
	maxRetentionDays = 366
)

// Caddy's file writer defaults (modules/logging/filewriter.go).
const (
	defaultRollKeep     = 10
	defaultRollKeepDays = 90
)

// checkRetention (PA22): every log written to a file on this host (the
// audit trail and the access logs, directly or through passerelle_buffered)
// is rotated, its rolled files are kept between 6 and 12 months
// (roll_keep_for, 90 days by default), and the number of files kept
// (roll_keep, 10 by default) is at least one a day over that time: rolled
// files beyond roll_keep are deleted whatever their age, so with the
// default the trail holds ten files, a few days at any steady traffic.
// Logs shipped elsewhere (stdout, stderr, net) are retained by what
// receives them.
func checkRetention(c *cfg) []Finding {
	var out []Finding
	logs := c.logs()
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		path := "logging.logs." + name + ".writer"
		w, _ := dig(logs[name], "writer").(map[string]any)
		for w != nil && str(w, "output") != "file" {
			w, _ = w["writer"].(map[string]any) // passerelle_buffered
			path += ".writer"
		}
		if w == nil {
			continue
		}
		if w["roll"] == false {
			out = append(out, find("PA22", path+".roll", "never rotated: kept without limit"))
			continue
		}
		days, keep := intOr(w, "roll_keep_days", defaultRollKeepDays), intOr(w, "roll_keep", defaultRollKeep)
		if days < minRetentionDays || days > maxRetentionDays {
			out = append(out, find("PA22", path+".roll_keep_days", fmt.Sprintf("rolled files kept %d days, want %d to %d", days, minRetentionDays, maxRetentionDays)))
		}
		if keep < min(days, maxRetentionDays) {
			out = append(out, find("PA22", path+".roll_keep", fmt.Sprintf("at most %d rolled files kept, fewer than one a day over %d days: the oldest go before their time", keep, days)))
		}
	}
	return out
}

// intOr is the number at key, or def when it is missing or zero (Caddy's
// zero values mean its default).
func intOr(obj map[string]any, key string, def int) int {
	if v, ok := obj[key].(float64); ok && v != 0 {
		return int(v)
	}
	return def
}
