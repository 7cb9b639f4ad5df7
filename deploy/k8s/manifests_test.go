// Package k8s holds the Kubernetes manifests (base/, kustomize); this test
// decodes them strictly with the Kubernetes API types and checks the
// hardening deploy/ promises, and that the Caddyfile the pods run
// (base/Caddyfile) passes `passerelle audit` and fits the StatefulSet.
package k8s

import (
	"cmp"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	_ "github.com/passerelle-gw/passerelle/caddyplugin"
	"github.com/passerelle-gw/passerelle/config/audit"
)

// decode reads every document of a file strictly (unknown fields refused)
// into the type its kind names.
func decode(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var obj any
		switch head.Kind {
		case "StatefulSet":
			obj = new(appsv1.StatefulSet)
		case "Service":
			obj = new(corev1.Service)
		case "PodDisruptionBudget":
			obj = new(policyv1.PodDisruptionBudget)
		case "HorizontalPodAutoscaler":
			obj = new(autoscalingv2.HorizontalPodAutoscaler)
		case "NetworkPolicy":
			obj = new(networkingv1.NetworkPolicy)
		default:
			t.Fatalf("%s: unexpected kind %q", path, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s (%s): %v", path, head.Kind, err)
		}
		out = append(out, obj)
	}
	return out
}

func TestBase(t *testing.T) {
	var kust struct {
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile("base/kustomization.yaml")
	if err != nil || yaml.Unmarshal(data, &kust) != nil || len(kust.Resources) == 0 {
		t.Fatalf("kustomization: %v", err)
	}
	var objs []any
	for _, r := range kust.Resources {
		objs = append(objs, decode(t, filepath.Join("base", r))...)
	}
	var set *appsv1.StatefulSet
	var denyAll, flows bool
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.StatefulSet:
			set = v
		case *policyv1.PodDisruptionBudget:
			if v.Spec.MinAvailable == nil || v.Spec.MinAvailable.IntValue() < 1 {
				t.Error("the PodDisruptionBudget keeps no pod")
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			if v.Spec.MinReplicas == nil || *v.Spec.MinReplicas < 2 {
				t.Error("the autoscaler may go below 2 replicas")
			}
			if ref := v.Spec.ScaleTargetRef; ref.Kind != "StatefulSet" || ref.Name != "passerelle" {
				t.Errorf("the autoscaler scales %s %s, not the gateways' StatefulSet", ref.Kind, ref.Name)
			}
		case *networkingv1.NetworkPolicy:
			if len(v.Spec.PodSelector.MatchLabels) == 0 && len(v.Spec.Ingress) == 0 && len(v.Spec.Egress) == 0 && len(v.Spec.PolicyTypes) == 2 {
				denyAll = true
			}
			if len(v.Spec.Egress) > 0 {
				flows = true
				for _, e := range v.Spec.Egress {
					if len(e.To) == 0 {
						t.Error("an egress rule open to every destination")
					}
				}
			}
		}
	}
	if !denyAll || !flows {
		t.Fatalf("network policies: default deny %v, explicit flows %v", denyAll, flows)
	}
	if set == nil {
		t.Fatal("no StatefulSet")
	}
	pod := set.Spec.Template.Spec
	switch {
	case set.Spec.Replicas == nil || *set.Spec.Replicas < 2:
		t.Error("fewer than 2 replicas")
	case len(pod.TopologySpreadConstraints) == 0 || pod.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname":
		t.Error("replicas not spread over nodes")
	case pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken:
		t.Error("a service-account token is mounted")
	case pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot:
		t.Error("the pod may run as root")
	case pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("no RuntimeDefault seccomp profile")
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		switch {
		case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: writable root filesystem", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: privilege escalation allowed", c.Name)
		case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s: capabilities not all dropped", c.Name)
		case c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero():
			t.Errorf("%s: no CPU request or memory limit", c.Name)
		}
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "internal" {
				t.Errorf("%s: %s probe not on the internal listener", c.Name, name)
			}
		}
	}
}

// podIP stands for the address the downward API gives POD_IP.
const podIP = "10.244.1.7"

