package audit

import (
	"testing"
)

// TestG10_Retention (SECURITY.md G10): PA22 holds every log written to a
// file between 6 and 12 months, counting Caddy's defaults (90 days, 10
// files), and leaves the logs shipped elsewhere to what receives them.
// The deployment manifests pass it: TestAuditCommand runs the audit on
// deploy/Caddyfile.production, deploy/compose's test on its Caddyfile.
// req: G10
func TestG10_Retention(t *testing.T) {
	audit := func(c map[string]any) map[string]any { return obj(c, "logging", "logs", "audit", "writer", "writer") }
	for _, tc := range []struct {
		name   string
		change func(c map[string]any)
		paths  []string // the PA22 findings, by path
	}{
		{"6 and 12 months, a file a day or more", func(map[string]any) {}, nil},
		{"182 days", func(c map[string]any) { audit(c)["roll_keep_days"] = 182.0 }, []string{"logging.logs.audit.writer.writer.roll_keep_days"}},
		{"183 days", func(c map[string]any) { audit(c)["roll_keep_days"] = 183.0 }, nil},
		{"366 days", func(c map[string]any) { audit(c)["roll_keep_days"] = 366.0 }, nil},
		{"367 days", func(c map[string]any) { audit(c)["roll_keep_days"] = 367.0 }, []string{"logging.logs.audit.writer.writer.roll_keep_days"}},
		{"Caddy's 90 days", func(c map[string]any) { delete(audit(c), "roll_keep_days") }, []string{"logging.logs.audit.writer.writer.roll_keep_days"}},
		{"Caddy's 10 files", func(c map[string]any) { delete(audit(c), "roll_keep") }, []string{"logging.logs.audit.writer.writer.roll_keep"}},
		{"fewer files than days", func(c map[string]any) { audit(c)["roll_keep"] = 364.0 }, []string{"logging.logs.audit.writer.writer.roll_keep"}},
		{"as many files as days", func(c map[string]any) { audit(c)["roll_keep"] = 365.0 }, nil},
		{"never rotated", func(c map[string]any) { obj(c, "logging", "logs", "log0", "writer")["roll"] = false },
			[]string{"logging.logs.log0.writer.roll"}},
		{"the access log to stdout", func(c map[string]any) {
			obj(c, "logging", "logs", "log0")["writer"] = map[string]any{"output": "stdout"}
		}, nil},
		{"the audit trail through the net writer", func(c map[string]any) {
			obj(c, "logging", "logs", "audit", "writer")["writer"] = map[string]any{"output": "net", "address": "tcp/logs.example:6514"}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clean()
			tc.change(c)
			var paths []string
			for _, f := range run(t, c) {
				if f.Rule == "PA22" {
					paths = append(paths, f.Path)
				}
			}
			if len(paths) != len(tc.paths) || len(paths) > 0 && paths[0] != tc.paths[0] {
				t.Fatalf("PA22 at %v, want %v", paths, tc.paths)
			}
		})
	}
}
