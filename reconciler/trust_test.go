package reconciler

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A revision with an object outside the scope is refused as a whole:
// nothing of it is applied, nothing is pruned, the inventory stays.
func TestSyncRefusesARevisionOutsideItsScope(t *testing.T) {
	ns, other := env.Namespace(t), env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	scope := &Scope{Namespaces: []string{ns}}
	req := func(rev string, objs ...*unstructured.Unstructured) Request {
		return Request{Environment: name, Revision: rev, DefaultNamespace: ns, Prune: true, Scope: scope, Objects: objs,
			SourceOf: func(o *unstructured.Unstructured) string { return "overlays/dev/" + o.GetName() + ".yaml:1" }}
	}
	_, err := r.Sync(t.Context(), req("good", configMap("", "kept", map[string]string{"v": "1"}), configMap("", "old", nil)))
	require.NoError(t, err)

	res, err := r.Sync(t.Context(), req("bad",
		configMap("", "kept", map[string]string{"v": "2"}), // a change that must not land
		configMap(other, "elsewhere", nil),
		obj(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwn}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: Group, name: system:authenticated, apiGroup: rbac.authorization.k8s.io}]\n"),
		configMap(r.opts.InventoryNamespace, "baton-inventory-prod", nil)))
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	assert.ElementsMatch(t, []string{RuleClusterKind, RuleNamespace, RuleProtected}, refused.Rules())
	msg := err.Error()
	assert.Contains(t, msg, "ConfigMap/"+other+"/elsewhere (from overlays/dev/elsewhere.yaml:1): namespace \""+other+"\" is not in the environment's scope")
	assert.Contains(t, msg, "ClusterRoleBinding/pwn (from overlays/dev/pwn.yaml:1): cluster-scoped kind ClusterRoleBinding.rbac.authorization.k8s.io is not in the environment's scope")
	assert.Contains(t, msg, "ConfigMap/"+r.opts.InventoryNamespace+"/baton-inventory-prod (from overlays/dev/baton-inventory-prod.yaml:1): namespace \""+r.opts.InventoryNamespace+"\" is the agent's own")
	assert.Empty(t, res.Changes, "nothing applied, nothing pruned")

	assert.Nil(t, getObject(t, gvrConfigMaps, other, "elsewhere"))
	assert.Nil(t, getObject(t, schema.GroupVersionResource{Group: groupRBAC, Version: "v1", Resource: "clusterrolebindings"}, "", "pwn"))
	assert.Equal(t, "1", getObject(t, gvrConfigMaps, ns, "kept").Object["data"].(map[string]any)["v"])
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "old"), "not pruned by a refused revision")
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, "good", inv.Revision)

	// Diff refuses it too, so CI can show it before the merge.
	_, err = r.Diff(t.Context(), req("bad", configMap(other, "elsewhere", nil)))
	require.ErrorAs(t, err, &refused)
}

// An object labelled for another environment is never taken over, even
// when both may write its namespace; an unlabelled one is adopted.
func TestSyncNeverTakesOverAnotherEnvironmentsObject(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	a, b := envName(t), envName(t)
	scope := &Scope{Namespaces: []string{ns}}
	_, err := r.Sync(t.Context(), Request{Environment: a, DefaultNamespace: ns, Prune: true, Scope: scope,
		Objects: []*unstructured.Unstructured{configMap("", "shared", map[string]string{"owner": "a"})}})
	require.NoError(t, err)

	// kubectl made this one: b may adopt it.
	_, err = env.Clientset(t).CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"}, Data: map[string]string{"owner": "kubectl"}}, metav1.CreateOptions{FieldManager: "kubectl-create"})
	require.NoError(t, err)

	res, err := r.Sync(t.Context(), Request{Environment: b, DefaultNamespace: ns, Prune: true, Scope: scope,
		Objects: []*unstructured.Unstructured{
			configMap("", "shared", map[string]string{"owner": "b"}),
			configMap("", "legacy", map[string]string{"owner": "b"}),
		}})
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	require.Len(t, refused.Violations, 1)
	v := refused.Violations[0]
	assert.Equal(t, RuleOwnership, v.Rule)
	assert.Equal(t, "ConfigMap/"+ns+"/shared", v.Ref.String())
	assert.Contains(t, err.Error(), `it belongs to environment "`+a+`"`)
	assert.Contains(t, err.Error(), `environment "`+b+`" never takes over`)
	assert.Empty(t, res.Changes)
	shared := getObject(t, gvrConfigMaps, ns, "shared")
	assert.Equal(t, a, shared.GetLabels()[LabelEnvironment])
	assert.Equal(t, "a", shared.Object["data"].(map[string]any)["owner"])
	assert.Equal(t, "kubectl", getObject(t, gvrConfigMaps, ns, "legacy").Object["data"].(map[string]any)["owner"],
		"a refused revision adopts nothing either")

	// Without the other environment's object, the unlabelled one is adopted.
	res, err = r.Sync(t.Context(), Request{Environment: b, DefaultNamespace: ns, Prune: true, Scope: scope,
		Objects: []*unstructured.Unstructured{configMap("", "legacy", map[string]string{"owner": "b"})}})
	require.NoError(t, err)
	assert.Equal(t, ActionConfigured, changeFor(t, res, "ConfigMap", "legacy").Action)
	legacy := getObject(t, gvrConfigMaps, ns, "legacy")
	assert.Equal(t, b, legacy.GetLabels()[LabelEnvironment])
	assert.Equal(t, "b", legacy.Object["data"].(map[string]any)["owner"])

	// An object of b's inventory relabelled for a by hand is not taken back.
	legacy.SetLabels(map[string]string{LabelManagedBy: ManagedByValue, LabelEnvironment: a})
	_, err = env.Dynamic(t).Resource(gvrConfigMaps).Namespace(ns).Update(t.Context(), legacy, metav1.UpdateOptions{})
	require.NoError(t, err)
	_, err = r.Sync(t.Context(), Request{Environment: b, DefaultNamespace: ns, Prune: true, Scope: scope,
		Objects: []*unstructured.Unstructured{configMap("", "legacy", map[string]string{"owner": "b2"})}})
	require.ErrorAs(t, err, &refused)
	assert.Contains(t, err.Error(), `apply ConfigMap/`+ns+`/legacy: refused: 1 object(s) outside what the environment may write`)
	assert.Equal(t, a, getObject(t, gvrConfigMaps, ns, "legacy").GetLabels()[LabelEnvironment])
}

