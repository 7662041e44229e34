package reconciler

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPruneDecision(t *testing.T) {
	cm := ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "c"}
	ns := ObjectRef{Version: "v1", Kind: "Namespace", Name: "a"}
	pvc := ObjectRef{Version: "v1", Kind: "PersistentVolumeClaim", Namespace: "a", Name: "data"}
	crd := ObjectRef{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "widgets.example.com"}
	// A kind named like a protected one in another group is not protected.
	otherNS := ObjectRef{Group: "example.com", Version: "v1", Kind: "Namespace", Name: "x"}
	yes := map[string]string{AnnotationPrune: "true"}
	no := map[string]string{AnnotationPrune: "false"}
	tests := []struct {
		name   string
		ref    ObjectRef
		ann    map[string]string
		policy bool
		del    bool
		reason string
	}{
		{"ordinary object, prune on", cm, nil, true, true, ""},
		{"ordinary object, prune off", cm, nil, false, false, "pruning is off"},
		{"annotation false beats policy", cm, no, true, false, `annotated baton.dev/prune: "false"`},
		{"annotation true beats policy off", cm, yes, false, true, ""},
		{"namespace kept", ns, nil, true, false, "Namespace is only pruned when annotated"},
		{"namespace with annotation", ns, yes, true, true, ""},
		{"pvc kept", pvc, nil, true, false, "PersistentVolumeClaim is only pruned"},
		{"crd kept", crd, nil, true, false, "CustomResourceDefinition is only pruned"},
		{"crd with annotation", crd, yes, true, true, ""},
		{"crd annotated false", crd, no, true, false, `"false"`},
		{"same kind name in other group", otherNS, nil, true, true, ""},
		{"unknown annotation value follows policy", cm, map[string]string{AnnotationPrune: "maybe"}, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			del, reason := pruneDecision(tt.ref, tt.ann, tt.policy)
			assert.Equal(t, tt.del, del)
			if tt.reason == "" {
				assert.Empty(t, reason)
			} else {
				assert.Contains(t, reason, tt.reason)
			}
		})
	}
}
