package reconciler

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// staticMapper knows a few built-in kinds, as discovery would.
func staticMapper() *meta.DefaultRESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, k := range []struct {
		gvk        schema.GroupVersionKind
		namespaced bool
	}{
		{schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, true},
		{schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, true},
		{schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, false},
		{schema.GroupVersionKind{Version: "v1", Kind: "ServiceAccount"}, true},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, true},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, false},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}, false},
		{schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, false},
		{schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}, false},
	} {
		scope := meta.RESTScopeRoot
		if k.namespaced {
			scope = meta.RESTScopeNamespace
		}
		m.Add(k.gvk, scope)
	}
	return m
}

const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
status: {acceptedNames: {kind: "", plural: ""}, storedVersions: []}
`

func TestPlanStagesAndOrder(t *testing.T) {
	req := Request{Environment: "dev", DefaultNamespace: "shop", Objects: []*unstructured.Unstructured{
		obj(t, "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: hook}\n"),
		obj(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"),
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: other}\n"),
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
		obj(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"),
		obj(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n"),
		obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"),
		obj(t, widgetCRD),
		obj(t, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web}\n"),
	}}
	items, err := plan(context.Background(), staticMapper(), req)
	require.NoError(t, err)
	var got []string
	for i, it := range items {
		assert.Equal(t, i, it.index)
		got = append(got, it.stage.String()+" "+it.ref.String())
	}
	assert.Equal(t, []string{
		"crds CustomResourceDefinition/widgets.example.com",
		"namespaces Namespace/shop",
		"cluster ClusterRole/reader",
		"namespaced ServiceAccount/shop/web",
		"namespaced ConfigMap/other/b",
		"namespaced ConfigMap/shop/a",
		"namespaced Deployment/shop/web",
		"namespaced Widget/shop/w",
		"admission ValidatingWebhookConfiguration/hook",
	}, got)

	widget := items[7]
	assert.False(t, widget.mapped, "a custom resource of a CRD in the same set waits for the CRD")
	assert.True(t, widget.namespaced, "scope comes from the CRD")
	assert.True(t, items[6].mapped)
	assert.Equal(t, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, items[6].gvr)
	_, hasStatus := items[0].payload.Object["status"]
	assert.False(t, hasStatus, "rendered status is never applied")
}

func TestPlanIsDeterministic(t *testing.T) {
	objs := []*unstructured.Unstructured{
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns1}\n"),
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns1}\n"),
		obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: b, namespace: ns1}\n"),
	}
	reversed := []*unstructured.Unstructured{objs[2], objs[1], objs[0]}
	a, err := plan(context.Background(), staticMapper(), Request{Environment: "dev", Objects: objs})
	require.NoError(t, err)
	b, err := plan(context.Background(), staticMapper(), Request{Environment: "dev", Objects: reversed})
	require.NoError(t, err)
	for i := range a {
		assert.Equal(t, a[i].ref, b[i].ref)
		assert.Equal(t, a[i].hash, b[i].hash)
	}
	assert.Equal(t, "Secret", a[0].ref.Kind, "Secrets rank before ConfigMaps")
}

func TestPlanPayload(t *testing.T) {
	req := Request{
		Environment:      "staging",
		DefaultNamespace: "shop",
		Ignore:           []IgnoreRule{{Kind: "Deployment", Name: "web", Paths: []string{"/spec/replicas", "/metadata/labels"}}},
		Objects: []*unstructured.Unstructured{obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
  annotations: {baton.dev/recreate: "true", baton.dev/desired-hash: forged}
  resourceVersion: "12"
  uid: abc
spec: {replicas: 3, paused: false}
`)},
	}
	original := req.Objects[0].DeepCopy()
	items, err := plan(context.Background(), staticMapper(), req)
	require.NoError(t, err)
	it := items[0]
	p := it.payload
	assert.Equal(t, "shop", p.GetNamespace())
	assert.Equal(t, map[string]string{LabelManagedBy: "baton", LabelEnvironment: "staging"}, p.GetLabels(),
		"an ignore rule removed the rendered labels but cannot remove baton's")
	assert.Equal(t, it.hash, p.GetAnnotations()[AnnotationDesiredHash], "a forged hash is replaced")
	assert.True(t, it.recreate)
	_, found, _ := unstructured.NestedInt64(p.Object, "spec", "replicas")
	assert.False(t, found, "ignored field is not applied")
	assert.Empty(t, p.GetResourceVersion())
	assert.Empty(t, string(p.GetUID()))
	assert.Equal(t, original, req.Objects[0], "the caller's object is not modified")

	// The hash follows content only: another revision of the same content
	// has the same hash, a change in content another.
	again, err := plan(context.Background(), staticMapper(), Request{Environment: "staging", Revision: "other", DefaultNamespace: "shop", Ignore: req.Ignore, Objects: req.Objects})
	require.NoError(t, err)
	assert.Equal(t, it.hash, again[0].hash)
	changed := req.Objects[0].DeepCopy()
	require.NoError(t, unstructured.SetNestedField(changed.Object, true, "spec", "paused"))
	third, err := plan(context.Background(), staticMapper(), Request{Environment: "staging", DefaultNamespace: "shop", Objects: []*unstructured.Unstructured{changed}})
	require.NoError(t, err)
	assert.NotEqual(t, it.hash, third[0].hash)
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		name    string
		defNS   string
		docs    []string
		wantErr []string
	}{
		{"namespace on a cluster-scoped object", "shop",
			[]string{"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader, namespace: shop}\n"},
			[]string{"plan ClusterRole/shop/reader: cluster-scoped ClusterRole must not set metadata.namespace"}},
		{"namespaced object without any namespace", "",
			[]string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"},
			[]string{"plan ConfigMap/c: namespaced object has no namespace and the environment has no default namespace"}},
		{"unknown kind", "shop",
			[]string{"apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n"},
			[]string{"map Gadget/g:", "is its CustomResourceDefinition installed?"}},
		{"duplicate", "shop",
			[]string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n"},
			[]string{"plan ConfigMap/shop/c: duplicate object: objects 0 and 1"}},
		{"missing name", "shop",
			[]string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: c-}\n"},
			[]string{"object 0: metadata.name is missing"}},
		{"missing kind", "shop",
			[]string{"no kind"},
			[]string{"object 0: kind is missing"}},
		{"every error is reported", "shop",
			[]string{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: b}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n", "apiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n"},
			[]string{"Namespace/b/a", "Gizmo/g"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Environment: "dev", DefaultNamespace: tt.defNS}
			for _, d := range tt.docs {
				if d == "no kind" {
					// The YAML decoder refuses this, so build it by hand.
					req.Objects = append(req.Objects, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "metadata": map[string]any{"name": "c"}}})
					continue
				}
				req.Objects = append(req.Objects, obj(t, d))
			}
			items, err := plan(context.Background(), staticMapper(), req)
			require.Error(t, err)
			assert.Nil(t, items, "nothing is planned when anything is wrong")
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
			var oe *ObjectError
			if tt.name != "missing name" && tt.name != "missing kind" {
				assert.True(t, errors.As(err, &oe), "errors name their object")
			}
		})
	}
	_, err := plan(context.Background(), staticMapper(), Request{Environment: "dev", Objects: []*unstructured.Unstructured{nil}})
	assert.ErrorContains(t, err, "object 0: nil object")
}

func TestValidateRequest(t *testing.T) {
	assert.NoError(t, validateRequest(Request{Environment: "prod-eu"}))
	assert.ErrorContains(t, validateRequest(Request{Environment: ""}), "not a DNS label")
	assert.ErrorContains(t, validateRequest(Request{Environment: "Prod"}), "not a DNS label")
	assert.ErrorContains(t, validateRequest(Request{Environment: "dev", Drift: "sometimes"}), `unknown drift mode "sometimes"`)
	assert.ErrorContains(t, validateRequest(Request{Environment: "dev", DefaultNamespace: "A_B"}), "default namespace")
	assert.ErrorContains(t, validateRequest(Request{Environment: "dev", Ignore: []IgnoreRule{{Paths: []string{"x"}}}}), "environment dev: ignore rule 0")
}
