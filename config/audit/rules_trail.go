package audit

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
