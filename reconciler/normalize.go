package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// serverMetadata lists metadata fields the API server owns. They are never
// sent in an apply and never compared: they change on every write.
var serverMetadata = []string{
	"managedFields", "resourceVersion", "generation", "uid", "selfLink",
	"creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
}

// stripServerFields removes what the server owns from an object in place:
// server metadata and status. Desired state never includes status; a
// rendered `status: {}` (as controller-gen writes for CRDs) is dropped too.
func stripServerFields(obj map[string]any) {
	if md, ok := obj["metadata"].(map[string]any); ok {
		for _, f := range serverMetadata {
			delete(md, f)
		}
	}
	delete(obj, "status")
}

// normalized returns a copy of obj fit for comparison and display: server
// fields, status and baton's own hash annotation removed, and empty label or
// annotation maps dropped so that "no annotations" and "{}" compare equal.
func normalized(obj *unstructured.Unstructured) map[string]any {
	if obj == nil {
		return nil
	}
	out := runtime.DeepCopyJSON(obj.Object)
	stripServerFields(out)
	if md, ok := out["metadata"].(map[string]any); ok {
		if ann, ok := md["annotations"].(map[string]any); ok {
			delete(ann, AnnotationDesiredHash)
		}
		for _, f := range []string{"annotations", "labels"} {
			if m, ok := md[f].(map[string]any); ok && len(m) == 0 {
				delete(md, f)
			}
		}
	}
	return out
}

// sameObject reports whether two objects are equal once normalized.
func sameObject(a, b *unstructured.Unstructured) bool {
	return reflect.DeepEqual(normalized(a), normalized(b))
}

// desiredHash hashes an apply payload. encoding/json writes map keys in
// sorted order, so equal content always gives the same hash. The payload must
// not yet carry AnnotationDesiredHash.
func desiredHash(payload map[string]any) (string, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("hash object: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12]), nil
}

// upToDate reports whether applying payload to live would change nothing, so
// the apply can be skipped without a round trip. Two facts together say so:
//   - live carries the payload's hash, so the last apply of this object was
//     of exactly this content (nothing baton owned has since left git, which a
//     field-by-field check cannot see);
//   - every field of the payload has the same value in live, so nobody edited
//     a field baton owns.
//
// A false answer is not a verdict: the server may spell a value differently
// (a quantity "0.5" as "500m"), and the caller then asks the server.
func upToDate(live *unstructured.Unstructured, payload map[string]any, hash string) bool {
	if live == nil || live.GetDeletionTimestamp() != nil {
		return false
	}
	if live.GetAnnotations()[AnnotationDesiredHash] != hash {
		return false
	}
	return subsetEqual(payload, live.Object)
}

// subsetEqual reports whether every field of want is present in have with an
// equal value. Maps may have extra keys in have (server defaults, fields of
// other managers); lists must have the same length, element by element
// subset-equal, because list elements are matched by position here.
func subsetEqual(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok {
				// An explicit null asks for "unset": absent is equal.
				if wv == nil {
					continue
				}
				return false
			}
			if !subsetEqual(wv, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subsetEqual(w[i], h[i]) {
				return false
			}
		}
		return true
	case nil:
		return have == nil
	default:
		if wn, ok := asFloat(want); ok {
			hn, ok := asFloat(have)
			return ok && wn == hn
		}
		return reflect.DeepEqual(want, have)
	}
}

// asFloat widens JSON numbers: rendered YAML yields int64 where the server's
// JSON may decode to int64 or float64.
func asFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case float64:
		return n, true
	case float32:
		return float64(n), true
	}
	return 0, false
}
