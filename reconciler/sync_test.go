package reconciler

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
)

func TestSyncCreateUpdateUnchangedPrune(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	ctx := t.Context()
	secret := func(password string) *unstructured.Unstructured {
		return obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: "+password+"}\n")
	}
	req := func(rev string, objs ...*unstructured.Unstructured) Request {
		return Request{Environment: name, Revision: rev, DefaultNamespace: ns, Prune: true, Objects: objs}
	}

	// create
	res, err := r.Sync(ctx, req("rev1",
		configMap("", "settings", map[string]string{"mode": "blue"}),
		configMap("", "extra", map[string]string{"k": "v"}),
		secret("hunter2")))
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionCreated: 3}, res.Counts)
	assert.Equal(t, name, res.Environment)
	assert.Equal(t, "rev1", res.Revision)
	assert.Positive(t, res.Duration)
	assert.Equal(t, "Secret", res.Changes[0].Ref.Kind, "staged order: Secrets before ConfigMaps")
	for _, c := range res.Changes {
		assert.Positive(t, c.Duration, c.Ref.String())
		assert.NotEmpty(t, c.Diff, "a create shows the object")
	}
	assert.NotContains(t, changeFor(t, res, "Secret", "db").Diff, "hunter2")
	live := getObject(t, gvrConfigMaps, ns, "settings")
	require.NotNil(t, live)
	assert.Equal(t, map[string]string{LabelManagedBy: "baton", LabelEnvironment: name}, live.GetLabels())
	for k := range live.GetAnnotations() {
		assert.NotContains(t, strings.ToLower(k), "revision", "no per-revision annotation")
	}
	inv, err := r.Inventory(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "rev1", inv.Revision)
	assert.Len(t, inv.Entries, 3)

	// update
	res, err = r.Sync(ctx, req("rev2",
		configMap("", "settings", map[string]string{"mode": "green"}),
		configMap("", "extra", map[string]string{"k": "v"}),
		secret("correct-horse")))
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionConfigured: 2, ActionUnchanged: 1}, res.Counts)
	settings := changeFor(t, res, "ConfigMap", "settings")
	assert.Equal(t, ActionConfigured, settings.Action)
	assert.Contains(t, settings.Diff, "-  mode: blue\n+  mode: green\n")
	assert.Contains(t, settings.Diff, "--- live/ConfigMap/"+ns+"/settings")
	sd := changeFor(t, res, "Secret", "db").Diff
	assert.Contains(t, sd, "***** (old)")
	assert.NotContains(t, sd, "hunter2")
	assert.NotContains(t, sd, "correct-horse")
	assert.Empty(t, changeFor(t, res, "ConfigMap", "extra").Diff)
	assert.Empty(t, res.Drifted, "a change in git is not drift")

	// unchanged
	res, err = r.Sync(ctx, req("rev3",
		configMap("", "settings", map[string]string{"mode": "green"}),
		configMap("", "extra", map[string]string{"k": "v"}),
		secret("correct-horse")))
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionUnchanged: 3}, res.Counts)
	inv, err = r.Inventory(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "rev3", inv.Revision, "the inventory records the revision")

	// prune
	res, err = r.Sync(ctx, req("rev4", configMap("", "settings", map[string]string{"mode": "green"})))
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionUnchanged: 1, ActionDeleted: 2}, res.Counts)
	assert.ElementsMatch(t, []string{"Secret/" + ns + "/db", "ConfigMap/" + ns + "/extra"}, refNames(res.Pruned))
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "extra"))
	assert.Nil(t, getObject(t, gvrSecrets, ns, "db"))
	inv, err = r.Inventory(ctx, name)
	require.NoError(t, err)
	require.Len(t, inv.Entries, 1)
	assert.Equal(t, "settings", inv.Entries[0].Name)
}

