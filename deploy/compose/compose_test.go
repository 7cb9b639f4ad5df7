// Package compose_test checks deploy/compose, which cannot run here (no
// Docker engine): the compose file loaded with compose-go as `docker
// compose config` loads it, and its hardening; the gateways' Caddyfile
// through the project's audit; the collector's attribute allow-list
// against the code; Prometheus' targets and rules. redis_test.go checks
// the Redis ACL against a real redis-server.
package compose_test

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"

	_ "github.com/passerelle-gw/passerelle/caddyplugin"
	"github.com/passerelle-gw/passerelle/config/audit"
)

// testEnv is the only variable compose.yaml requires (.env in a real
// deployment); the host's environment is not read.
var testEnv = []string{"PASSERELLE_FD_CLIENT_ID=test-fd-client-id"}

func loadProject(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."), cli.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadProject(t, testEnv)
	if err != nil {
		t.Fatalf("compose.yaml does not load (schema, interpolation, consistency): %v", err)
	}
	return p
}

func gateways(p *types.Project) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		if strings.HasPrefix(name, "gateway-") {
			out = append(out, name)
		}
	}
	return out
}

// inRepo reports whether an absolute path lies in the repository.
func inRepo(t *testing.T, path string) bool {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, path)
	return err == nil && !strings.HasPrefix(rel, "..")
}

// secretLooking names environment variables that would hold a secret:
// one of their _-separated words is one of these.
var secretLooking = regexp.MustCompile(`(?i)(^|_)(pass|passwd|password|secret|token|key|authorization|credentials?)(_|$)`)

