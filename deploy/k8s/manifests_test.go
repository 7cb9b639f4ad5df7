// Package k8s holds the Kubernetes manifests (base/, kustomize); this test
// decodes them strictly with the Kubernetes API types and checks the
// hardening deploy/ promises.
package k8s

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
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
		case "Deployment":
			obj = new(appsv1.Deployment)
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
	var dep *appsv1.Deployment
	var denyAll, flows bool
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.Deployment:
			dep = v
		case *policyv1.PodDisruptionBudget:
			if v.Spec.MinAvailable == nil || v.Spec.MinAvailable.IntValue() < 1 {
				t.Error("the PodDisruptionBudget keeps no pod")
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			if v.Spec.MinReplicas == nil || *v.Spec.MinReplicas < 2 {
				t.Error("the autoscaler may go below 2 replicas")
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
	if dep == nil {
		t.Fatal("no Deployment")
	}
	pod := dep.Spec.Template.Spec
	switch {
	case dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2:
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
