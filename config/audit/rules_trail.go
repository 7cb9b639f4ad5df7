package audit

// checkAuditFailClosed (PA20): the audit trail goes through
// passerelle_buffered with on_full refuse, the only writer that stops data
// routes when its sink refuses records (SECURITY.md G09, I11). An audit
// trail left in the default log is PA14's.
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
