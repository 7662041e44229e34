package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/yaml"
)

// objectKey identifies an object in a cluster: the API version is not part
// of it, so apps/v1 and apps/v1beta1 of one Deployment are duplicates.
type objectKey struct {
	group, kind, namespace, name string
}

func keyOf(u *unstructured.Unstructured) objectKey {
	return objectKey{u.GroupVersionKind().Group, u.GetKind(), u.GetNamespace(), u.GetName()}
}

// toObjects converts Kustomize's output and validates it: every object has
// apiVersion, kind and metadata.name, and no object appears twice.
func toObjects(rm resmap.ResMap, g *graph) ([]*unstructured.Unstructured, error) {
	res := rm.Resources()
	objs := make([]*unstructured.Unstructured, 0, len(res))
	seen := make(map[objectKey]int, len(res))
	for _, r := range res {
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", objectRef(r.GetKind(), r.GetNamespace(), r.GetName()), err)
		}
		// utiljson keeps integers as int64, as unstructured requires.
		var m map[string]any
		if err := utiljson.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("decode %s: %w", objectRef(r.GetKind(), r.GetNamespace(), r.GetName()), err)
		}
		u := &unstructured.Unstructured{Object: m}
		if err := checkIdentity(u, g); err != nil {
			return nil, err
		}
		k := keyOf(u)
		if i, dup := seen[k]; dup {
			return nil, duplicateError(objs[i], u, g)
		}
		seen[k] = len(objs)
		objs = append(objs, u)
	}
	return objs, nil
}

func checkIdentity(u *unstructured.Unstructured, g *graph) error {
	var missing string
	switch {
	case u.GetAPIVersion() == "":
		missing = "apiVersion"
	case u.GetKind() == "":
		missing = "kind"
	case u.GetName() == "":
		missing = "metadata.name"
	default:
		return nil
	}
	ref := objectRef(u.GetKind(), u.GetNamespace(), u.GetName())
	docs, _ := g.allDocs()
	var from []manifestDoc
	for _, d := range sourcesOf(docs, "", u.GetKind(), u.GetName()) {
		if (missing == "apiVersion" && d.apiVersion == "") || (missing == "kind" && d.kind == "") || (missing == "metadata.name" && d.name == "") {
			from = append(from, d)
		}
	}
	if len(from) > 0 {
		return fmt.Errorf("%s: object %s has no %s", joinSources(from), ref, missing)
	}
	return fmt.Errorf("object %s has no %s", ref, missing)
}

// duplicateError names both objects and, when they can be found, the files
// they came from.
func duplicateError(a, b *unstructured.Unstructured, g *graph) error {
	ref := objectRef(b.GetKind(), b.GetNamespace(), b.GetName())
	docs, _ := g.allDocs()
	srcA := sourcesOf(docs, a.GetAPIVersion(), a.GetKind(), a.GetName())
	srcB := sourcesOf(docs, b.GetAPIVersion(), b.GetKind(), b.GetName())
	if len(srcA) > 0 && len(srcB) > 0 && srcA[0] != srcB[0] {
		return fmt.Errorf("duplicate object %s: rendered from %s (%s) and from %s (%s)",
			ref, srcA[0], a.GetAPIVersion(), srcB[0], b.GetAPIVersion())
	}
	return fmt.Errorf("duplicate object %s: rendered twice (%s and %s)", ref, a.GetAPIVersion(), b.GetAPIVersion())
}

// canonicalYAML writes objects as one YAML stream with sorted keys; the
// same objects in the same order always give the same bytes.
func canonicalYAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, u := range objs {
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", objectRef(u.GetKind(), u.GetNamespace(), u.GetName()), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(y)
	}
	return buf.Bytes(), nil
}

func digestOf(y []byte) string {
	sum := sha256.Sum256(y)
	return "sha256:" + hex.EncodeToString(sum[:])
}