func TestSyncCRDAndCustomResourcesInOneRevision(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	group := "g" + randomSuffix() + ".example.com"
	crd := obj(t, `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.`+group+`}
spec:
  group: `+group+`
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
`)
	t.Cleanup(func() {
		_ = env.Dynamic(t).Resource(gvrCRD).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{})
	})
	widget := func(name string, size int) *unstructured.Unstructured {
		return obj(t, fmt.Sprintf("apiVersion: %s/v1\nkind: Widget\nmetadata: {name: %s}\nspec: {size: %d}\n", group, name, size))
	}
	name := envName(t)
	res, err := r.Sync(t.Context(), Request{Environment: name, Revision: "r1", DefaultNamespace: ns,
		Objects: []*unstructured.Unstructured{widget("small", 1), widget("large", 9), crd}})
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionCreated: 3}, res.Counts)
	assert.Equal(t, "CustomResourceDefinition", res.Changes[0].Ref.Kind, "the CRD goes first")

	gvrWidgets := gvrCRD
	gvrWidgets.Group, gvrWidgets.Resource = group, "widgets"
	live := getObject(t, gvrWidgets, ns, "large")
	require.NotNil(t, live, "custom resources applied in the same pass as their CRD")
	size, _, _ := unstructured.NestedInt64(live.Object, "spec", "size")
	assert.Equal(t, int64(9), size)

	// A second pass maps the kind through discovery right away.
	res, err = r.Sync(t.Context(), Request{Environment: name, Revision: "r2", DefaultNamespace: ns,
		Objects: []*unstructured.Unstructured{widget("small", 2), widget("large", 9), crd}})
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionConfigured: 1, ActionUnchanged: 2}, res.Counts)
}

func TestSyncNamespaceBeforeItsObjects(t *testing.T) {
	agentNS := env.Namespace(t)
	r := newReconciler(t, nil, agentNS, Options{})
	target := "app-" + randomSuffix()
	t.Cleanup(func() {
		_ = env.Dynamic(t).Resource(gvrNamespaces).Delete(context.Background(), target, metav1.DeleteOptions{})
	})
	objs := append(configMaps(target, 5, "x"), obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+target+"}\n"))
	name := envName(t)

	// Diff first: the Namespace does not exist, so its objects cannot be
	// dry-run on the server; they are still reported as created.
	diff, err := r.Diff(t.Context(), Request{Environment: name, DefaultNamespace: target, Objects: objs})
	require.NoError(t, err)
	assert.True(t, diff.DryRun)
	assert.Equal(t, map[Action]int{ActionCreated: 6}, diff.Counts)
	assert.Nil(t, getObject(t, gvrNamespaces, "", target), "Diff creates nothing")

	res, err := r.Sync(t.Context(), Request{Environment: name, Revision: "r1", DefaultNamespace: target, Objects: objs})
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionCreated: 6}, res.Counts)
	assert.Equal(t, "Namespace/"+target, res.Changes[0].Ref.String())
	require.NotNil(t, getObject(t, gvrConfigMaps, target, "cm-0004"))
}

