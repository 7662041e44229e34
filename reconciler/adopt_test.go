package reconciler

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// kubectlApply makes a ConfigMap the way `kubectl apply` (client-side) does.
// With kubectl on the PATH it runs kubectl itself; otherwise it sends what
// kubectl sends: a create under the field manager
// "kubectl-client-side-apply" carrying the last-applied annotation.
func kubectlApply(t *testing.T, cm *corev1.ConfigMap) {
	t.Helper()
	cm.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	manifest, err := json.Marshal(cm)
	require.NoError(t, err)
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		file := filepath.Join(t.TempDir(), "cm.json")
		require.NoError(t, os.WriteFile(file, manifest, 0o600))
		out, err := exec.CommandContext(t.Context(), kubectl, "--kubeconfig", env.KubeconfigPath(), "apply", "-f", file).CombinedOutput()
		require.NoError(t, err, "kubectl apply: %s", out)
		return
	}
	t.Log("kubectl not found: sending kubectl's client-side apply create by hand")
	cm.Annotations = map[string]string{lastApplied: string(manifest)}
	_, err = env.Clientset(t).CoreV1().ConfigMaps(cm.Namespace).Create(t.Context(), cm, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"})
	require.NoError(t, err)
}

func TestSyncAdoptsObjectMadeByKubectlApply(t *testing.T) {
	ns := env.Namespace(t)
	kubectlApply(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: ns, Labels: map[string]string{"team": "a"}},
		Data:       map[string]string{"keep": "1", "stale": "old"},
	})
	before := getObject(t, gvrConfigMaps, ns, "legacy")
	require.NotNil(t, before)
	require.True(t, needsAdoption(before), "made by client-side apply: %v", before.GetManagedFields())

	r := newReconciler(t, nil, ns, Options{})
	name := envName(t)
	desired := []*unstructured.Unstructured{configMap(ns, "legacy", map[string]string{"keep": "2"})}
	res, err := r.Sync(t.Context(), Request{Environment: name, Objects: desired})
	require.NoError(t, err)
	assert.Equal(t, ActionConfigured, res.Changes[0].Action)
	assert.Contains(t, res.Changes[0].Message, "adopted")

	live := getObject(t, gvrConfigMaps, ns, "legacy")
	data, _, _ := unstructured.NestedStringMap(live.Object, "data")
	assert.Equal(t, map[string]string{"keep": "2"}, data, "fields only kubectl had are gone")
	assert.NotContains(t, live.GetAnnotations(), lastApplied)
	assert.NotContains(t, live.GetLabels(), "team")
	assert.Equal(t, name, live.GetLabels()[LabelEnvironment])
	for _, mf := range live.GetManagedFields() {
		assert.NotEqual(t, "kubectl-client-side-apply", mf.Manager)
	}
	assert.Equal(t, before.GetUID(), live.GetUID(), "adopted, not recreated")

	res, err = r.Sync(t.Context(), Request{Environment: name, Objects: desired})
	require.NoError(t, err)
	assert.Equal(t, ActionUnchanged, res.Changes[0].Action)
}