func TestComposeHardening(t *testing.T) {
	if _, err := loadProject(t, nil); err == nil || !strings.Contains(err.Error(), "PASSERELLE_FD_CLIENT_ID") {
		t.Errorf("compose.yaml loads without PASSERELLE_FD_CLIENT_ID (err %v): it must refuse to", err)
	}
	p := project(t)
	gws := gateways(p)
	if len(gws) != 2 {
		t.Fatalf("gateways %v, want two", gws)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		gateway := slices.Contains(gws, name)
		switch {
		case !s.ReadOnly:
			t.Errorf("%s: root filesystem not read-only", name)
		case !slices.Contains(s.CapDrop, "ALL") || len(s.CapAdd) > 0:
			t.Errorf("%s: capabilities: drop %v, add %v", name, s.CapDrop, s.CapAdd)
		case !slices.Contains(s.SecurityOpt, "no-new-privileges:true"):
			t.Errorf("%s: no no-new-privileges", name)
		case s.Privileged:
			t.Errorf("%s: privileged", name)
		case s.NetworkMode != "" || s.Pid != "" || s.Ipc != "" || s.UserNSMode != "" || s.Uts != "":
			t.Errorf("%s: shares a namespace (network %q, pid %q, ipc %q, userns %q, uts %q)", name, s.NetworkMode, s.Pid, s.Ipc, s.UserNSMode, s.Uts)
		case len(s.Devices) > 0 || len(s.DeviceCgroupRules) > 0 || len(s.Sysctls) > 0:
			t.Errorf("%s: devices or sysctls", name)
		}
		if gateway && s.MemLimit == 0 {
			// Without a limit GOMEMLIMIT stays unset and memory-pressure
			// shedding (SECURITY.md F09, I16) never starts.
			t.Errorf("%s: no mem_limit", name)
		}
		uid, _, _ := strings.Cut(s.User, ":")
		if uid == "" || uid == "0" || uid == "root" {
			t.Errorf("%s: user %q: runs as root", name, s.User)
		}
		if gateway && s.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532 (distroless nonroot)", name, s.User)
		}
		if tag := s.Image[strings.LastIndex(s.Image, ":")+1:]; !strings.Contains(s.Image, ":") || tag == "latest" {
			t.Errorf("%s: image %q not pinned to a version", name, s.Image)
		}
		// Ports: the gateways' public listener, on 127.0.0.1, and nothing else.
		if gateway != (len(s.Ports) > 0) {
			t.Errorf("%s: publishes %d ports", name, len(s.Ports))
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" || port.Target != 8443 {
				t.Errorf("%s: publishes %s:%s -> %d, want 127.0.0.1 -> 8443", name, port.HostIP, port.Published, port.Target)
			}
		}
		// Secrets never in the environment: a secret-looking variable
		// holds a path (…_FILE, /run/secrets/…).
		for k, v := range s.Environment {
			if secretLooking.MatchString(k) && (v == nil || !strings.HasPrefix(*v, "/")) {
				t.Errorf("%s: environment %s looks like a secret given as a value", name, k)
			}
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if !inRepo(t, v.Source) {
					t.Errorf("%s: mounts %s, outside the repository", name, v.Source)
				} else if _, err := os.Stat(v.Source); err != nil && !(gateway && strings.HasSuffix(v.Source, "/habilitations") && strings.Contains(string(readme), "mkdir habilitations")) {
					t.Errorf("%s: mounts %s, which neither exists nor is documented to create", name, v.Source)
				}
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s is writable", name, v.Target)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %q not declared", name, v.Source)
				}
			default:
				t.Errorf("%s: %s mount %s", name, v.Type, v.Target)
			}
		}
		// The networks of everything but the gateways are internal.
		for net := range s.Networks {
			if !gateway && !p.Networks[net].Internal {
				t.Errorf("%s: on network %s, which is not internal", name, net)
			}
		}
	}
	for _, name := range gws {
		s := p.Services[name]
		if s.Build == nil || s.Build.Dockerfile != "deploy/container/Dockerfile" || filepath.Clean(s.Build.Context) != mustAbs(t, "../..") {
			t.Errorf("%s: not built from deploy/container/Dockerfile at the repository root: %+v", name, s.Build)
		}
		if !slices.ContainsFunc(s.Tmpfs, func(m string) bool { return strings.HasPrefix(m, "/tmp:") }) {
			t.Errorf("%s: no tmpfs on /tmp (XDG_DATA_HOME, the admin socket)", name)
		}
		if got := slices.Sorted(maps.Keys(s.Networks)); !slices.Equal(got, []string{"data", "edge", "telemetry"}) {
			t.Errorf("%s: networks %v", name, got)
		}
	}
	checkSecrets(t, p, readme)
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkSecrets: every secret is a file under secrets/ that README.md's
// table documents and that init-secrets.sh either creates or lists as the
// collectivité's to provide; every /run/secrets path a configuration file
// names is mounted in the services that read it.
func checkSecrets(t *testing.T, p *types.Project, readme []byte) {
	created, provided := runInitSecrets(t)
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		sec := p.Secrets[name]
		if sec.Environment != "" || sec.Content != "" || filepath.Dir(sec.File) != mustAbs(t, "secrets") || filepath.Base(sec.File) != name {
			t.Errorf("secret %s: want the file secrets/%s, got %+v", name, name, sec)
		}
		if !regexp.MustCompile("(?m)^\\|.*`" + regexp.QuoteMeta(name) + "`").Match(readme) {
			t.Errorf("secret %s: not in README.md's secrets table", name)
		}
		if created != nil && !created[name] && !provided[name] {
			t.Errorf("secret %s: init-secrets.sh neither creates it nor lists it as to provide", name)
		}
	}
	for file, services := range map[string][]string{
		"Caddyfile":                 gateways(p),
		"redis/redis.conf":          {"redis-primary", "redis-replica"},
		"redis/sentinel.conf":       {"sentinel-1", "sentinel-2", "sentinel-3"},
		"otel/collector.yaml":       {"otel-collector"},
		"prometheus/prometheus.yml": {"prometheus"},
		"prometheus/blackbox.yml":   {"blackbox"},
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(`/run/secrets/([a-z0-9-]+)`).FindAllStringSubmatch(string(data), -1)
		if len(names) == 0 {
			t.Errorf("%s names no secret", file)
		}
		for _, svc := range services {
			for _, n := range names {
				if !mounts(p.Services[svc], "/run/secrets/"+n[1]) {
					t.Errorf("%s names /run/secrets/%s, not mounted in %s", file, n[1], svc)
				}
			}
		}
	}
	start, err := os.ReadFile("redis/start.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range regexp.MustCompile(`(?:secret|\$secrets/)(redis-[a-z-]+|sentinel-[a-z-]+)`).FindAllStringSubmatch(string(start), -1) {
		if _, ok := p.Secrets[n[1]]; !ok {
			t.Errorf("redis/start.sh reads the secret %s, which compose.yaml does not define", n[1])
		}
	}
	for _, svc := range gateways(p) {
		for k, v := range p.Services[svc].Environment {
			if v != nil && strings.HasPrefix(*v, "/") && strings.Contains(k, "CERTIFICATE") && !mounts(p.Services[svc], *v) {
				t.Errorf("%s: %s=%s is not mounted", svc, k, *v)
			}
		}
	}
}