// Every request for an environment with a ServiceAccount is made as that
// account: RBAC is the final fence, and a denial names the verb, the
// resource, the namespace and the account.
func TestSyncImpersonatesTheServiceAccount(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	sa := newAccount(t, ns, "deployer", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}})
	name := envName(t)
	req := Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true, ServiceAccount: sa,
		Scope: &Scope{Namespaces: []string{ns}}, Objects: []*unstructured.Unstructured{configMap("", "settings", nil)}}
	res, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, ActionCreated, changeFor(t, res, "ConfigMap", "settings").Action)
	live := getObject(t, gvrConfigMaps, ns, "settings")
	var managers []string
	for _, mf := range live.GetManagedFields() {
		managers = append(managers, mf.Manager)
	}
	assert.Contains(t, managers, "baton")

	// The account may not write Secrets: the denial is the API server's,
	// named.
	req.Revision = "r2"
	req.Objects = append(req.Objects, obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {k: v}\n"))
	_, err = r.Sync(t.Context(), req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `permission denied: ServiceAccount `+ns+`/deployer cannot`)
	assert.Contains(t, err.Error(), `secrets in namespace "`+ns+`"`)
	assert.Nil(t, getObject(t, gvrSecrets, ns, "db"))

	// An account the agent may not impersonate is refused before anything.
	restricted := env.RestrictedConfig(t, ns, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}})
	grantInventory(t, agentNamespace(t, ns), ns)
	weak := newReconciler(t, restricted, ns, Options{})
	req.Objects = req.Objects[:1]
	_, err = weak.Sync(t.Context(), req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "permission denied: the agent may not impersonate ServiceAccount "+ns+"/deployer")
}

// An account that may not list a kind still gets the ownership check, one
// GET per new object.
func TestOwnershipWithoutListRights(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{DisableCache: true})
	sa := newAccount(t, ns, "getter", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create", "patch", "update", "delete"}})
	a, b := envName(t), envName(t)
	_, err := r.Sync(t.Context(), Request{Environment: a, DefaultNamespace: ns, Objects: []*unstructured.Unstructured{configMap("", "shared", nil)}})
	require.NoError(t, err)
	_, err = r.Sync(t.Context(), Request{Environment: b, DefaultNamespace: ns, ServiceAccount: sa,
		Objects: []*unstructured.Unstructured{configMap("", "shared", nil), configMap("", "mine", nil)}})
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, "ConfigMap/"+ns+"/shared", refused.Violations[0].Ref.String())
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "mine"))
}

// After the scope narrows, objects of the inventory outside it are left
// alone (and leave the inventory), never pruned.
func TestPruneKeepsWhatLeftTheScope(t *testing.T) {
	ns, other := env.Namespace(t), env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	_, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true, Scope: &Scope{Namespaces: []string{ns, other}},
		Objects: []*unstructured.Unstructured{configMap("", "here", nil), configMap(other, "there", nil)}})
	require.NoError(t, err)
	res, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true, Scope: &Scope{Namespaces: []string{ns}},
		Objects: []*unstructured.Unstructured{configMap("", "here", nil)}})
	require.NoError(t, err)
	c := changeFor(t, res, "ConfigMap", "there")
	assert.Equal(t, ActionSkipped, c.Action)
	assert.Contains(t, c.Message, `kept: namespace "`+other+`" is not in the environment's scope`)
	assert.NotNil(t, getObject(t, gvrConfigMaps, other, "there"))
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Len(t, inv.Entries, 1)
}

// newAccount makes a ServiceAccount in ns with a Role of the given rules
// there, for a reconciler to impersonate.
func newAccount(t *testing.T, ns, name string, rules ...rbacv1.PolicyRule) *ServiceAccount {
	t.Helper()
	ctx := context.Background()
	cs := env.Clientset(t)
	meta := metav1.ObjectMeta{Name: name, Namespace: ns}
	_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta,
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return &ServiceAccount{Namespace: ns, Name: name}
}
