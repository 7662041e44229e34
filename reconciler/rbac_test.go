package reconciler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
)

func TestSyncRestrictedServiceAccountNamesVerbResourceNamespace(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, deploymentsReadOnly(t, ns), ns, Options{})
	grantInventory(t, r.opts.InventoryNamespace, ns)
	deployment := webDeployment(t)
	name := envName(t)
	res, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{deployment, configMap("", "settings", nil)}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apply Deployment/"+ns+"/web")
	assert.Contains(t, err.Error(), `permission denied: cannot patch deployments.apps in namespace "`+ns+`"`)
	var oe *ObjectError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "Deployment", oe.Ref.Kind)
	assert.Equal(t, ActionCreated, changeFor(t, res, "ConfigMap", "settings").Action)
	assert.Equal(t, ActionFailed, changeFor(t, res, "Deployment", "web").Action)
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Empty(t, inv.Entries, "no completed pass after a failed apply")
	assert.Len(t, inv.Pending, 2, "what the failed pass may have created is recorded")
}

// deploymentsReadOnly is a config for a ServiceAccount that may do anything
// with ConfigMaps in ns (its inventory too) but only read Deployments.
func deploymentsReadOnly(t testing.TB, ns string) *rest.Config {
	t.Helper()
	return env.RestrictedConfig(t, ns,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}},
		rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch"}},
	)
}

// webDeployment is a small Deployment named web.
func webDeployment(t testing.TB) *unstructured.Unstructured {
	t.Helper()
	return obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1}]}
`)
}

// grantInventory lets every ServiceAccount of accountsNS keep inventories in
// the agent namespace: what the install's Role gives the agent.
func grantInventory(t *testing.T, agentNS, accountsNS string) {
	t.Helper()
	ctx := t.Context()
	cs := env.Clientset(t)
	meta := metav1.ObjectMeta{Name: "inventories-" + accountsNS, Namespace: agentNS}
	_, err := cs.RbacV1().Roles(agentNS).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(agentNS).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta,
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: meta.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:" + accountsNS}}},
		metav1.CreateOptions{})
	require.NoError(t, err)
}