// mounts reports whether a service mounts a secret at path.
func mounts(s types.ServiceConfig, path string) bool {
	return slices.ContainsFunc(s.Secrets, func(ref types.ServiceSecretConfig) bool {
		target := ref.Target
		if target == "" {
			target = ref.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		return target == path
	})
}

// runInitSecrets runs init-secrets.sh in a temporary directory and returns
// the secrets it created and those it lists as to provide; nil without
// openssl (the check is then skipped, the rest of the test is not).
func runInitSecrets(t *testing.T) (created, provided map[string]bool) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not found: init-secrets.sh cannot be checked")
		}
		t.Log("openssl not found: init-secrets.sh not run")
		return nil, nil
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "init-secrets.sh", dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("init-secrets.sh: %v (want exit 1: secrets left to provide)\n%s", err, stderr.String())
	}
	created, provided = map[string]bool{}, map[string]bool{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		created[e.Name()] = !e.IsDir()
		if info, err := e.Info(); err == nil && !e.IsDir() && info.Mode().Perm()&0o077 != 0 && e.Name() != "internal-ca" && !strings.HasSuffix(e.Name(), "-cert") {
			t.Errorf("init-secrets.sh: %s has mode %v, want 600", e.Name(), info.Mode().Perm())
		}
	}
	for _, m := range regexp.MustCompile(`to provide: \S+/([a-z0-9-]+) `).FindAllStringSubmatch(stderr.String(), -1) {
		provided[m[1]] = true
	}
	// A second run overwrites nothing.
	before, _ := os.ReadFile(filepath.Join(dir, "redis-password"))
	_ = exec.Command("bash", "init-secrets.sh", dir).Run()
	if after, _ := os.ReadFile(filepath.Join(dir, "redis-password")); string(after) != string(before) || len(before) < 32 {
		t.Error("init-secrets.sh: a second run changed redis-password, or it is shorter than 32 bytes")
	}
	return created, provided
}

func gatewayEnv(p *types.Project, name string) func(string) string {
	return func(k string) string {
		if v := p.Services[name].Environment[k]; v != nil {
			return *v
		}
		return ""
	}
}

// auditCaddyfile adapts the Caddyfile as the gateway does at start, with
// its environment, and audits it.
func auditCaddyfile(t *testing.T, body []byte, getenv func(string) string) []audit.Finding {
	t.Helper()
	// {$VAR} placeholders are the Caddyfile's, replaced while adapting.
	t.Setenv("PASSERELLE_INTERNAL_ADDR", getenv("PASSERELLE_INTERNAL_ADDR"))
	// The habilitations as verify.sh audits Caddyfile.production: the
	// example file (the gateways read habilitations/habilitations.yaml).
	t.Setenv("PASSERELLE_HABILITATIONS", "../production/habilitations.example.yaml")
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v", err)
	}
	findings, err := audit.Run(cfg, audit.Options{ReadFile: os.ReadFile, Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	return findings
}

func TestGatewayCaddyfileAudit(t *testing.T) {
	p := project(t)
	body, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, gw := range gateways(p) {
		getenv := gatewayEnv(p, gw)
		internal := getenv("PASSERELLE_INTERNAL_ADDR")
		if internal == "" || p.Services[gw].Networks["telemetry"] == nil || p.Services[gw].Networks["telemetry"].Ipv4Address != internal {
			t.Fatalf("%s: PASSERELLE_INTERNAL_ADDR %q is not its telemetry address", gw, internal)
		}
		// No finding, none accepted: the metrics and probes listen on the
		// gateway's address on the telemetry network alone, which the
		// audit tells from a public listener (PA11).
		for _, f := range auditCaddyfile(t, body, getenv) {
			t.Errorf("%s: %s %s at %s: %s", gw, f.Rule, f.Severity, f.Path, f.Detail)
		}
	}
	// The internal listener's address is what keeps PA11 quiet: on every
	// address, it is reported.
	gw0 := gateways(p)[0]
	everywhere := func(k string) string {
		if k == "PASSERELLE_INTERNAL_ADDR" {
			return "0.0.0.0"
		}
		return gatewayEnv(p, gw0)(k)
	}
	if !slices.ContainsFunc(auditCaddyfile(t, body, everywhere), func(f audit.Finding) bool { return f.Rule == "PA11" }) {
		t.Error("metrics on every address are not reported")
	}
	// The checks are live: traces in clear, or Redis without TLS, fail.
	gw := gateways(p)[0]
	clear := func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return "http://collector.passerelle.internal:4317"
		}
		return gatewayEnv(p, gw)(k)
	}
	if !slices.ContainsFunc(auditCaddyfile(t, body, clear), func(f audit.Finding) bool { return f.Rule == "PA03" }) {
		t.Error("an OTLP endpoint in clear is not reported: the audit does not see the gateways' environment")
	}
	noTLS := strings.Replace(string(body), "tls redis.passerelle.internal", "", 1)
	if !slices.ContainsFunc(auditCaddyfile(t, []byte(noTLS), gatewayEnv(p, gw)), func(f audit.Finding) bool { return f.Rule == "PA03" }) {
		t.Error("Redis without TLS is not reported")
	}
}