// kustomization is what the tests read of base/kustomization.yaml.
type kustomization struct {
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"configMapGenerator"`
}

// statefulSet returns base/'s StatefulSet and its kustomization.
func statefulSet(t *testing.T) (*appsv1.StatefulSet, kustomization) {
	t.Helper()
	var kust kustomization
	data, err := os.ReadFile("base/kustomization.yaml")
	if err != nil || yaml.Unmarshal(data, &kust) != nil {
		t.Fatalf("kustomization: %v", err)
	}
	for _, r := range kust.Resources {
		for _, o := range decode(t, filepath.Join("base", r)) {
			if d, ok := o.(*appsv1.StatefulSet); ok {
				return d, kust
			}
		}
	}
	t.Fatal("no StatefulSet")
	return nil, kust
}

// under reports whether path lies in dir (or is dir).
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// mountOf returns the volume mount (the deepest one) holding path, and its
// volume.
func mountOf(pod corev1.PodSpec, c corev1.Container, path string) (*corev1.VolumeMount, *corev1.Volume) {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if under(path, m.MountPath) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil {
		return nil, nil
	}
	for i, v := range pod.Volumes {
		if v.Name == best.Name {
			return best, &pod.Volumes[i]
		}
	}
	return best, nil
}

// caddyfileOf returns the repository path of the Caddyfile the container
// runs: its --config argument, in a mounted ConfigMap that the
// kustomization generates from a file of base/.
func caddyfileOf(t *testing.T, pod corev1.PodSpec, c corev1.Container, kust kustomization) string {
	t.Helper()
	args := append(slices.Clone(c.Command), c.Args...)
	i := slices.Index(args, "--config")
	if i < 0 || i+1 == len(args) {
		t.Fatalf("%s: no --config argument: %q", c.Name, args)
	}
	config := args[i+1]
	m, v := mountOf(pod, c, config)
	if m == nil || v == nil || v.ConfigMap == nil || m.SubPath != "" {
		t.Fatalf("%s: --config %s is not in a mounted ConfigMap", c.Name, config)
	}
	key, err := filepath.Rel(m.MountPath, config)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range kust.ConfigMapGenerator {
		if g.Name != v.ConfigMap.Name {
			continue
		}
		for _, f := range g.Files {
			k, file, ok := strings.Cut(f, "=")
			if !ok {
				k, file = filepath.Base(f), f
			}
			if k == key {
				return filepath.Join("base", file)
			}
		}
	}
	t.Fatalf("%s: the kustomization generates no ConfigMap %s with the key %s (--config %s)", c.Name, v.ConfigMap.Name, key, config)
	return ""
}

// containerEnv is a container's environment as its pod sees it: values,
// and POD_IP from the downward API (podIP).
func containerEnv(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			env[e.Name] = podIP
		default:
			t.Fatalf("%s: %s: only values and status.podIP are understood here", c.Name, e.Name)
		}
	}
	return env
}

// adapt adapts a Caddyfile as the container does at start, with its
// environment ({$VAR} placeholders are replaced while adapting), the
// habilitations being the example file (as verify.sh audits
// Caddyfile.production).
func adapt(t *testing.T, body []byte, env map[string]string) []byte {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("PASSERELLE_HABILITATIONS", "../production/habilitations.example.yaml")
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v", err)
	}
	return cfg
}

// adapted is what the test reads of the adapted configuration.
type adapted struct {
	Admin struct {
		Listen string `json:"listen"`
	} `json:"admin"`
	Logging struct {
		Logs map[string]struct {
			Writer json.RawMessage `json:"writer"`
		} `json:"logs"`
	} `json:"logging"`
	Apps struct {
		HTTP struct {
			HTTPSPort int `json:"https_port"`
			Servers   map[string]struct {
				Listen         []string          `json:"listen"`
				TLSPolicies    []json.RawMessage `json:"tls_connection_policies"`
				TrustedProxies json.RawMessage   `json:"trusted_proxies"`
				AutomaticHTTPS struct {
					Disable bool `json:"disable"`
				} `json:"automatic_https"`
			} `json:"servers"`
		} `json:"http"`
		TLS struct {
			Certificates struct {
				LoadFiles []struct {
					Certificate string `json:"certificate"`
					Key         string `json:"key"`
				} `json:"load_files"`
			} `json:"certificates"`
		} `json:"tls"`
	} `json:"apps"`
}

// logFiles returns the files a log writer writes, looking through writers
// that wrap another (passerelle_buffered).
func logFiles(raw json.RawMessage) []string {
	var w struct {
		Output   string          `json:"output"`
		Filename string          `json:"filename"`
		Writer   json.RawMessage `json:"writer"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &w) != nil {
		return nil
	}
	var out []string
	if w.Output == "file" {
		out = append(out, w.Filename)
	}
	return append(out, logFiles(w.Writer)...)
}

