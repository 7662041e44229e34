package manifests_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/internal/config"
)

func TestBaseInstallsAHardenedAgent(t *testing.T) {
	objs := build(t)
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition":
		default:
			if o.GetNamespace() != "baton-system" {
				t.Errorf("%s/%s in namespace %q, want baton-system", o.GetKind(), o.GetName(), o.GetNamespace())
			}
		}
	}
	ns := find(t, objs, "Namespace", "baton-system")
	if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace pod security %q, want restricted", got)
	}
	find(t, objs, "ServiceAccount", "baton")
	find(t, objs, "PodDisruptionBudget", "baton")

	var d appsv1.Deployment
	into(t, find(t, objs, "Deployment", "baton"), &d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != "baton" {
		t.Errorf("service account %q", pod.ServiceAccountName)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container security context %+v: want read-only root, no privilege escalation, drop ALL", sc)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want GET /healthz", p)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want GET /readyz", p)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--identity=$(POD_NAME)") {
		t.Errorf("args %v: want the pod name as the leader-election identity", c.Args)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, name := range []string{"cache", "tmp"} {
		if v, ok := volumes[name]; !ok || v.EmptyDir == nil {
			t.Errorf("volume %s: want an emptyDir", name)
		}
	}
	if mounts["tmp"] != "/tmp" {
		t.Errorf("tmp mounted at %q", mounts["tmp"])
	}

	// The generated configuration is valid and agrees with the Deployment.
	cmName := volumes["config"].ConfigMap.Name
	var cm corev1.ConfigMap
	into(t, find(t, objs, "ConfigMap", cmName), &cm)
	if !strings.HasPrefix(cmName, "baton-config-") {
		t.Errorf("config ConfigMap %q: want the generated, hashed baton-config", cmName)
	}
	cfg, err := config.Parse([]byte(cm.Data["baton.yaml"]))
	if err != nil {
		t.Fatalf("manifests/baton.yaml: %v", err)
	}
	if want := mounts["config"] + "/baton.yaml"; !strings.Contains(strings.Join(c.Args, " "), "--config="+want) {
		t.Errorf("args %v: want --config=%s", c.Args, want)
	}
	if cfg.Agent.CacheDir != mounts["cache"] {
		t.Errorf("agent.cacheDir %q, but the cache emptyDir is mounted at %q", cfg.Agent.CacheDir, mounts["cache"])
	}
	if cfg.Agent.Namespace != "baton-system" || !cfg.Agent.LeaderElection.IsEnabled() {
		t.Errorf("agent namespace %q, leader election %v: want baton-system and on (2 replicas)",
			cfg.Agent.Namespace, cfg.Agent.LeaderElection.IsEnabled())
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if len(c.Ports) != 2 || !strings.HasSuffix(cfg.Listen.HTTP, ":"+strconv.Itoa(int(ports["http"]))) ||
		!strings.HasSuffix(cfg.Listen.Webhook, ":"+strconv.Itoa(int(ports["webhook"]))) {
		t.Errorf("listen.http %q, listen.webhook %q, container ports %v: want ports http and webhook on them",
			cfg.Listen.HTTP, cfg.Listen.Webhook, c.Ports)
	}
	for _, path := range []string{cfg.Repositories[0].Auth.TokenFile, cfg.Forge.TokenFile, cfg.Webhook.SecretFile} {
		if !mountedUnder(path, mounts) {
			t.Errorf("%s is under no volume mount %v", path, mounts)
		}
	}

	var svc corev1.Service
	into(t, find(t, objs, "Service", "baton"), &svc)
	if svc.Spec.Selector["app.kubernetes.io/name"] != d.Spec.Template.Labels["app.kubernetes.io/name"] {
		t.Errorf("service selector %v does not select the pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}

	svcPorts := map[string]string{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = p.TargetPort.String()
	}
	if svcPorts["http"] != "http" || svcPorts["webhook"] != "webhook" {
		t.Errorf("service ports %v: want http and webhook", svc.Spec.Ports)
	}

	// Ingress: the webhook port from anywhere, the status and metrics
	// port from selected namespaces only, nothing else.
	var np networkingv1.NetworkPolicy
	into(t, find(t, objs, "NetworkPolicy", "baton"), &np)
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("network policy selects %s=%s, the pods have %q", k, v, d.Spec.Template.Labels[k])
		}
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress || len(np.Spec.Ingress) != 2 {
		t.Fatalf("network policy %+v: want two ingress rules", np.Spec)
	}
	open, restricted := np.Spec.Ingress[0], np.Spec.Ingress[1]
	if len(open.From) != 0 || len(open.Ports) != 1 || open.Ports[0].Port.String() != "webhook" {
		t.Errorf("first ingress rule %+v: want the webhook port from anywhere", open)
	}
	if len(restricted.From) == 0 || len(restricted.Ports) != 1 || restricted.Ports[0].Port.String() != "http" {
		t.Errorf("second ingress rule %+v: want the http port from selected peers", restricted)
	}
	for _, peer := range restricted.From {
		if peer.IPBlock != nil || (peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels) == 0) {
			t.Errorf("http port open to %+v: want only this namespace and labelled ones", peer)
		}
	}

	// Least privilege: cluster-wide, the agent may only impersonate the
	// environments' accounts, the ones its configuration names.
	var crb rbacv1.ClusterRoleBinding
	into(t, find(t, objs, "ClusterRoleBinding", "baton-impersonate"), &crb)
	if len(crb.Subjects) != 1 || crb.Subjects[0].Name != "baton" || crb.Subjects[0].Namespace != "baton-system" ||
		crb.RoleRef.Name != "baton-impersonate" {
		t.Errorf("cluster role binding %+v", crb)
	}
	var imp rbacv1.ClusterRole
	into(t, find(t, objs, "ClusterRole", "baton-impersonate"), &imp)
	if len(imp.Rules) != 1 || strings.Join(imp.Rules[0].Verbs, ",") != "impersonate" ||
		strings.Join(imp.Rules[0].Resources, ",") != "serviceaccounts" || len(imp.Rules[0].ResourceNames) == 0 {
		t.Errorf("baton-impersonate rules %+v: want impersonate on named serviceaccounts only", imp.Rules)
	}
	if !cfg.Agent.RequireServiceAccount || !contains(imp.Rules[0].ResourceNames, cfg.Agent.DefaultServiceAccount) {
		t.Errorf("baton.yaml: requireServiceAccount %v, defaultServiceAccount %q: want lockdown with an account baton-impersonate names (%v)",
			cfg.Agent.RequireServiceAccount, cfg.Agent.DefaultServiceAccount, imp.Rules[0].ResourceNames)
	}
	for _, e := range cfg.Environments {
		if _, name, ok := e.Account(); !ok || !contains(imp.Rules[0].ResourceNames, name) {
			t.Errorf("environment %s runs as %q, which baton-impersonate does not name", e.Name, name)
		}
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRoleBinding" && o.GetName() != "baton-impersonate" {
			t.Errorf("ClusterRoleBinding %s: the default install binds nothing else cluster-wide", o.GetName())
		}
	}
	find(t, objs, "ClusterRole", "baton-deployer")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mountedUnder(path string, mounts map[string]string) bool {
	for _, m := range mounts {
		if strings.HasPrefix(path, m+"/") {
			return true
		}
	}
	return false
}

func TestMonitoringComponent(t *testing.T) {
	objs := build(t, "components/monitoring")
	sm := find(t, objs, "ServiceMonitor", "baton")
	if sm.GetNamespace() != "baton-system" {
		t.Errorf("ServiceMonitor in %q", sm.GetNamespace())
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	var svc corev1.Service
	into(t, find(t, objs, "Service", "baton"), &svc)
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, the Service has %q", k, v, svc.Labels[k])
		}
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 || eps[0].(map[string]any)["port"] != svc.Spec.Ports[0].Name {
		t.Errorf("ServiceMonitor endpoints %v, Service port %q", eps, svc.Spec.Ports[0].Name)
	}
	find(t, objs, "PrometheusRule", "baton")

	var dash corev1.ConfigMap
	into(t, find(t, objs, "ConfigMap", "baton-dashboard"), &dash)
	if dash.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard labels %v, want grafana_dashboard=1", dash.Labels)
	}
	file, err := os.ReadFile(filepath.Join(dir(t), "dashboards", "baton.json"))
	if err != nil {
		t.Fatal(err)
	}
	if dash.Data["baton.json"] != string(file) {
		t.Error("the dashboard ConfigMap differs from dashboards/baton.json")
	}
}

