package audit

import (
	"slices"
	"testing"
)

// TestG10_Retention (SECURITY.md G10): PA22 holds every log written to a
// file between 6 and 12 months by age alone, counting Caddy's defaults (90
// days, 10 files, rolled only when full), and leaves the logs shipped
// elsewhere to what receives them. The deployment manifests pass it:
// TestAuditCommand runs the audit on deploy/Caddyfile.production, and
// deploy/compose's test on its Caddyfile.
// req: G10
func TestG10_Retention(t *testing.T) {
	audit := func(c map[string]any) map[string]any { return obj(c, "logging", "logs", "audit", "writer", "writer") }
	const at = "logging.logs.audit.writer.writer."
	for _, tc := range []struct {
		name   string
		change func(c map[string]any)
		paths  []string // the PA22 findings, by path
	}{
		{"6 and 12 months, by age alone, rolled daily", func(map[string]any) {}, nil},
		{"182 days", func(c map[string]any) { audit(c)["roll_keep_days"] = 182.0 }, []string{at + "roll_keep_days"}},
		{"183 days", func(c map[string]any) { audit(c)["roll_keep_days"] = 183.0 }, nil},
		{"364 days (up to 366)", func(c map[string]any) { audit(c)["roll_keep_days"] = 364.0 }, nil},
		{"365 days (up to 367)", func(c map[string]any) { audit(c)["roll_keep_days"] = 365.0 }, []string{at + "roll_keep_days"}},
		{"never deleted by age", func(c map[string]any) { audit(c)["roll_keep_days"] = -1.0 }, []string{at + "roll_keep_days"}},
		{"Caddy's 90 days", func(c map[string]any) { delete(audit(c), "roll_keep_days") }, []string{at + "roll_keep_days"}},
		{"Caddy's 10 files", func(c map[string]any) { delete(audit(c), "roll_keep") }, []string{at + "roll_keep"}},
		{"a count, however large", func(c map[string]any) { audit(c)["roll_keep"] = 100000.0 }, []string{at + "roll_keep"}},
		{"rolled only when full", func(c map[string]any) { delete(audit(c), "roll_interval") }, []string{at + "roll_interval"}},
		{"rolled every two days", func(c map[string]any) { audit(c)["roll_interval"] = 172800e9 }, []string{at + "roll_interval"}},
		{"rolled every 12 h, as a string", func(c map[string]any) { audit(c)["roll_interval"] = "12h" }, nil},
		{"rolled at midnight", func(c map[string]any) { delete(audit(c), "roll_interval"); audit(c)["roll_at"] = []any{"00:00"} }, nil},
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
			if !slices.Equal(paths, tc.paths) {
				t.Fatalf("PA22 at %v, want %v", paths, tc.paths)
			}
		})
	}
}
