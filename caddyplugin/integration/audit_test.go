package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// audit runs the built binary's `passerelle audit` from the repository
// root and returns its exit status and output.
func audit(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	return passerelle(t, env, append([]string{"audit"}, args...)...)
}

// passerelle runs the built binary from the repository root with args and
// env added to the test's environment, and returns its exit status and
// output.
func passerelle(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	case err != nil:
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestAuditCommand: the README example is critical (the sandbox), the
// production template passes at the lowest threshold, exit statuses 0, 1
// and 2, the ignore file needs justifications, no secret is printed.
func TestAuditCommand(t *testing.T) {
	code, out := audit(t, nil, "--config", "Caddyfile.example")
	if code != 1 || !strings.Contains(out, "PA01 CRITICAL") || strings.Contains(out, "PA28") {
		t.Fatalf("README example: exit %d\n%s", code, out)
	}
	for _, secret := range []string{"sandbox-fd-client-secret-not-for-production", "sandbox-provider-key", "sandbox-fs-client-secret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("the report prints a secret: %s", secret)
		}
	}
	habs := []string{"PASSERELLE_HABILITATIONS=deploy/production/habilitations.example.yaml"}
	if code, out := audit(t, habs, "--config", "deploy/Caddyfile.production", "--fail-on", "low"); code != 0 {
		t.Fatalf("production template: exit %d\n%s", code, out)
	}
	dir := t.TempDir()
	// A JSON configuration with keys in another case, which Caddy reads
	// (PA28, every module of the binary known): the app's Mode, the
	// admin's Listen, reverse_proxy's transport's Insecure_Skip_Verify.
	cased := filepath.Join(dir, "cased.json")
	_ = os.WriteFile(cased, []byte(`{"admin":{"Listen":"localhost:2019"},"apps":{"passerelle":{"mode":"production","Mode":"sandbox"},
		"http":{"servers":{"Public":{"listen":[":443"],"routes":[{"handle":[{"handler":"passerelle"},{"handler":"reverse_proxy",
		"headers":{"request":{"set":{"Authorization":["Bearer x"]}}},
		"transport":{"protocol":"http","tls":{"Insecure_Skip_Verify":true}},"upstreams":[{"dial":"provider.example:443"}]}]}]}}}}}`), 0o600)
	code, out = audit(t, nil, "--config", cased)
	for _, path := range []string{"admin.Listen", "apps.passerelle.Mode", "handle[1].transport.tls.Insecure_Skip_Verify"} {
		if code != 1 || !strings.Contains(out, "PA28 HIGH") || !strings.Contains(out, path) {
			t.Fatalf("a key in another case, %s: exit %d\n%s", path, code, out)
		}
	}
	if strings.Count(out, "PA28 HIGH") != 3 {
		t.Fatalf("free-form names flagged (server, header):\n%s", out)
	}
	// The provider reached from the site's error routes, as the Caddyfile
	// adapter writes handle_errors: PA05.
	prod, err := os.ReadFile("../../deploy/Caddyfile.production")
	if err != nil {
		t.Fatal(err)
	}
	const end = "\t\t\t\tresponse_header_timeout 10s\n\t\t\t}\n\t\t}\n\t}\n"
	if !strings.Contains(string(prod), end) {
		t.Fatal("the production template's provider block changed: update this test")
	}
	errs := filepath.Join(dir, "Caddyfile.errors")
	_ = os.WriteFile(errs, []byte(strings.Replace(string(prod), end, end+"\thandle_errors {\n\t\treverse_proxy https://provider.example\n\t}\n", 1)), 0o600)
	if code, out := audit(t, habs, "--config", errs, "--adapter", "caddyfile"); code != 1 || !strings.Contains(out, "PA05 HIGH") || !strings.Contains(out, ".errors.routes[0]") {
		t.Fatalf("a provider reached from handle_errors: exit %d\n%s", code, out)
	}
	ignore := filepath.Join(dir, "ignore")
	_ = os.WriteFile(ignore, []byte("PA01 -- the sandbox, on a developer's machine\n"), 0o600)
	if code, out := audit(t, nil, "--config", "Caddyfile.example", "--ignore", ignore, "--fail-on", "critical"); code != 0 || !strings.Contains(out, "PA02") {
		t.Fatalf("criticals ignored, --fail-on critical: exit %d\n%s", code, out)
	}
	if code, _ := audit(t, nil, "--config", "Caddyfile.example", "--ignore", ignore, "--fail-on", "high"); code != 1 {
		t.Fatalf("--fail-on high with high findings: exit %d", code)
	}
	_ = os.WriteFile(ignore, []byte("PA01\n"), 0o600)
	if code, _ := audit(t, nil, "--config", "Caddyfile.example", "--ignore", ignore); code != 2 {
		t.Fatalf("an ignore line without justification: exit %d", code)
	}
	if code, _ := audit(t, nil, "--config", filepath.Join(dir, "missing")); code != 2 {
		t.Fatalf("unreadable config: exit %d", code)
	}
	bad := filepath.Join(dir, "Caddyfile")
	_ = os.WriteFile(bad, []byte("{\n\tnot_a_directive\n}\n"), 0o600)
	if code, _ := audit(t, nil, "--config", bad); code != 2 {
		t.Fatalf("a Caddyfile that does not adapt: exit %d", code)
	}
	if code, out := audit(t, nil, "--config", "Caddyfile.example", "--format", "json"); code != 1 || !strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Fatalf("json: exit %d %s", code, out)
	}
}

