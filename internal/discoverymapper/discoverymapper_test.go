package discoverymapper_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"

	"github.com/baton-gitops/baton/internal/discoverymapper"
)

// The mapper's rule on a real API server: built-in kinds map; a kind
// discovery did not know stays unknown while the cache is kept, even once
// its CRD is served; after Reset it is found.
func TestMapperKeepsDiscoveryUntilReset(t *testing.T) {
	ctx := t.Context()
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config())
	require.NoError(t, err)
	m := discoverymapper.New(dc)

	deploy, err := m.RESTMapping(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "v1")
	require.NoError(t, err)
	require.Equal(t, "deployments", deploy.Resource.Resource)
	require.Equal(t, meta.RESTScopeNameNamespace, deploy.Scope.Name())

	group := "m" + rand.String(8) + ".example.com"
	gk := schema.GroupKind{Group: group, Kind: "Widget"}
	_, err = m.RESTMapping(gk, "v1")
	require.True(t, meta.IsNoMatchError(err), "unknown kind: %v", err)

	crds := env.Dynamic(t).Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	_, err = crds.Create(ctx, crd, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = crds.Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{})
	})
	// A fresh discovery client sees the kind served...
	fresh, err := discovery.NewDiscoveryClientForConfig(env.Config())
	require.NoError(t, err)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		list, err := fresh.ServerResourcesForGroupVersion(group + "/v1")
		return err == nil && len(list.APIResources) > 0, nil
	}), "the CRD is never served")
	// ...the kept cache does not, until Reset.
	_, err = m.RESTMapping(gk, "v1")
	require.True(t, meta.IsNoMatchError(err), "the cache was re-read without a Reset: %v", err)
	m.Reset()
	got, err := m.RESTMapping(gk, "v1")
	require.NoError(t, err, "after Reset")
	require.Equal(t, fmt.Sprintf("%s/v1, Resource=widgets", group), got.Resource.String())
}
