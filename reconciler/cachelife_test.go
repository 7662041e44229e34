package reconciler

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// cacheEntries lists the watches env uses, as resource/namespace ("" for
// one across all namespaces).
func cacheEntries(r *Reconciler, env string) []string {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	var out []string
	for k, e := range r.cache.entries {
		if e.users[env] {
			out = append(out, k.gvr.Resource+"/"+k.namespace)
		}
	}
	return out
}

// One watch per resource serves every environment and namespace; a watch
// no environment needs any more is stopped after their passes, and every
// watch when the replica syncs no environment.
func TestCacheEvictsWhatNoEnvironmentUses(t *testing.T) {
	ns, other := env.Namespace(t), env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name, second := envName(t), envName(t)+"-2"
	secret := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "s"}, "stringData": map[string]any{"k": "v"}}}
	_, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{configMap("", "a", nil), configMap(other, "b", nil), secret}})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"configmaps/", "secrets/"}, cacheEntries(r, name), "one watch per resource, across namespaces")
	_, err = r.Sync(t.Context(), Request{Environment: second, DefaultNamespace: other, Prune: true,
		Objects: []*unstructured.Unstructured{configMap("", "c", nil)}})
	require.NoError(t, err)
	assert.Equal(t, []string{"configmaps/"}, cacheEntries(r, second))

	_, err = r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{secret}})
	require.NoError(t, err)
	assert.Equal(t, []string{"secrets/"}, cacheEntries(r, name), "the ConfigMaps left git")
	assert.Equal(t, []string{"configmaps/"}, cacheEntries(r, second), "the other environment's watch stopped")

	r.ReleaseCacheOf(second)
	assert.Empty(t, cacheEntries(r, second))
	r.cache.mu.Lock()
	_, stillWatched := r.cache.entries[scopeKey{gvr: gvrConfigMaps}]
	r.cache.mu.Unlock()
	assert.False(t, stillWatched, "a watch no environment uses still runs")

	r.ReleaseCache()
	assert.Empty(t, cacheEntries(r, name))
	// The next pass starts what it needs again.
	res, err := r.Sync(t.Context(), Request{Environment: name, DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{secret}})
	require.NoError(t, err)
	assert.Equal(t, ActionUnchanged, changeFor(t, res, "Secret", "s").Action)
	assert.Equal(t, []string{"secrets/"}, cacheEntries(r, name))
}

// A watch RBAC refused is tried again after a backoff: once RBAC allows
// it, the cache answers again without a restart.
func TestCacheRetriesARefusedWatch(t *testing.T) {
	ns := env.Namespace(t)
	// May read, write and delete ConfigMaps one by one, not list or watch.
	cfg := env.RestrictedConfig(t, ns,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create", "update", "patch", "delete"}})
	var gets atomic.Int64
	counter := requestCounter{onRequest: func(r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/configmaps/cm-") {
			gets.Add(1)
		}
	}}
	r := newReconciler(t, counter.wrap(cfg), ns, Options{CacheRetry: 200 * time.Millisecond})
	grantInventory(t, r.opts.InventoryNamespace, ns)
	name := envName(t)
	req := Request{Environment: name, DefaultNamespace: ns, Prune: true, Objects: configMaps("", 5, "x")}
	_, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	gets.Store(0)
	_, err = r.Sync(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, int64(5), gets.Load(), "refused: every object is read with a GET")

	// RBAC is fixed: the ServiceAccount may now list and watch.
	roles, err := env.Clientset(t).RbacV1().Roles(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, roles.Items, 1)
	role := roles.Items[0]
	role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list", "watch"}})
	_, err = env.Clientset(t).RbacV1().Roles(ns).Update(t.Context(), &role, metav1.UpdateOptions{})
	require.NoError(t, err)

	eventually(t, "a pass served by the watch cache again", func() bool {
		gets.Store(0)
		_, err := r.Sync(context.Background(), req)
		require.NoError(t, err)
		return gets.Load() == 0
	})
}

// An apply's answer never replaces a newer state the watch delivered: a
// hand edit made right after the apply is seen as drift by the next pass.
func TestRememberKeepsTheNewerWatchedObject(t *testing.T) {
	ns := env.Namespace(t)
	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	req := Request{Environment: name, DefaultNamespace: ns, Prune: true,
		Objects: []*unstructured.Unstructured{configMap("", "a", map[string]string{"k": "git"})}}
	_, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	applied := getObject(t, gvrConfigMaps, ns, "a")

	// Edited by hand; the watch delivers the edit.
	edited := applied.DeepCopy()
	require.NoError(t, unstructured.SetNestedField(edited.Object, "hand", "data", "k"))
	edited, err = env.Dynamic(t).Resource(gvrConfigMaps).Namespace(ns).Update(t.Context(), edited, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitCached(t, r, name, gvrConfigMaps, ns, "a", func(u *unstructured.Unstructured) bool {
		v, _, _ := unstructured.NestedString(u.Object, "data", "k")
		return v == "hand"
	})

	// The apply's answer arrives late (it carries the older version).
	r.cache.remember(name, gvrConfigMaps, applied)
	got, ok := r.cache.lookup(t.Context(), name, gvrConfigMaps, ns, "a")
	require.True(t, ok)
	assert.Equal(t, edited.GetResourceVersion(), got.obj.ResourceVersion, "the older apply answer replaced the watched edit")
	assert.False(t, got.verified, "the hand edit counts as verified")

	res, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/" + ns + "/a"}, refNames(res.Drifted))

	// A newer apply answer is taken before the watch delivers it.
	newer := getObject(t, gvrConfigMaps, ns, "a")
	newer.SetResourceVersion("999999999999")
	r.cache.remember(name, gvrConfigMaps, newer)
	got, _ = r.cache.lookup(t.Context(), name, gvrConfigMaps, ns, "a")
	assert.Equal(t, "999999999999", got.obj.ResourceVersion)
	assert.True(t, got.verified)
}

func TestRetryPolicy(t *testing.T) {
	p := retryPolicy{base: time.Second, max: 8 * time.Second}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, p.after(n))
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}, got)
}
