package managedfields

import (
	"reflect"
	"testing"
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

func TestDrop(t *testing.T) {
	obj := object([]any{entry("baton", "Apply", "")})
	Drop(obj)
	if want := map[string]any{"name": "web"}; !reflect.DeepEqual(obj["metadata"], want) {
		t.Errorf("metadata %v, want %v", obj["metadata"], want)
	}
	Drop(map[string]any{}) // must not panic
}