func TestSyncImmutableFieldThenRecreate(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	deployment := func(app string, recreate bool) *unstructured.Unstructured {
		ann := ""
		if recreate {
			ann = "\n  annotations: {baton.dev/recreate: \"true\"}"
		}
		return obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web`+ann+`
spec:
  replicas: 1
  selector: {matchLabels: {app: `+app+`}}
  template:
    metadata: {labels: {app: `+app+`}}
    spec: {containers: [{name: web, image: nginx:1}]}
`)
	}
	name := envName(t)
	sync := func(d *unstructured.Unstructured) (Result, error) {
		return r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{d}})
	}
	_, err := sync(deployment("blue", false))
	require.NoError(t, err)
	before := getObject(t, gvrDeployments, ns, "web")
	require.NotNil(t, before)

	res, err := sync(deployment("green", false))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apply Deployment/"+ns+"/web")
	assert.Contains(t, err.Error(), "immutable field spec.selector")
	var imm *ImmutableFieldError
	require.ErrorAs(t, err, &imm)
	assert.Contains(t, imm.Fields, "spec.selector")
	assert.Equal(t, ActionFailed, res.Changes[0].Action)

	res, err = sync(deployment("green", true))
	require.NoError(t, err)
	assert.Equal(t, ActionRecreated, res.Changes[0].Action)
	assert.Contains(t, res.Changes[0].Diff, "-      app: blue\n")
	after := getObject(t, gvrDeployments, ns, "web")
	require.NotNil(t, after)
	assert.NotEqual(t, before.GetUID(), after.GetUID(), "a new object")
	app, _, _ := unstructured.NestedString(after.Object, "spec", "selector", "matchLabels", "app")
	assert.Equal(t, "green", app)
}

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

func TestSyncInvalidObjectAppliesAndPrunesNothing(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	_, err := r.Sync(t.Context(), Request{Environment: name, Revision: "good", DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{configMap("", "keep", map[string]string{"a": "1"})}})
	require.NoError(t, err)

	// A broken render: a new object plus one that cannot be valid.
	bad := obj(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: oops, namespace: "+ns+"}\n")
	res, err := r.Sync(t.Context(), Request{Environment: name, Revision: "bad", DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{configMap("", "new", map[string]string{"a": "1"}), bad}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ClusterRole/"+ns+"/oops")
	assert.Contains(t, err.Error(), "must not set metadata.namespace")
	assert.Empty(t, res.Changes)
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "new"), "nothing applied")
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "keep"), "nothing pruned")
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, "good", inv.Revision, "inventory untouched")
}

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

func TestSyncSuspendedDoesNothing(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	res, err := r.Sync(t.Context(), Request{Environment: envName(t), DefaultNamespace: ns, Suspend: true,
		Objects: []*unstructured.Unstructured{configMap("", "a", nil)}})
	require.NoError(t, err)
	assert.True(t, res.Suspended)
	assert.Empty(t, res.Changes)
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "a"))
}

func TestDiffChangesNothing(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	_, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{
		configMap("", "same", map[string]string{"a": "1"}),
		configMap("", "changed", map[string]string{"a": "1"}),
		configMap("", "removed", map[string]string{"a": "1"}),
	}})
	require.NoError(t, err)
	changed := getObject(t, gvrConfigMaps, ns, "changed")

	res, err := r.Diff(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{
		configMap("", "same", map[string]string{"a": "1"}),
		configMap("", "changed", map[string]string{"a": "2"}),
		configMap("", "added", map[string]string{"a": "1"}),
	}})
	require.NoError(t, err)
	assert.True(t, res.DryRun)
	assert.Equal(t, ActionUnchanged, changeFor(t, res, "ConfigMap", "same").Action)
	assert.Equal(t, ActionConfigured, changeFor(t, res, "ConfigMap", "changed").Action)
	assert.Contains(t, changeFor(t, res, "ConfigMap", "changed").Diff, "-  a: \"1\"\n+  a: \"2\"\n")
	assert.Equal(t, ActionCreated, changeFor(t, res, "ConfigMap", "added").Action)
	assert.Equal(t, ActionDeleted, changeFor(t, res, "ConfigMap", "removed").Action)

	assert.Equal(t, changed.GetResourceVersion(), getObject(t, gvrConfigMaps, ns, "changed").GetResourceVersion())
	assert.Nil(t, getObject(t, gvrConfigMaps, ns, "added"))
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "removed"))
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

func TestSyncThousandObjects(t *testing.T) {
	ns := env.Namespace(t)
	var counter requestCounter
	r := newReconciler(t, counter.wrap(env.Config()), ns, Options{})
	name := envName(t)
	req := Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true, Objects: configMaps("", 1000, "x")}
	res, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionCreated: 1000}, res.Counts)
	list, err := env.Clientset(t).CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: LabelEnvironment + "=" + name})
	require.NoError(t, err)
	assert.Len(t, list.Items, 1000)
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Len(t, inv.Entries, 1000, "stored compressed")

	// Nothing changed: the watch cache answers, so a pass costs a handful of
	// requests instead of a thousand.
	counter.n.Store(0)
	res, err = r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, map[Action]int{ActionUnchanged: 1000}, res.Counts)
	assert.LessOrEqual(t, counter.n.Load(), int64(5), "requests for a no-op pass of 1,000 objects")
}

func TestSyncRefusesToPruneAnotherEnvironmentsObject(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	a, b := envName(t), envName(t)
	_, err := r.Sync(t.Context(), Request{Environment: a, DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{configMap("", "shared", nil)}})
	require.NoError(t, err)
	// Environment b takes the object over (a misconfiguration, but it must
	// not lead to a deletion by a).
	_, err = r.Sync(t.Context(), Request{Environment: b, DefaultNamespace: ns, Prune: true, Objects: []*unstructured.Unstructured{configMap("", "shared", nil)}})
	require.NoError(t, err)
	res, err := r.Sync(t.Context(), Request{Environment: a, DefaultNamespace: ns, Prune: true, AllowEmpty: true})
	require.NoError(t, err)
	assert.Empty(t, res.Pruned)
	assert.Contains(t, changeFor(t, res, "ConfigMap", "shared").Message, `labelled for environment "`+b+`"`)
	assert.NotNil(t, getObject(t, gvrConfigMaps, ns, "shared"))
}

var schemaPVC = gvrConfigMaps.GroupVersion().WithResource("persistentvolumeclaims")

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
