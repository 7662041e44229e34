package manifests_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// TestInstall applies the install to the control plane as `kubectl apply
// --server-side -k` would, in each RBAC variant — the default
// (impersonation), components/namespaced-rbac, components/cluster-wide-rbac
// — and proves each time that the agent's Deployment becomes available
// (admitted under the restricted Pod Security profile), that a sync with
// the agent's ServiceAccount does what the variant promises and that it
// gets no more. The steps share the cluster's baton-system, so they run in
// order, each removing what the previous one bound.
func TestInstall(t *testing.T) {
	ctx := t.Context()
	a := newApplier(t, env.Config())
	cs := env.Clientset(t)

	applyOperatorCRDs(ctx, t, a)
	unbind := func(names ...string) {
		for _, n := range names {
			_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, n, metav1.DeleteOptions{})
		}
	}
	// Left over from an earlier run against this cluster (go test -count=2).
	unbind("baton-agent", "baton-impersonate")

	t.Run("default: impersonation", func(t *testing.T) {
		a.apply(ctx, t, build(t, "components/monitoring"))
		waitDeploymentAvailable(t, cs, "baton-system", "baton")
		sa := serviceAccountConfig(t, cs, "baton-system", "baton")

		// An environment's account, bound in its namespace as rbac.yaml says.
		ns := env.Namespace(t)
		account := environmentAccount(t, ns, true)
		scope := &reconciler.Scope{Namespaces: []string{ns}}
		objs := appObjects(t, ns)
		res := syncAs(t, sa, "rbac-impersonated", ns, objs, account, scope, "")
		if n := res.Counts[reconciler.ActionCreated]; n != len(objs) {
			t.Errorf("created %d objects, want %d: %+v", n, len(objs), res.Changes)
		}
		assertAllowed(t, sa, "baton-system", "coordination.k8s.io", "leases", "update", "", true)
		assertAllowed(t, sa, "baton-system", "", "events", "create", "", true)
		assertAllowed(t, sa, "baton-system", "", "configmaps", "create", "", true)
		assertAllowed(t, sa, ns, "", "serviceaccounts", "impersonate", "baton-deployer", true)
		// The agent itself writes nothing outside its namespace, and may
		// impersonate no other account.
		assertAllowed(t, sa, ns, "apps", "deployments", "create", "", false)
		assertAllowed(t, sa, ns, "", "secrets", "get", "", false)
		assertAllowed(t, sa, ns, "", "serviceaccounts", "impersonate", "default", false)
		assertAllowed(t, sa, "", "", "users", "impersonate", "admin", false)
		assertAllowed(t, sa, "", "rbac.authorization.k8s.io", "clusterroles", "escalate", "", false)

		// An account without a binding in a namespace, and cluster-scoped
		// objects (in Baton's scope, outside the account's rights): denied
		// by the API server, named.
		other := env.Namespace(t)
		syncAs(t, sa, "rbac-unbound", other, appObjects(t, other), environmentAccount(t, other, false),
			&reconciler.Scope{Namespaces: []string{other}}, "permission denied: ServiceAccount "+other+"/baton-deployer cannot")
		syncAs(t, sa, "rbac-cluster-scoped", ns, []*unstructured.Unstructured{clusterRole(t)}, account,
			&reconciler.Scope{ClusterWide: true}, "permission denied: ServiceAccount "+ns+"/baton-deployer cannot")
	})

	t.Run("namespaced RBAC (no impersonation)", func(t *testing.T) {
		unbind("baton-impersonate")
		a.apply(ctx, t, build(t, "components/namespaced-rbac", "components/monitoring"))
		waitDeploymentAvailable(t, cs, "baton-system", "baton")
		sa := serviceAccountConfig(t, cs, "baton-system", "baton")

		// Bound in one namespace, as the component's instructions say.
		ns := env.Namespace(t)
		bindDeployer(t, ns, "baton-system", "baton")
		objs := appObjects(t, ns)
		res := syncAs(t, sa, "rbac-namespaced", ns, objs, nil, nil, "")
		if n := res.Counts[reconciler.ActionCreated]; n != len(objs) {
			t.Errorf("created %d objects, want %d: %+v", n, len(objs), res.Changes)
		}
		assertAllowed(t, sa, ns, "", "serviceaccounts", "impersonate", "baton-deployer", false)
		for _, verb := range []string{"get", "list", "watch", "create", "update", "delete"} {
			assertAllowed(t, sa, "baton-system", "coordination.k8s.io", "leases", verb, "", true)
		}
		assertAllowed(t, sa, "baton-system", "", "events", "create", "", true)
		assertAllowed(t, sa, "baton-system", "", "configmaps", "create", "", true)

		// Outside the bound namespace, and cluster-scoped objects: refused.
		other := env.Namespace(t)
		syncAs(t, sa, "rbac-unbound", other, appObjects(t, other), nil, nil, "permission denied")
		syncAs(t, sa, "rbac-cluster-scoped", ns, []*unstructured.Unstructured{clusterRole(t)}, nil, nil, "permission denied")
	})

	t.Run("cluster-wide RBAC", func(t *testing.T) {
		a.apply(ctx, t, build(t, "components/cluster-wide-rbac", "components/monitoring"))
		t.Cleanup(func() { unbind("baton-agent") })
		waitDeploymentAvailable(t, cs, "baton-system", "baton")
		sa := serviceAccountConfig(t, cs, "baton-system", "baton")
		ns := env.Namespace(t)
		// A namespaced app, a Namespace of its own and a ClusterRole that
		// grants every verb (which needs escalate): what a platform
		// repository holds.
		objs := append(appObjects(t, ns), clusterRole(t), namespace(t, ns+"-extra"))
		t.Cleanup(func() {
			_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns+"-extra", metav1.DeleteOptions{})
			_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), clusterRole(t).GetName(), metav1.DeleteOptions{})
		})
		res := syncAs(t, sa, "rbac-cluster", ns, objs, nil, &reconciler.Scope{ClusterWide: true}, "")
		if n := res.Counts[reconciler.ActionCreated]; n != len(objs) {
			t.Errorf("created %d objects, want %d: %+v", n, len(objs), res.Changes)
		}
		for _, verb := range []string{"create", "update", "delete", "watch"} {
			assertAllowed(t, sa, "kube-system", "apps", "deployments", verb, "", true)
		}
		// What it says it grants: escalate and bind; and not deletecollection.
		assertAllowed(t, sa, "", "rbac.authorization.k8s.io", "clusterroles", "escalate", "", true)
		assertAllowed(t, sa, "kube-system", "", "pods", "deletecollection", "", false)
	})

	t.Run("restricted pod security is enforced", func(t *testing.T) {
		// The agent's pods were admitted above; a pod without the hardening
		// is not, so that admission proves the Deployment's settings.
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "unhardened"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		_, err := cs.CoreV1().Pods("baton-system").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), `violates PodSecurity "restricted`) {
			t.Fatalf("unhardened pod in baton-system: error %v, want a restricted PodSecurity violation", err)
		}
	})

	t.Run("monitoring objects", func(t *testing.T) {
		for _, r := range []schema.GroupVersionResource{
			{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"},
			{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"},
		} {
			if _, err := a.dyn.Resource(r).Namespace("baton-system").Get(ctx, "baton", metav1.GetOptions{}); err != nil {
				t.Errorf("%s baton-system/baton: %v", r.Resource, err)
			}
		}
		cm, err := cs.CoreV1().ConfigMaps("baton-system").Get(ctx, "baton-dashboard", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("dashboard labels %v", cm.Labels)
		}
	})
}

// waitDeploymentAvailable watches a Deployment until all its replicas are
// available, for at most two minutes.
func waitDeploymentAvailable(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cs.AppsV1().Deployments(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cs.AppsV1().Deployments(ns).Watch(ctx, o)
		},
	}
	var last *appsv1.Deployment
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(e watch.Event) (bool, error) {
		d, ok := e.Object.(*appsv1.Deployment)
		if !ok {
			return false, nil
		}
		last = d
		return deploymentAvailable(d), nil
	})
	if err != nil {
		events, _ := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		var msgs []string
		for _, e := range events.Items {
			msgs = append(msgs, e.InvolvedObject.Kind+"/"+e.InvolvedObject.Name+": "+e.Reason+": "+e.Message)
		}
		t.Fatalf("Deployment %s/%s not available: %v\nstatus: %+v\nevents:\n%s", ns, name, err, statusOf(last), strings.Join(msgs, "\n"))
	}
}

