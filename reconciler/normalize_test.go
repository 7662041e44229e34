package reconciler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const liveDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  uid: 1234
  resourceVersion: "42"
  generation: 3
  creationTimestamp: "2024-01-01T00:00:00Z"
  labels: {app: web}
  annotations:
    baton.dev/desired-hash: abc
    deployment.kubernetes.io/revision: "3"
  managedFields:
  - manager: baton
    operation: Apply
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1
        imagePullPolicy: IfNotPresent
        terminationMessagePath: /dev/termination-log
        resources: {limits: {cpu: 500m}}
status:
  replicas: 2
`

func TestNormalized(t *testing.T) {
	n := normalized(obj(t, liveDeployment))
	md := n["metadata"].(map[string]any)
	for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"} {
		assert.NotContains(t, md, f)
	}
	assert.NotContains(t, n, "status")
	assert.Equal(t, map[string]any{"deployment.kubernetes.io/revision": "3"}, md["annotations"], "only baton's hash is dropped")

	only := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {baton.dev/desired-hash: x}, labels: {}}\n")
	assert.Equal(t, map[string]any{"name": "a"}, normalized(only)["metadata"], "empty maps left by normalizing are dropped")
	assert.Nil(t, normalized(nil))
}

func TestUpToDate(t *testing.T) {
	live := obj(t, liveDeployment)
	payload := func(extra string) map[string]any {
		return obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
  annotations: {baton.dev/desired-hash: abc}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: `+extra+`
        resources: {limits: {cpu: 500m}}
`).Object
	}
	assert.True(t, upToDate(live, payload("nginx:1"), "abc"), "server defaults and extra fields do not matter")
	assert.False(t, upToDate(live, payload("nginx:2"), "abc"), "a field baton sets differs")
	assert.False(t, upToDate(live, payload("nginx:1"), "other"), "the last apply was of other content")
	assert.False(t, upToDate(nil, payload("nginx:1"), "abc"))

	deleting := live.DeepCopy()
	deleting.Object["metadata"].(map[string]any)["deletionTimestamp"] = "2024-01-01T00:00:00Z"
	assert.False(t, upToDate(deleting, payload("nginx:1"), "abc"), "an object being deleted must be applied again")
}

func TestSubsetEqual(t *testing.T) {
	tests := []struct {
		name       string
		want, have any
		equal      bool
	}{
		{"int and float", int64(3), float64(3), true},
		{"different numbers", int64(3), int64(4), false},
		{"string and number", "3", int64(3), false},
		{"extra keys in have", map[string]any{"a": "x"}, map[string]any{"a": "x", "b": "y"}, true},
		{"missing key", map[string]any{"a": "x"}, map[string]any{"b": "y"}, false},
		{"explicit null matches absent", map[string]any{"a": nil}, map[string]any{}, true},
		{"list length differs", []any{"a"}, []any{"a", "b"}, false},
		{"list elements subset", []any{map[string]any{"n": "a"}}, []any{map[string]any{"n": "a", "d": true}}, true},
		{"list order matters", []any{"a", "b"}, []any{"b", "a"}, false},
		{"map versus scalar", map[string]any{}, "x", false},
		{"bools", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.equal, subsetEqual(tt.want, tt.have))
		})
	}
}

func TestDesiredHash(t *testing.T) {
	a := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {x: '1', y: '2'}}\ndata: {k: v}\n")
	b := obj(t, "kind: ConfigMap\ndata: {k: v}\nmetadata: {labels: {y: '2', x: '1'}, name: a}\napiVersion: v1\n")
	ha, err := desiredHash(a.Object)
	require.NoError(t, err)
	hb, err := desiredHash(b.Object)
	require.NoError(t, err)
	assert.Equal(t, ha, hb, "key order does not change the hash")
	assert.Len(t, ha, 24)

	b.Object["data"] = map[string]any{"k": "w"}
	hc, err := desiredHash(b.Object)
	require.NoError(t, err)
	assert.NotEqual(t, ha, hc)
}
