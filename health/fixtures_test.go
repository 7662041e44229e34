package health

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Fixtures in testdata are objects captured from the test control plane by
// TestCaptureFixtures (see capture_test.go). A status fixture holds one
// object; a diagnose fixture holds the object followed by its evidence (its
// newest ReplicaSet, its pods, the Warning events), one YAML document each.

// loadDocs reads testdata/<name>.yaml as a list of objects.
func loadDocs(t testing.TB, name string) []*unstructured.Unstructured {
	t.Helper()
	path := filepath.Join("testdata", name+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var out []*unstructured.Unstructured
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u, err := decodeYAML(doc)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if u != nil {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no objects", path)
	}
	return out
}

// decodeYAML decodes one YAML document as client-go does, so numbers are
// int64 as they are in objects read from the apiserver (plain JSON gives
// float64). A document holding only comments gives nil.
func decodeYAML(doc []byte) (*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	if string(bytes.TrimSpace(j)) == "null" {
		return nil, nil
	}
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(j, nil, nil)
	if err != nil {
		return nil, err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("decoded %T, want one object", obj)
	}
	return u, nil
}

// loadObject reads a fixture holding exactly one object.
func loadObject(t testing.TB, name string) *unstructured.Unstructured {
	t.Helper()
	docs := loadDocs(t, name)
	if len(docs) != 1 {
		t.Fatalf("testdata/%s.yaml: %d objects, want 1", name, len(docs))
	}
	return docs[0]
}

// loadCase reads a diagnose fixture: the object and its evidence.
func loadCase(t testing.TB, name string) (*unstructured.Unstructured, Evidence) {
	t.Helper()
	docs := loadDocs(t, name)
	var ev Evidence
	for _, d := range docs[1:] {
		switch d.GetKind() {
		case "ReplicaSet":
			rs := &appsv1.ReplicaSet{}
			fromUnstructured(t, d, rs)
			ev.ReplicaSet = rs
		case "Pod":
			var p corev1.Pod
			fromUnstructured(t, d, &p)
			ev.Pods = append(ev.Pods, p)
		case "Event":
			var e corev1.Event
			fromUnstructured(t, d, &e)
			ev.Events = append(ev.Events, e)
		default:
			t.Fatalf("testdata/%s.yaml: unexpected evidence kind %s", name, d.GetKind())
		}
	}
	return docs[0], ev
}

func fromUnstructured(t testing.TB, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("convert %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}
