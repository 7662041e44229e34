package reconciler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestSyncEmptySetGuard(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	_, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{configMap("", "a", nil), configMap("", "b", nil)}})
	require.NoError(t, err)

	_, err = r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing to prune all 2 objects")
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "a"))

	res, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true, AllowEmpty: true})
	require.NoError(t, err)
	assert.Len(t, res.Pruned, 2)
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "a"))
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Empty(t, inv.Entries)
}

func TestSyncPruneSafety(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	pvc := obj(t, "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n")
	kept := configMap("", "kept", nil)
	kept.SetAnnotations(map[string]string{AnnotationPrune: "false"})
	_, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{pvc, kept, configMap("", "gone", nil), configMap("", "stays", nil)}})
	require.NoError(t, err)

	res, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{configMap("", "stays", nil)}})
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/" + ns + "/gone"}, refNames(res.Pruned))
	assert.Equal(t, ActionSkipped, changeFor(t, res, "PersistentVolumeClaim", "data").Action)
	assert.Contains(t, changeFor(t, res, "ConfigMap", "kept").Message, `baton.dev/prune: "false"`)
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "kept"))
	assert.NotNil(t, getObject(t, schemaPVC, ns, "data"))
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "gone"))
}

func TestNewReconcilerReadsInventoryAndPrunes(t *testing.T) {
	ns := env.Namespace(t)
	name := envName(t)
	first := newReconciler(t, nil, ns, Options{})
	_, err := first.Sync(t.Context(), Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true,
		Objects: configMaps("", 3, "x")})
	require.NoError(t, err)
	first.Close()

	// A new process: nothing in memory, only what the cluster holds.
	second := newReconciler(t, nil, ns, Options{})
	inv, err := second.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, "r1", inv.Revision)
	assert.Len(t, inv.Entries, 3)

	res, err := second.Sync(t.Context(), Request{Environment: name, Revision: "r2", DefaultNamespace: ns, Prune: true,
		Objects: configMaps("", 1, "x")})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"ConfigMap/" + ns + "/cm-0001", "ConfigMap/" + ns + "/cm-0002"}, refNames(res.Pruned))
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "cm-0002"))
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "cm-0000"))
}

func TestSyncRefusesToPruneAnotherEnvironmentsObject(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	a, b := envName(t), envName(t)
	_, err := r.Sync(t.Context(), Request{Environment: a, DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{configMap("", "shared", nil)}})
	require.NoError(t, err)
	// Someone relabels the object for environment b by hand (environments
	// never take each other's objects over); that must not lead to a
	// deletion by a.
	live := getObject(t, gvrConfigMaps, ns, "shared")
	live.SetLabels(map[string]string{LabelManagedBy: ManagedByValue, LabelEnvironment: b})
	_, err = env.Dynamic(t).Resource(gvrConfigMaps).Namespace(ns).Update(t.Context(), live, metav1.UpdateOptions{})
	require.NoError(t, err)
	res, err := r.Sync(t.Context(), Request{Environment: a, DefaultNamespace: ns, Prune: true, AllowEmpty: true})
	require.NoError(t, err)
	assert.Empty(t, res.Pruned)
	assert.Contains(t, changeFor(t, res, "ConfigMap", "shared").Message, `labelled for environment "`+b+`"`)
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "shared"))
}

var schemaPVC = gvrConfigMaps.GroupVersion().WithResource("persistentvolumeclaims")
