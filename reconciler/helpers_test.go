package reconciler

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// obj parses one YAML object the way render hands objects over.
func obj(t testing.TB, doc string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	require.NoError(t, yaml.Unmarshal([]byte(doc), &m))
	u := &unstructured.Unstructured{}
	// Round-trip through JSON so that numbers are int64/float64 as the
	// apimachinery decoders produce them.
	b, err := yaml.Marshal(m)
	require.NoError(t, err)
	j, err := yaml.YAMLToJSON(b)
	require.NoError(t, err)
	require.NoError(t, u.UnmarshalJSON(j))
	return u
}

func unstructuredString(u *unstructured.Unstructured, fields ...string) (string, bool, error) {
	return unstructured.NestedString(u.Object, fields...)
}
