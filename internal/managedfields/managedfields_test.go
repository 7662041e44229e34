package managedfields

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func object(mf any) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "web", "managedFields": mf}}
}

func entry(manager, op, sub string) map[string]any {
	m := map[string]any{"manager": manager, "operation": op, "apiVersion": "v1", "time": "2026-12-04T10:00:00Z",
		"fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:data": map[string]any{"f:a": map[string]any{}}}}
	if sub != "" {
		m["subresource"] = sub
	}
	return m
}

// TestSlim pins what the reconciler's cache keeps: every entry's manager,
// operation, subresource, apiVersion and time; no field sets; malformed
// entries gone rather than the whole field kept.
func TestSlim(t *testing.T) {
	obj := object([]any{entry("kubectl-client-side-apply", "Update", ""), "junk", entry("baton", "Apply", ""), entry("kubelet", "Update", "status")})
	Slim(obj)
	u := &unstructured.Unstructured{Object: obj}
	got := u.GetManagedFields()
	if len(got) != 3 {
		t.Fatalf("kept %d entries, want 3: %v", len(got), got)
	}
	for i, want := range []struct{ manager, op, sub string }{{"kubectl-client-side-apply", "Update", ""}, {"baton", "Apply", ""}, {"kubelet", "Update", "status"}} {
		e := got[i]
		if e.Manager != want.manager || string(e.Operation) != want.op || e.Subresource != want.sub || e.APIVersion != "v1" || e.Time == nil {
			t.Errorf("entry %d = %+v, want %+v", i, e, want)
		}
		if e.FieldsV1 != nil || e.FieldsType != "" {
			t.Errorf("entry %d kept its field set: %+v", i, e)
		}
	}

	for name, mf := range map[string]any{"not a list": "junk", "a map": map[string]any{}} {
		obj := object(mf)
		Slim(obj)
		if _, ok := obj["metadata"].(map[string]any)["managedFields"]; ok {
			t.Errorf("%s: managedFields kept", name)
		}
	}
	none := map[string]any{"metadata": map[string]any{"name": "web"}}
	Slim(none)
	if !reflect.DeepEqual(none, map[string]any{"metadata": map[string]any{"name": "web"}}) {
		t.Errorf("an object without managedFields changed: %v", none)
	}
	Slim(map[string]any{"metadata": "junk"}) // must not panic
}

func TestDrop(t *testing.T) {
	obj := object([]any{entry("baton", "Apply", "")})
	Drop(obj)
	if want := map[string]any{"name": "web"}; !reflect.DeepEqual(obj["metadata"], want) {
		t.Errorf("metadata %v, want %v", obj["metadata"], want)
	}
	Drop(map[string]any{}) // must not panic
}
