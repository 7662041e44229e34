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
