package reconciler

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStageOf(t *testing.T) {
	tests := []struct {
		group, kind string
		namespaced  bool
		want        stage
	}{
		{"apiextensions.k8s.io", "CustomResourceDefinition", false, stageCRDs},
		{"", "Namespace", false, stageNamespaces},
		{"rbac.authorization.k8s.io", "ClusterRole", false, stageCluster},
		{"", "ConfigMap", true, stageNamespaced},
		{"example.com", "Widget", true, stageNamespaced},
		{"example.com", "ClusterWidget", false, stageCluster},
		{"example.com", "Namespace", false, stageCluster},
		{"admissionregistration.k8s.io", "MutatingWebhookConfiguration", false, stageAdmission},
		{"admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", false, stageAdmission},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, stageOf(tt.group, tt.kind, tt.namespaced), "%s/%s", tt.group, tt.kind)
	}
}

func TestCompareRefs(t *testing.T) {
	sa := ObjectRef{Kind: "ServiceAccount", Namespace: "z", Name: "z"}
	dep := ObjectRef{Group: "apps", Kind: "Deployment", Namespace: "a", Name: "a"}
	unknownA := ObjectRef{Group: "a.example.com", Kind: "Zed", Namespace: "a", Name: "a"}
	unknownB := ObjectRef{Group: "b.example.com", Kind: "Alpha", Namespace: "a", Name: "a"}
	assert.Negative(t, compareRefs(sa, dep), "known rank first")
	assert.Negative(t, compareRefs(dep, unknownA), "known kinds before unknown ones")
	assert.Negative(t, compareRefs(unknownA, unknownB), "unknown kinds by group")
	assert.Negative(t, compareRefs(ObjectRef{Kind: "ConfigMap", Namespace: "a", Name: "b"}, ObjectRef{Kind: "ConfigMap", Namespace: "b", Name: "a"}))
	assert.Zero(t, compareRefs(sa, sa))
}

func TestObjectRefString(t *testing.T) {
	assert.Equal(t, "Deployment/shop/web", ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "web"}.String())
	assert.Equal(t, "Namespace/shop", ObjectRef{Version: "v1", Kind: "Namespace", Name: "shop"}.String())
}