func statusOf(d *appsv1.Deployment) any {
	if d == nil {
		return nil
	}
	return d.Status
}

// serviceAccountConfig returns a client config that authenticates as the
// ServiceAccount with a token, as the agent's pod would.
func serviceAccountConfig(t *testing.T, cs kubernetes.Interface, ns, name string) *rest.Config {
	t.Helper()
	expiry := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	admin := env.Config()
	return &rest.Config{Host: admin.Host, BearerToken: tok.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: admin.TLSClientConfig.CAData}, QPS: 200, Burst: 400}
}

// syncAs runs one reconciler sync with cfg's identity, with the inventory
// in baton-system as the agent keeps it, impersonating account when it is
// set. wantErr, when set, is a part of the error the sync must fail with.
func syncAs(t *testing.T, cfg *rest.Config, envName, ns string, objs []*unstructured.Unstructured,
	account *reconciler.ServiceAccount, scope *reconciler.Scope, wantErr string) reconciler.Result {
	t.Helper()
	r, err := reconciler.New(cfg, reconciler.Options{InventoryNamespace: "baton-system"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The inventory outlives the test's namespaces: remove it so that a
	// second run (go test -count=2) does not try to prune the first run's
	// objects, in namespaces gone and out of the agent's reach.
	t.Cleanup(func() {
		_ = env.Clientset(t).CoreV1().ConfigMaps("baton-system").Delete(context.Background(), inventory.ConfigMapName(envName), metav1.DeleteOptions{})
	})
	res, err := r.Sync(t.Context(), reconciler.Request{Environment: envName, Revision: "0123456789abcdef0123456789abcdef01234567",
		DefaultNamespace: ns, Objects: objs, Prune: true, ServiceAccount: account, Scope: scope})
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("sync %s as the agent's ServiceAccount: %v", envName, err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Fatalf("sync %s: error %v, want %q", envName, err, wantErr)
	}
	return res
}

// environmentAccount makes the ServiceAccount baton-deployer in ns, bound
// there to the ClusterRole baton-deployer when bound is set.
func environmentAccount(t *testing.T, ns string, bound bool) *reconciler.ServiceAccount {
	t.Helper()
	_, err := env.Clientset(t).CoreV1().ServiceAccounts(ns).Create(t.Context(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "baton-deployer"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bound {
		bindDeployer(t, ns, ns, "baton-deployer")
	}
	return &reconciler.ServiceAccount{Namespace: ns, Name: "baton-deployer"}
}

// bindDeployer binds the ClusterRole baton-deployer in ns to the
// ServiceAccount saNS/name, as `kubectl create rolebinding` would.
func bindDeployer(t *testing.T, ns, saNS, name string) {
	t.Helper()
	_, err := env.Clientset(t).RbacV1().RoleBindings(ns).Create(t.Context(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "baton-deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "baton-deployer"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: saNS}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// assertAllowed asks the API server whether cfg's identity may do verb
// (on the object called name, when given).
func assertAllowed(t *testing.T, cfg *rest.Config, ns, group, resource, verb, name string, want bool) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(t.Context(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Group: group, Resource: resource, Verb: verb, Name: name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.Allowed != want {
		t.Errorf("%s %s.%s %q in %q: allowed %v, want %v", verb, resource, group, name, ns, r.Status.Allowed, want)
	}
}

func parse(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := sigsyaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// appObjects is a small application in ns: what an environment's overlay
// renders.
func appObjects(t *testing.T, ns string) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{
		parse(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: web-settings, namespace: `+ns+`}
data: {greeting: hello}
`),
		parse(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: `+ns+`}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1"}]}
`),
		parse(t, `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: web-reader, namespace: `+ns+`}
rules: [{apiGroups: [""], resources: [configmaps], verbs: ["*"]}]
`),
	}
}

func clusterRole(t *testing.T) *unstructured.Unstructured {
	return parse(t, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: manifests-test-platform}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
`)
}

func namespace(t *testing.T, name string) *unstructured.Unstructured {
	return parse(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+name+"}\n")
}
