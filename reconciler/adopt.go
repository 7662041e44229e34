package reconciler

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
)

// clientSideManagers are the field managers of objects made before baton:
// kubectl's client-side apply, and the name the API server gives the fields
// of objects written before server-side apply tracked owners. A forced
// server-side apply takes over the fields it sets, but fields only these
// managers own would linger forever; rewriting managedFields so that baton
// owns them too lets the next apply remove what git no longer has.
var clientSideManagers = sets.New("kubectl-client-side-apply", "before-first-apply")

// needsAdoption reports whether a client-side manager still owns fields.
// It reads the raw map: GetManagedFields converts every entry through JSON,
// which would dominate a pass of unchanged objects.
func needsAdoption(obj *unstructured.Unstructured) bool {
	raw, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "metadata", "managedFields")
	entries, _ := raw.([]any)
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		manager, _ := m["manager"].(string)
		op, _ := m["operation"].(string)
		sub, _ := m["subresource"].(string)
		if clientSideManagers.Has(manager) && op == string(metav1.ManagedFieldsOperationUpdate) && sub == "" {
			return true
		}
	}
	return false
}

func adoptMessage(dryRun bool) string {
	if dryRun {
		return "would adopt fields owned by kubectl client-side apply"
	}
	return "adopted fields owned by kubectl client-side apply"
}

// adopt moves the fields of the client-side managers to baton's apply entry
// with csaupgrade's JSON patch. The patch carries the resourceVersion it
// was computed from, so a concurrent write makes it fail with a conflict
// instead of losing that write; it is then recomputed from a fresh read.
func (p *pass) adopt(ctx context.Context, it *item, live *unstructured.Unstructured, fromCache bool) (*unstructured.Unstructured, error) {
	obj := live
	for attempt := 0; ; attempt++ {
		if fromCache || attempt > 0 {
			// The cache keeps no field sets; the upgrade needs them.
			var err error
			if obj, err = p.client().get(ctx, it.gvr, it.ref.Namespace, it.ref.Name); err != nil {
				return nil, err
			}
			if obj == nil {
				return nil, nil
			}
		}
		patch, err := csaupgrade.UpgradeManagedFieldsPatch(obj, clientSideManagers, p.r.opts.FieldManager)
		if err != nil {
			return nil, fmt.Errorf("upgrade managed fields: %w", err)
		}
		if patch == nil {
			return obj, nil
		}
		out, err := p.client().jsonPatch(ctx, it.gvr, it.ref.Namespace, it.ref.Name, patch)
		if apierrors.IsConflict(err) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
}