// req: G03
// TestSystemdStartAuditRefusesCivilStatusInLogs: the shipped unit's
// ExecStartPre audit, run as the unit runs it, stops a start whose access
// log keeps identité query strings (PA12): the production template with
// its request>uri filter removed; a reload runs the same audit first.
func TestSystemdStartAuditRefusesCivilStatusInLogs(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/systemd/passerelle.service")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	var reload []string // ExecReload's commands, in order
	for line := range strings.Lines(string(unit)) {
		line = strings.TrimSpace(line)
		if cmd, ok := strings.CutPrefix(line, "ExecStartPre="); ok && strings.Contains(cmd, " audit ") {
			args = strings.Fields(cmd)[1:] // the binary's path left out
		}
		if cmd, ok := strings.CutPrefix(line, "ExecReload="); ok {
			reload = append(reload, cmd)
		}
	}
	if len(args) == 0 || args[0] != "audit" {
		t.Fatalf("no ExecStartPre audit in the unit: %q", args)
	}
	// systemctl reload runs the same audit first, and stops on its failure.
	if len(reload) != 2 || strings.Join(strings.Fields(reload[0])[1:], " ") != strings.Join(args, " ") || !strings.Contains(reload[1], " reload ") {
		t.Fatalf("ExecReload does not run the start's audit before the reload: %q", reload)
	}
	prod, err := os.ReadFile("../../deploy/Caddyfile.production")
	if err != nil {
		t.Fatal(err)
	}
	const filter = "request>uri regexp \\?.* ?redacted\n"
	if !strings.Contains(string(prod), filter) {
		t.Fatal("the production template's request>uri filter moved")
	}
	leaky := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(leaky, []byte(strings.Replace(string(prod), filter, "\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			args[i+1] = leaky
		}
	}
	habs := []string{"PASSERELLE_HABILITATIONS=deploy/production/habilitations.example.yaml"}
	if code, out := passerelle(t, habs, args...); code != 1 || !strings.Contains(out, "PA12") {
		t.Fatalf("the unit's start-up audit let a configuration that logs civil status start: exit %d\n%s", code, out)
	}
}

// req: D09
// TestREADMEInternalListenersBound: every Caddyfile example of the README
// that serves health probes or metrics adapts as it is written and listens
// on loopback only: a site address alone (http://127.0.0.1:9090) only
// matches the Host header, and Caddy would listen on every interface (PA07).
func TestREADMEInternalListenersBound(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, block := range strings.Split(string(readme), "```caddyfile")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.Contains(block, "passerelle_health") && !strings.Contains(block, "metrics /") {
			continue
		}
		n++
		adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(block), nil)
		if err != nil {
			t.Errorf("README Caddyfile example %d does not adapt: %v\n%s", i+1, err, block)
			continue
		}
		var cfg struct {
			Apps struct {
				HTTP struct {
					Servers map[string]struct {
						Listen []string `json:"listen"`
					} `json:"servers"`
				} `json:"http"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(adapted, &cfg); err != nil {
			t.Fatal(err)
		}
		for name, srv := range cfg.Apps.HTTP.Servers {
			for _, l := range srv.Listen {
				if !strings.HasPrefix(l, "127.0.0.1:") && !strings.HasPrefix(l, "[::1]:") {
					t.Errorf("README Caddyfile example %d: server %s listens on %s, not loopback only", i+1, name, l)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no README example serves probes or metrics: the test reads nothing")
	}
}
