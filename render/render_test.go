package render

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestRenderGolden renders every fixture folder and compares the canonical
// YAML with testdata/golden/<name>.yaml (go test -run Golden -update
// rewrites them; review the diff before committing).
func TestRenderGolden(t *testing.T) {
	snap := repoSnapshot(t)
	r := newTestRenderer(t, Options{})
	for _, tc := range []struct {
		name, path string
		objects    int
	}{
		{"base", "base", 3},
		{"dev", "overlays/dev", 3},
		{"staging", "overlays/staging", 3},
		{"prod", "overlays/prod", 4},
		{"plain", "plain", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Render(context.Background(), snap, tc.path)
			require.NoError(t, err)
			assert.Len(t, res.Objects, tc.objects)
			got, err := res.YAML()
			require.NoError(t, err)
			assert.Equal(t, digestOf(got), res.Digest)

			golden := filepath.Join("testdata", "golden", tc.name+".yaml")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "missing golden file: run go test ./render -run Golden -update")
			assert.Equal(t, string(want), string(got))
		})
	}
}

// TestRenderOverlayEffects checks the overlay features one by one, so a
// golden rewrite that loses one of them does not go unnoticed.
func TestRenderOverlayEffects(t *testing.T) {
	snap := repoSnapshot(t)
	r := newTestRenderer(t, Options{})
	ctx := context.Background()

	prod, err := r.Render(ctx, snap, "overlays/prod")
	require.NoError(t, err)
	kinds := []string{}
	for _, o := range prod.Objects {
		kinds = append(kinds, o.GetKind())
		assert.Equal(t, "prod", o.GetNamespace(), o.GetName())
		assert.True(t, strings.HasPrefix(o.GetName(), "prod-"), o.GetName())
		assert.Equal(t, "prod", o.GetLabels()["env"])
		assert.Equal(t, "team-web", o.GetAnnotations()["acme.dev/owner"])
	}
	assert.Equal(t, []string{"ConfigMap", "Service", "Deployment", "PodDisruptionBudget"}, kinds, "apply order")

	dep := prod.Objects[2]
	replicas, _, _ := unstructuredInt(dep.Object, "spec", "replicas")
	assert.EqualValues(t, 3, replicas)
	containers := dep.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
	c0 := containers[0].(map[string]any)
	assert.Equal(t, "registry.acme.dev/web@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", c0["image"])
	assert.Equal(t, "512Mi", c0["resources"].(map[string]any)["limits"].(map[string]any)["memory"], "strategic merge patch")
	assert.Equal(t, "high", dep.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["priorityClassName"], "json 6902 patch")
	cm := prod.Objects[0]
	assert.Regexp(t, `^prod-web-config-[a-z0-9]{10}$`, cm.GetName(), "generated name carries a content hash")
	assert.Equal(t, "warn", cm.Object["data"].(map[string]any)["LOG_LEVEL"])
	envFrom := c0["envFrom"].([]any)[0].(map[string]any)["configMapRef"].(map[string]any)["name"]
	assert.Equal(t, cm.GetName(), envFrom, "reference follows the hashed name")

	dev, err := r.Render(ctx, snap, "overlays/dev")
	require.NoError(t, err)
	devDep := dev.Objects[2]
	devC0 := devDep.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	assert.Equal(t, "ghcr.io/acme/web:dev-4f2a91c", devC0["image"])
	assert.Equal(t, []any{"--debug"}, devC0["args"], "component patch")
	assert.Equal(t, "debug", dev.Objects[0].Object["data"].(map[string]any)["LOG_LEVEL"], "component generator merge")
	assert.NotEqual(t, cm.GetName(), strings.Replace(dev.Objects[0].GetName(), "dev-", "prod-", 1), "different data, different hash")

	staging, err := r.Render(ctx, snap, "overlays/staging")
	require.NoError(t, err)
	svc := staging.Objects[1]
	assert.Equal(t, "Service", svc.GetKind())
	assert.Equal(t, "frontend", svc.GetAnnotations()["acme.dev/tier"], "json 6902 patch from file")
	assert.Equal(t, "staging", svc.GetLabels()["env"], "commonLabels")
	stReplicas, _, _ := unstructuredInt(staging.Objects[2].Object, "spec", "replicas")
	assert.EqualValues(t, 2, stReplicas)

	assert.NotEqual(t, prod.Digest, staging.Digest)
}

func unstructuredInt(obj map[string]any, fields ...string) (int64, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, false, nil
		}
		cur = m[f]
	}
	v, ok := cur.(int64)
	return v, ok, nil
}

// TestRenderSnapshotRoot: "." and "" name the snapshot root, for
// kustomizations and plain folders alike.
func TestRenderSnapshotRoot(t *testing.T) {
	r := newTestRenderer(t, Options{})
	for name, files := range map[string]map[string]string{
		"kustomization": {"kustomization.yaml": "resources:\n  - app/deployment.yaml\n", "app/deployment.yaml": baseDeployment},
		"plain":         {"app/deployment.yaml": baseDeployment, "ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n"},
	} {
		for _, p := range []string{".", ""} {
			res, err := r.Render(context.Background(), mapSnapshot(files), p)
			require.NoError(t, err, name)
			assert.Equal(t, "web", res.Objects[len(res.Objects)-1].GetName(), name)
		}
	}
}
