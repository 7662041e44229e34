package reconciler

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/reconciler/inventory"
)

// entryNames lists inventory entries as Kind/name.
func entryNames(entries []inventory.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Kind+"/"+e.Name)
	}
	return out
}

// A pass that fails after some objects were created records them: when the
// commit is reverted, the next pass prunes them. Before the inventory was
// written ahead, they were never recorded and stayed for ever.
func TestFailedPassRecordsWhatItCreated(t *testing.T) {
	ns := env.Namespace(t)
	// ConfigMaps may be written, Deployments only read: a revision with a
	// Deployment fails after its ConfigMaps were created.
	cfg := env.RestrictedConfig(t, ns,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}},
		rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch"}},
	)
	r := newReconciler(t, cfg, ns, Options{})
	name := envName(t)
	good := []*unstructured.Unstructured{configMap("", "stays", nil)}
	_, err := r.Sync(t.Context(), Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true, Objects: good})
	require.NoError(t, err)

	deployment := obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1}]}
`)
	bad := append([]*unstructured.Unstructured{configMap("", "created-by-r2", nil), deployment}, good...)
	res, err := r.Sync(t.Context(), Request{Environment: name, Revision: "r2", DefaultNamespace: ns, Prune: true, Objects: bad})
	require.Error(t, err)
	require.Equal(t, ActionCreated, changeFor(t, res, "ConfigMap", "created-by-r2").Action)
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, "r1", inv.Revision, "the last completed pass")
	assert.Equal(t, []string{"ConfigMap/stays"}, entryNames(inv.Entries))
	assert.Equal(t, []string{"ConfigMap/created-by-r2", "Deployment/web"}, entryNames(inv.Pending), "written ahead")
	assert.Equal(t, "r2", inv.PendingRevision)

	// r2 is reverted: r3 has r1's objects. What r2 created is pruned.
	res, err = r.Sync(t.Context(), Request{Environment: name, Revision: "r3", DefaultNamespace: ns, Prune: true, Objects: good})
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/" + ns + "/created-by-r2"}, refNames(res.Pruned))
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "created-by-r2"))
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "stays"))
	inv, err = r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, "r3", inv.Revision)
	assert.Equal(t, []string{"ConfigMap/stays"}, entryNames(inv.Entries))
	assert.Empty(t, inv.Pending, "the Deployment never existed: confirmed gone")
}

// A pass interrupted in the middle of its apply (the process killed: here
// its context ends and no request is made after that) leaves every object
// it created known to the inventory. A new process, after a revert, prunes
// them all.
func TestInterruptedPassIsPrunedAfterARevert(t *testing.T) {
	ns := env.Namespace(t)
	name := envName(t)
	const total, killAfter = 60, 20
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	var applies atomic.Int64
	counter := requestCounter{onRequest: func(r *http.Request) {
		if r.Method == http.MethodPatch && applies.Add(1) == killAfter {
			kill()
		}
	}}
	first := newReconciler(t, counter.wrap(env.Config()), ns, Options{Concurrency: 2})
	_, err := first.Sync(ctx, Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true, Objects: configMaps("", total, "x")})
	require.Error(t, err, "the interrupted pass")
	first.Close()
	list, err := env.Clientset(t).CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: LabelEnvironment + "=" + name})
	require.NoError(t, err)
	require.NotEmpty(t, list.Items, "objects were created before the interruption")
	require.Less(t, len(list.Items), total, "the pass was interrupted")

	// r1 is reverted: the environment's objects are now none but one.
	second := newReconciler(t, nil, ns, Options{})
	keep := configMap("", "cm-0000", map[string]string{"value": "x"})
	_, err = second.Sync(t.Context(), Request{Environment: name, Revision: "r2", DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{keep}})
	require.NoError(t, err)
	list, err = env.Clientset(t).CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: LabelEnvironment + "=" + name})
	require.NoError(t, err)
	var left []string
	for _, cm := range list.Items {
		left = append(left, cm.Name)
	}
	require.Equal(t, []string{"cm-0000"}, left, "every object the interrupted pass created was pruned")
	inv, err := second.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/cm-0000"}, entryNames(inv.Entries))
	assert.Empty(t, inv.Pending)
}
