package reconciler

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
)

func TestSyncConflictWithAnotherManagerResolvedForGit(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	desired := []*unstructured.Unstructured{configMap(ns, "settings", map[string]string{"mode": "git"})}
	_, err := r.Sync(t.Context(), Request{Environment: name, Objects: desired})
	require.NoError(t, err)

	// Another tool takes the field over with its own forced apply.
	intruder := configMap(ns, "settings", map[string]string{"mode": "hand"})
	edited, err := env.Dynamic(t).Resource(gvrConfigMaps).Namespace(ns).Apply(t.Context(), "settings", intruder,
		metav1.ApplyOptions{FieldManager: "intruder", Force: true})
	require.NoError(t, err)
	waitCached(t, r, name, gvrConfigMaps, ns, "settings", func(o *unstructured.Unstructured) bool {
		return o != nil && o.GetResourceVersion() == edited.GetResourceVersion()
	})

	res, err := r.Sync(t.Context(), Request{Environment: name, Objects: desired})
	require.NoError(t, err)
	assert.Equal(t, ActionConfigured, res.Changes[0].Action)
	assert.Equal(t, []string{"ConfigMap/" + ns + "/settings"}, refNames(res.Drifted))
	live := getObject(t, gvrConfigMaps, ns, "settings")
	mode, _, _ := unstructured.NestedString(live.Object, "data", "mode")
	assert.Equal(t, "git", mode)
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == "intruder" {
			assert.NotContains(t, string(mf.FieldsV1.Raw), "f:mode", "baton owns the field again")
		}
	}
}