// listener is a port the gateway listens on, whether with TLS, and
// whether it trusts proxies' X-Forwarded-For.
type listener struct {
	port         int
	tls, proxied bool
}

// TestCaddyfileFitsDeployment (D1): the Caddyfile the StatefulSet runs (the
// one the kustomization puts in its ConfigMap) passes `passerelle audit`
// with no finding, in the pod's environment, and fits the pod: the probes,
// the container ports and the Service's target port are ports it listens
// on off loopback (the kubelet and the ingress reach the pod's address),
// with TLS where they expect it; its admin socket and log files are on
// volumes mounted writable (the root filesystem is read-only); the
// audit trail's files are on the pod's own persistent claim (a
// volumeClaimTemplate, kept when the set is scaled down or deleted: an
// emptyDir goes with its pod, and the records must be kept 6 to 12
// months); the Service's port trusts the ingress controller's
// X-Forwarded-For (else
// every caller shares the ingress's client_ip quota); no certificate is
// obtained by ACME (the NetworkPolicy lets no ACME call out); its secret
// files, certificates and habilitations are in mounted volumes; every
// variable it reads without a default is in the container's environment.
func TestCaddyfileFitsDeployment(t *testing.T) {
	set, kust := statefulSet(t)
	pod := set.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want the gateway alone", len(pod.Containers))
	}
	c := pod.Containers[0]
	path := caddyfileOf(t, pod, c, kust)
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := containerEnv(t, c)
	for _, m := range regexp.MustCompile(`\{(?:env\.|\$)([A-Za-z0-9_]+)\}`).FindAllSubmatch(body, -1) {
		if _, ok := env[string(m[1])]; !ok {
			t.Errorf("%s reads %s, which the container's environment does not set", path, m[1])
		}
	}
	if h := env["PASSERELLE_HABILITATIONS"]; h != "" {
		if _, v := mountOf(pod, c, h); v == nil || v.ConfigMap == nil {
			t.Errorf("the habilitations file %s is in no mounted ConfigMap", h)
		}
	}
	raw := adapt(t, body, env)

	findings, err := audit.Run(raw, audit.Options{ReadFile: os.ReadFile, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("passerelle audit %s: %s %s at %s: %s", path, f.Rule, f.Severity, f.Path, f.Detail)
	}

	var cfg adapted
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	// The ports the pod's address reaches: every listener but loopback
	// ones (a listener on one address must be on POD_IP's).
	reachable := map[int]listener{}
	httpsPort := cmp.Or(cfg.Apps.HTTP.HTTPSPort, 443)
	for name, srv := range cfg.Apps.HTTP.Servers {
		if !srv.AutomaticHTTPS.Disable {
			t.Errorf("server %s: automatic HTTPS on (ACME, which the NetworkPolicy does not let out): auto_https off, and the certificate from the passerelle-tls Secret", name)
		}
		for _, l := range srv.Listen {
			addr, err := caddy.ParseNetworkAddress(l)
			if err != nil {
				t.Fatalf("server %s: listen %s: %v", name, l, err)
			}
			ip := net.ParseIP(addr.Host)
			if addr.IsUnixNetwork() || addr.Host != "" && (ip == nil || !ip.Equal(net.ParseIP(podIP))) {
				continue
			}
			for p := addr.StartPort; p <= addr.EndPort; p++ {
				tls := len(srv.TLSPolicies) > 0 || !srv.AutomaticHTTPS.Disable && int(p) == httpsPort
				reachable[int(p)] = listener{port: int(p), tls: tls, proxied: len(srv.TrustedProxies) > 0}
			}
		}
	}
	containerPort := func(p intstr.IntOrString) int {
		if p.Type == intstr.Int {
			return p.IntValue()
		}
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return int(cp.ContainerPort)
			}
		}
		t.Errorf("%s: no container port named %q", c.Name, p.StrVal)
		return 0
	}
	for _, cp := range c.Ports {
		if _, ok := reachable[int(cp.ContainerPort)]; !ok {
			t.Errorf("container port %s (%d): the Caddyfile listens there on no address the pod's reaches (%v)", cp.Name, cp.ContainerPort, reachable)
		}
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", name)
			continue
		}
		l, ok := reachable[containerPort(p.HTTPGet.Port)]
		switch {
		case !ok:
			t.Errorf("%s probe on port %s: the Caddyfile listens there on no address the kubelet reaches", name, p.HTTPGet.Port.String())
		case l.tls != (p.HTTPGet.Scheme == corev1.URISchemeHTTPS):
			t.Errorf("%s probe on port %d: scheme %q, the listener's TLS %v", name, l.port, p.HTTPGet.Scheme, l.tls)
		}
	}
	var svc *corev1.Service
	for _, o := range decode(t, "base/service.yaml") {
		svc, _ = o.(*corev1.Service)
	}
	if svc == nil || len(svc.Spec.Ports) == 0 {
		t.Fatal("no Service port")
	}
	for _, sp := range svc.Spec.Ports {
		l, ok := reachable[containerPort(sp.TargetPort)]
		switch {
		case !ok:
			t.Errorf("Service port %s: target port %s, where the Caddyfile listens on no address the pod's reaches", sp.Name, sp.TargetPort.String())
		case !l.proxied:
			t.Errorf("Service port %s: target port %d without trusted_proxies: every caller reached through the ingress has the ingress's address", sp.Name, l.port)
		}
	}

	// What the gateway writes: on volumes mounted writable.
	writable := func(what, file string) {
		m, v := mountOf(pod, c, filepath.Dir(file))
		if m == nil || v == nil || m.ReadOnly || v.EmptyDir == nil && v.PersistentVolumeClaim == nil && v.Ephemeral == nil {
			t.Errorf("%s %s: its directory is on no writable volume (the root filesystem is read-only)", what, file)
		}
	}
	admin, err := caddy.ParseNetworkAddress(cfg.Admin.Listen)
	switch {
	case cfg.Admin.Listen == "" || err != nil:
		t.Errorf("admin %q: want a unix socket", cfg.Admin.Listen)
	case admin.IsUnixNetwork():
		writable("the admin socket", admin.Host)
	}
	for name, l := range cfg.Logging.Logs {
		for _, f := range logFiles(l.Writer) {
			if name == "audit" {
				durable(t, set, c, f)
				continue
			}
			writable("log "+name+": file", f)
		}
	}
	// What it reads: secret files and certificates from Secret volumes.
	secret := func(what, file string) {
		if m, v := mountOf(pod, c, file); m == nil || v == nil || v.Secret == nil {
			t.Errorf("%s %s is in no mounted Secret", what, file)
		}
	}
	for _, m := range regexp.MustCompile(`\{file\.([^}]+)\}`).FindAllSubmatch(raw, -1) {
		secret("the secret file", string(m[1]))
	}
	for _, lf := range cfg.Apps.TLS.Certificates.LoadFiles {
		secret("the certificate", lf.Certificate)
		secret("the certificate key", lf.Key)
	}
}