func TestPrometheusConfig(t *testing.T) {
	p := project(t)
	var prom struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			Scheme        string `json:"scheme"`
			StaticConfigs []struct {
				Targets []string          `json:"targets"`
				Labels  map[string]string `json:"labels"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &prom)
	var bb struct {
		Modules map[string]struct {
			Prober string `json:"prober"`
			TCP    struct {
				TLS bool `json:"tls"`
			} `json:"tcp"`
		} `json:"modules"`
	}
	readYAML(t, "prometheus/blackbox.yml", &bb)
	targets := map[string][]string{}
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets[sc.JobName] = append(targets[sc.JobName], st.Targets...)
			if m := st.Labels["module"]; sc.JobName == "blackbox-tls" && (bb.Modules[m].Prober != "tcp" || !bb.Modules[m].TCP.TLS) {
				t.Errorf("blackbox-tls: module %q is not a TLS probe of blackbox.yml", m)
			}
		}
		if sc.JobName == "passerelle" && sc.Scheme != "https" {
			t.Errorf("job passerelle scrapes over %q, want https", sc.Scheme)
		}
	}
	// Both gateways' internal listener (the Caddyfile's https://:9090),
	// by a name of theirs on the telemetry network.
	for _, gw := range gateways(p) {
		aliases := p.Services[gw].Networks["telemetry"].Aliases
		if !slices.ContainsFunc(targets["passerelle"], func(tg string) bool {
			host, port, _ := strings.Cut(tg, ":")
			return port == "9090" && (host == gw || slices.Contains(aliases, host))
		}) {
			t.Errorf("job passerelle does not scrape %s:9090 (targets %v)", gw, targets["passerelle"])
		}
		if !slices.Contains(targets["blackbox-tls"], gw+":8443") {
			t.Errorf("job blackbox-tls does not probe %s's public listener", gw)
		}
	}
	// The shipped rules, mounted as they are, whose certificate alert
	// reads this job.
	for _, rf := range prom.RuleFiles {
		var src string
		for _, v := range p.Services["prometheus"].Volumes {
			if v.Target == rf {
				src = v.Source
			}
		}
		if src != mustAbs(t, "../prometheus/alerts.yaml") {
			t.Errorf("rule file %s is mounted from %q, want deploy/prometheus/alerts.yaml", rf, src)
		}
	}
	alerts, err := os.ReadFile("../prometheus/alerts.yaml")
	if err != nil || len(prom.RuleFiles) == 0 {
		t.Fatalf("no rule file, or the alerts cannot be read: %v", err)
	}
	if !strings.Contains(string(alerts), `probe_ssl_earliest_cert_expiry{job="blackbox-tls"}`) {
		t.Error("deploy/prometheus/alerts.yaml has no certificate alert on the job blackbox-tls")
	}
	// Grafana: the dashboard provider's folder holds the shipped dashboard.
	var dash struct {
		Providers []struct {
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/passerelle.yaml", &dash)
	if len(dash.Providers) != 1 || !slices.ContainsFunc(p.Services["grafana"].Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Source == mustAbs(t, "../grafana/passerelle.json") && filepath.Dir(v.Target) == dash.Providers[0].Options.Path
	}) {
		t.Error("Grafana does not load deploy/grafana/passerelle.json as it is")
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
