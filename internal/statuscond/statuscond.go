// Package statuscond reads the status.conditions of an object of any kind:
// built-in and custom kinds share the shape (type, status, reason,
// message), so one reader serves the reconciler (a CRD Established, an
// APIService Available), health and the Environment resource's install.
//
// The rule: an entry that is not a map is skipped, a field that is not a
// string reads as "", and when a type is listed more than once the first
// entry counts, as meta.FindStatusCondition does for typed conditions.
package statuscond

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// Condition is one status condition.
type Condition struct {
	Type    string
	Status  string // "True", "False" or "Unknown"
	Reason  string
	Message string
}

// String renders the condition as "Type=Status (Reason: message)",
// leaving out the empty parts.
func (c Condition) String() string {
	s := c.Type + "=" + c.Status
	switch {
	case c.Reason != "" && c.Message != "":
		s += " (" + c.Reason + ": " + c.Message + ")"
	case c.Reason != "":
		s += " (" + c.Reason + ")"
	case c.Message != "":
		s += " (" + c.Message + ")"
	}
	return s
}

// All returns the object's conditions in their order. A malformed custom
// resource yields what can be read, never an error.
func All(obj *unstructured.Unstructured) []Condition {
	raw := entries(obj)
	out := make([]Condition, 0, len(raw))
	for _, item := range raw {
		if m, ok := item.(map[string]any); ok {
			out = append(out, read(m))
		}
	}
	return out
}

// Find returns the first condition of type t.
func Find(obj *unstructured.Unstructured, t string) (Condition, bool) {
	for _, item := range entries(obj) {
		if m, ok := item.(map[string]any); ok && m["type"] == t {
			return read(m), true
		}
	}
	return Condition{}, false
}

// IsTrue reports whether the condition of type t has status "True".
func IsTrue(obj *unstructured.Unstructured, t string) bool {
	c, ok := Find(obj, t)
	return ok && c.Status == "True"
}

// entries is status.conditions without a copy: readers only read.
func entries(obj *unstructured.Unstructured) []any {
	if obj == nil {
		return nil
	}
	raw, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "status", "conditions")
	list, _ := raw.([]any)
	return list
}

func read(m map[string]any) Condition {
	return Condition{Type: str(m["type"]), Status: str(m["status"]), Reason: str(m["reason"]), Message: str(m["message"])}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
