package statuscond

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func object(conds ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": conds}}}
}

// TestRule pins the one reading of status.conditions: first entry of a
// type wins, malformed entries and fields are passed over.
func TestRule(t *testing.T) {
	obj := object(
		"not a map",
		map[string]any{"type": "Established", "status": "False", "reason": "Installing"},
		map[string]any{"type": "Established", "status": "True"},
		map[string]any{"type": "Available", "status": "True", "reason": 3, "message": "ok"},
	)
	if c, ok := Find(obj, "Established"); !ok || c.Status != "False" || c.Reason != "Installing" {
		t.Errorf("Find(Established) = %+v %v, want the first entry", c, ok)
	}
	if IsTrue(obj, "Established") {
		t.Error("a type listed twice is read by its first entry")
	}
	if !IsTrue(obj, "Available") {
		t.Error("Available=True not found")
	}
	if _, ok := Find(obj, "Ready"); ok {
		t.Error("missing condition found")
	}
	want := []Condition{{"Established", "False", "Installing", ""}, {"Established", "True", "", ""}, {"Available", "True", "", "ok"}}
	if got := All(obj); !reflect.DeepEqual(got, want) {
		t.Errorf("All = %+v, want %+v", got, want)
	}
	for name, o := range map[string]*unstructured.Unstructured{
		"nil": nil, "no status": {Object: map[string]any{}},
		"conditions not a list": {Object: map[string]any{"status": map[string]any{"conditions": "x"}}},
		"status not a map":      {Object: map[string]any{"status": "x"}},
	} {
		if IsTrue(o, "Ready") || len(All(o)) != 0 {
			t.Errorf("%s: conditions read", name)
		}
	}
	for c, s := range map[Condition]string{
		{"Ready", "False", "Crash", "back-off"}: "Ready=False (Crash: back-off)",
		{"Ready", "True", "", ""}:               "Ready=True",
		{"Ready", "False", "", "waiting"}:       "Ready=False (waiting)",
		{"Ready", "False", "Crash", ""}:         "Ready=False (Crash)",
	} {
		if c.String() != s {
			t.Errorf("%+v.String() = %q, want %q", c, c.String(), s)
		}
	}
}