func TestSyncIgnoreRuleLeavesHPAReplicasAlone(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	deployment := obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1}]}
`)
	hpaRule := []IgnoreRule{{Group: "apps", Kind: "Deployment", Name: "web*", Paths: []string{"/spec/replicas"}}}
	req := Request{Environment: name, DefaultNamespace: ns, Ignore: hpaRule, Objects: []*unstructured.Unstructured{deployment}}
	_, err := r.Sync(t.Context(), req)
	require.NoError(t, err)

	// The autoscaler scales through the scale subresource, as the HPA
	// controller does.
	// The deployment controller writes status meanwhile, so a conflict is
	// retried as the HPA controller would.
	cs := env.Clientset(t)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		scale, err := cs.AppsV1().Deployments(ns).GetScale(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		scale.Spec.Replicas = 5
		_, err = cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), "web", scale, metav1.UpdateOptions{FieldManager: "horizontal-pod-autoscaler"})
		return err
	})
	require.NoError(t, err)
	waitCached(t, r, name, gvrDeployments, ns, "web", func(o *unstructured.Unstructured) bool {
		n, _, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
		return n == 5
	})

	res, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, ActionUnchanged, res.Changes[0].Action)
	assert.Empty(t, res.Drifted)
	replicas := func() int64 {
		n, _, _ := unstructured.NestedInt64(getObject(t, gvrDeployments, ns, "web").Object, "spec", "replicas")
		return n
	}
	assert.Equal(t, int64(5), replicas(), "the autoscaler's replicas stay")

	// Without the rule git's replicas win: the rule is what kept them.
	req.Ignore = nil
	res, err = r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, ActionConfigured, res.Changes[0].Action)
	assert.Equal(t, int64(2), replicas())
}

func TestSyncHandEditCorrectedOrOnlyReported(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	desired := []*unstructured.Unstructured{
		configMap(ns, "edited", map[string]string{"mode": "git"}),
		configMap(ns, "deleted", map[string]string{"mode": "git"}),
		configMap(ns, "untouched", map[string]string{"mode": "git"}),
	}
	req := Request{Environment: name, Revision: "r1", Objects: desired}
	_, err := r.Sync(t.Context(), req)
	require.NoError(t, err)

	// By hand: edit one object, delete another.
	cms := env.Clientset(t).CoreV1().ConfigMaps(ns)
	cm, err := cms.Get(t.Context(), "edited", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data["mode"] = "hand"
	edited, err := cms.Update(t.Context(), cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)
	require.NoError(t, cms.Delete(t.Context(), "deleted", metav1.DeleteOptions{}))
	waitCached(t, r, name, gvrConfigMaps, ns, "edited", func(o *unstructured.Unstructured) bool {
		return o != nil && o.GetResourceVersion() == edited.ResourceVersion
	})
	waitCached(t, r, name, gvrConfigMaps, ns, "deleted", func(o *unstructured.Unstructured) bool { return o == nil })

	// Detect-only: reported, nothing changed.
	req.Drift = DriftDetectOnly
	res, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"ConfigMap/" + ns + "/edited", "ConfigMap/" + ns + "/deleted"}, refNames(res.Drifted))
	assert.Equal(t, map[Action]int{ActionDrifted: 2, ActionUnchanged: 1}, res.Counts)
	assert.Contains(t, changeFor(t, res, "ConfigMap", "edited").Diff, "-  mode: hand\n+  mode: git\n")
	live, err := cms.Get(t.Context(), "edited", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "hand", live.Data["mode"], "detect-only changes nothing")
	assert.Equal(t, edited.ResourceVersion, live.ResourceVersion)
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "deleted"))

	// Correct: both are put back, and still reported as drift.
	req.Drift = DriftCorrect
	res, err = r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"ConfigMap/" + ns + "/edited", "ConfigMap/" + ns + "/deleted"}, refNames(res.Drifted))
	assert.Equal(t, ActionConfigured, changeFor(t, res, "ConfigMap", "edited").Action)
	assert.Equal(t, ActionCreated, changeFor(t, res, "ConfigMap", "deleted").Action)
	live, err = cms.Get(t.Context(), "edited", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "git", live.Data["mode"])
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "deleted"))
}

func TestDetectOnlyReportsADeletedNamespaceAndItsObjects(t *testing.T) {
	agentNS := env.Namespace(t)
	r := newReconciler(t, nil, agentNS, Options{})
	target := "gone-" + randomSuffix()
	nsObj := obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+target+"}\n")
	name := envName(t)
	req := Request{Environment: name, DefaultNamespace: target, Objects: append(configMaps(target, 2, "x"), nsObj)}
	_, err := r.Sync(t.Context(), req)
	require.NoError(t, err)

	// By hand: the whole namespace goes.
	cs := env.Clientset(t)
	require.NoError(t, cs.CoreV1().Namespaces().Delete(t.Context(), target, metav1.DeleteOptions{}))
	eventually(t, "namespace "+target+" to be gone", func() bool { return getObject(t, gvrNamespaces, "", target) == nil })
	waitCached(t, r, name, gvrNamespaces, "", target, func(o *unstructured.Unstructured) bool { return o == nil })
	waitCached(t, r, name, gvrConfigMaps, target, "cm-0000", func(o *unstructured.Unstructured) bool { return o == nil })
	waitCached(t, r, name, gvrConfigMaps, target, "cm-0001", func(o *unstructured.Unstructured) bool { return o == nil })

	req.Drift = DriftDetectOnly
	res, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionDrifted: 3}, res.Counts)
	assert.Len(t, res.Drifted, 3)
	assert.Nil(t, getObject(t, gvrNamespaces, "", target), "detect-only recreates nothing")

	// A new object in the deleted namespace cannot be applied in this mode:
	// the pass fails, so the inventory never claims it.
	req.Objects = append(req.Objects, configMap(target, "new", nil))
	_, err = r.Sync(t.Context(), req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apply ConfigMap/"+target+"/new: its Namespace was deleted by hand")

	req.Drift = DriftCorrect
	res, err = r.Sync(t.Context(), req)
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), target, metav1.DeleteOptions{})
	})
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionCreated: 4}, res.Counts)
	assert.Len(t, res.Drifted, 3, "the new object is not drift")
}