// durable checks that an audit trail file is on the pod's own persistent
// claim: mounted writable from a volumeClaimTemplate (not a pod volume of
// the same name), which the set keeps when it is scaled down or deleted.
func durable(t *testing.T, set *appsv1.StatefulSet, c corev1.Container, file string) {
	t.Helper()
	m, v := mountOf(set.Spec.Template.Spec, c, filepath.Dir(file))
	switch {
	case m == nil || m.ReadOnly:
		t.Errorf("the audit trail %s is on no writable mount", file)
		return
	case v != nil:
		t.Errorf("the audit trail %s is on the pod volume %s, which goes with its pod: a claim template is kept", file, v.Name)
		return
	}
	i := slices.IndexFunc(set.Spec.VolumeClaimTemplates, func(pvc corev1.PersistentVolumeClaim) bool { return pvc.Name == m.Name })
	if i < 0 {
		t.Errorf("the audit trail %s: mount %s is neither a pod volume nor a claim template", file, m.Name)
		return
	}
	if set.Spec.VolumeClaimTemplates[i].Spec.Resources.Requests.Storage().IsZero() {
		t.Errorf("the audit trail's claim %s requests no storage", m.Name)
	}
	keep := set.Spec.PersistentVolumeClaimRetentionPolicy
	if keep != nil && (keep.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType || keep.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType) {
		t.Errorf("the audit trail's claims are deleted with their pods (%+v)", *keep)
	}
}