func TestNamespacedRBACComponentDropsImpersonation(t *testing.T) {
	objs := build(t, "components/namespaced-rbac")
	for _, o := range objs {
		if o.GetKind() == "ClusterRoleBinding" || (o.GetKind() == "ClusterRole" && o.GetName() == "baton-impersonate") {
			t.Errorf("%s %s still in the build", o.GetKind(), o.GetName())
		}
	}
	var role rbacv1.Role
	into(t, find(t, objs, "Role", "baton-agent"), &role)
	if role.Namespace != "baton-system" {
		t.Errorf("role in %q", role.Namespace)
	}
	var rb rbacv1.RoleBinding
	into(t, find(t, objs, "RoleBinding", "baton-agent"), &rb)
	if len(rb.Subjects) != 1 || rb.Subjects[0].Namespace != "baton-system" {
		t.Errorf("role binding subjects %+v", rb.Subjects)
	}
	find(t, objs, "ClusterRole", "baton-deployer")
}

// The broad role is an opt-in, and says what it grants.
func TestClusterWideRBACComponentSaysWhatItGrants(t *testing.T) {
	objs := build(t, "components/cluster-wide-rbac")
	var role rbacv1.ClusterRole
	into(t, find(t, objs, "ClusterRole", "baton-agent"), &role)
	var escalate bool
	for _, r := range role.Rules {
		if contains(r.Verbs, "escalate") && contains(r.Verbs, "bind") && contains(r.Resources, "clusterroles") {
			escalate = true
		}
	}
	if !escalate {
		t.Errorf("baton-agent rules %+v: the broad role applies ClusterRoles from git, which needs escalate and bind", role.Rules)
	}
	find(t, objs, "ClusterRoleBinding", "baton-agent")
	doc, err := os.ReadFile(filepath.Join(dir(t), "components", "cluster-wide-rbac", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, words := range []string{"cluster-admin in effect", "escalate", "grant itself", "the only\n# fence"} {
		if !strings.Contains(string(doc), words) {
			t.Errorf("cluster-wide-rbac's comment does not say %q", words)
		}
	}
	rbac, err := os.ReadFile(filepath.Join(dir(t), "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rbac), `resources: ["*"]`) && !strings.Contains(string(rbac), "Bound by a RoleBinding it grants nothing outside") {
		t.Error("rbac.yaml grants every resource without saying it is bound per namespace")
	}
}
