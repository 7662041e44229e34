package reconciler

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

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
	// A revision with a Deployment fails after its ConfigMaps were created.
	r := newReconciler(t, deploymentsReadOnly(t, ns), ns, Options{})
	grantInventory(t, r.opts.InventoryNamespace, ns)
	name := envName(t)
	good := []*unstructured.Unstructured{configMap("", "stays", nil)}
	_, err := r.Sync(t.Context(), Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true, Objects: good})
	require.NoError(t, err)

	bad := append([]*unstructured.Unstructured{configMap("", "created-by-r2", nil), webDeployment(t)}, good...)
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

// An inventory entry whose kind is not served at the moment (here a CRD
// version switched off; an aggregated API down is the same) is kept: once
// the kind is back, a later pass prunes the object. Before, the entry was
// dropped and the object stayed for ever.
func TestPruneKeepsEntriesWhileTheirKindIsNotServed(t *testing.T) {
	ns := env.Namespace(t)
	group := "g" + randomSuffix() + ".example.com"
	crd := obj(t, `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.`+group+`}
spec:
  group: `+group+`
  scope: Namespaced
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`)
	dyn := env.Dynamic(t)
	_, err := dyn.Resource(gvrCRD).Create(t.Context(), crd, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dyn.Resource(gvrCRD).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{}) })
	gvrGadgets := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "gadgets"}
	setServed := func(served bool) {
		patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/versions/0/served","value":%t}]`, served)
		_, err := dyn.Resource(gvrCRD).Patch(t.Context(), crd.GetName(), types.JSONPatchType, []byte(patch), metav1.PatchOptions{})
		require.NoError(t, err)
		eventually(t, fmt.Sprintf("gadgets served=%t", served), func() bool {
			_, err := dyn.Resource(gvrGadgets).Namespace(ns).List(t.Context(), metav1.ListOptions{})
			return (err == nil) == served
		})
	}
	eventually(t, "gadgets served", func() bool {
		_, err := dyn.Resource(gvrGadgets).Namespace(ns).List(t.Context(), metav1.ListOptions{})
		return err == nil
	})

	name := envName(t)
	gadget := obj(t, "apiVersion: "+group+"/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 1}\n")
	r := newReconciler(t, nil, ns, Options{})
	_, err = r.Sync(t.Context(), Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{gadget, configMap("", "a", nil)}})
	require.NoError(t, err)

	setServed(false)
	r2 := Request{Environment: name, Revision: "r2", DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{configMap("", "a", nil)}}
	// The same reconciler (discovery cached while the kind was served) and
	// a new one (discovery says no such kind) both keep the entry.
	for i, rec := range []*Reconciler{r, newReconciler(t, nil, ns, Options{})} {
		res, err := rec.Sync(t.Context(), r2)
		require.NoError(t, err, "pass %d", i)
		c := changeFor(t, res, "Gadget", "g1")
		assert.Equal(t, ActionSkipped, c.Action, "pass %d", i)
		assert.Contains(t, c.Message, "kept for a later pass", "pass %d", i)
		inv, err := rec.Inventory(t.Context(), name)
		require.NoError(t, err)
		assert.Contains(t, entryNames(inv.Entries), "Gadget/g1", "pass %d: the entry is kept", i)
	}

	setServed(true)
	eventually(t, "a pass to prune the gadget once its kind is served again", func() bool {
		res, err := r.Sync(t.Context(), r2)
		require.NoError(t, err)
		return len(res.Pruned) == 1
	})
	live, err := dyn.Resource(gvrGadgets).Namespace(ns).Get(t.Context(), "g1", metav1.GetOptions{})
	assert.True(t, err != nil && live == nil, "g1 still exists")
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/a"}, entryNames(inv.Entries))
}

// Turning pruning off for a while does not make Baton forget what it
// applied: once it is on again, what left git meanwhile is pruned.
func TestPruneOffKeepsEntries(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	a, b := configMap("", "a", nil), configMap("", "b", nil)
	_, err := r.Sync(t.Context(), Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{a, b}})
	require.NoError(t, err)

	res, err := r.Sync(t.Context(), Request{Environment: name, Revision: "r2", DefaultNamespace: ns, Prune: false, Objects: []*unstructured.Unstructured{a}})
	require.NoError(t, err)
	assert.Contains(t, changeFor(t, res, "ConfigMap", "b").Message, "pruning is off")
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "b"))
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/a", "ConfigMap/b"}, entryNames(inv.Entries), "b is still baton's")

	res, err = r.Sync(t.Context(), Request{Environment: name, Revision: "r2", DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{a}})
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/" + ns + "/b"}, refNames(res.Pruned))
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "b"))
	inv, err = r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/a"}, entryNames(inv.Entries))
}

// An object with a finalizer stays in the inventory until it is gone.
func TestPruneKeepsEntriesUntilFinalizersFinish(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	held := configMap("", "held", nil)
	held.SetFinalizers([]string{"example.com/hold"})
	_, err := r.Sync(t.Context(), Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true, AllowEmpty: true,
		Objects: []*unstructured.Unstructured{held}})
	require.NoError(t, err)
	req := Request{Environment: name, Revision: "r2", DefaultNamespace: ns, Prune: true, AllowEmpty: true}
	res, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/" + ns + "/held"}, refNames(res.Pruned))
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/held"}, entryNames(inv.Entries), "terminating, not gone")
	res, err = r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, "being deleted", changeFor(t, res, "ConfigMap", "held").Message)

	_, err = env.Clientset(t).CoreV1().ConfigMaps(ns).Patch(t.Context(), "held", types.JSONPatchType,
		[]byte(`[{"op":"remove","path":"/metadata/finalizers"}]`), metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, "held gone", func() bool { return getObject(t, gvrConfigMaps, ns, "held") == nil })
	_, err = r.Sync(t.Context(), req)
	require.NoError(t, err)
	inv, err = r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Empty(t, inv.Entries)
}
