package render

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv/hostile"
)

// TestLimitsRefuseHostileInput: each attack fails the render with a
// *LimitError naming the limit and the file, before Kustomize has built it
// (the renders finish at once and allocate little).
func TestLimitsRefuseHostileInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		path   string
		limit  string
		file   string
		detail string
	}{
		{
			name:   "alias bomb",
			files:  map[string]string{"o/kustomization.yaml": "resources: [bomb.yaml]\n", "o/bomb.yaml": hostile.AliasBomb("bomb", 9)},
			path:   "o",
			limit:  LimitAliases,
			file:   "o/bomb.yaml",
			detail: "o/bomb.yaml: its aliases expand to more than 10000 YAML nodes: over the YAML alias expansion limit of 10000 nodes (limits.maxAliasNodes)",
		},
		{
			name:   "alias bomb in a patch",
			files:  map[string]string{"o/kustomization.yaml": "resources: [cm.yaml]\npatches: [{path: p.yaml}]\n", "o/cm.yaml": cm("bomb"), "o/p.yaml": hostile.AliasBomb("bomb", 9)},
			path:   "o",
			limit:  LimitAliases,
			file:   "o/p.yaml",
			detail: "o/p.yaml: its aliases expand",
		},
		{
			name:   "alias bomb in a plain folder",
			files:  map[string]string{"plain/a.yaml": cm("a"), "plain/bomb.yaml": hostile.AliasBomb("bomb", 9)},
			path:   "plain",
			limit:  LimitAliases,
			file:   "plain/bomb.yaml",
			detail: "plain/bomb.yaml: its aliases expand",
		},
		{
			name:   "oversized blob",
			files:  map[string]string{"o/kustomization.yaml": "resources: [big.yaml]\n", "o/big.yaml": hostile.Oversized("big", 9<<20)},
			path:   "o",
			limit:  LimitFileSize,
			file:   "o/big.yaml",
			detail: "o/big.yaml: the file is 9.0 MiB: over the file size limit of 8.0 MiB (limits.maxFileSize)",
		},
		{
			name:   "oversized kustomization",
			files:  map[string]string{"o/kustomization.yaml": "resources: [a.yaml]\ncommonAnnotations: {x: \"" + strings.Repeat("x", 9<<20) + "\"}\n", "o/a.yaml": cm("a")},
			path:   "o",
			limit:  LimitFileSize,
			file:   "o/kustomization.yaml",
			detail: "o/kustomization.yaml: the file is 9.0 MiB",
		},
		{
			name:   "exponential fan-out",
			files:  hostile.FanOut("o", 30),
			path:   "o",
			limit:  LimitObjects,
			file:   "o/kustomization.yaml",
			detail: "o/kustomization.yaml: the kustomizations it reaches would render at least 1073741824 objects (" + fanOutLeaf(30) + " is reached 1073741824 times): over the object count limit of 10000 objects (limits.maxObjects)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRenderer(t, Options{CacheSize: -1})
			res, err := r.Render(context.Background(), mapSnapshot(tc.files), tc.path)
			require.Error(t, err)
			assert.Empty(t, res.Objects)
			var le *LimitError
			require.True(t, errors.As(err, &le), "%v", err)
			assert.Equal(t, tc.limit, le.Limit)
			assert.Equal(t, tc.file, le.File)
			assert.Contains(t, err.Error(), tc.detail)
		})
	}
}

func fanOutLeaf(levels int) string {
	p := "o"
	for l := 1; l <= levels; l++ {
		p += fmt.Sprintf("/l%d", l)
	}
	return p
}

func cm(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  k: v\n"
}

// TestLimitsLetRealInputThrough: anchors used the way people use them, a
// generator's raw data with "&" and "*" in it, a small fan-out and a file
// just under the size limit all render.
func TestLimitsLetRealInputThrough(t *testing.T) {
	files := map[string]string{
		"o/kustomization.yaml": "resources: [anchors.yaml, big.yaml, ../fan]\nconfigMapGenerator: [{name: script, files: [run.sh]}]\n",
		"o/anchors.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: &labels {app: web}}
  template:
    metadata: {labels: *labels}
    spec:
      containers:
        - name: a
          image: nginx
          env: &env [{name: A, value: "1"}, {name: B, value: "2"}]
        - name: b
          image: nginx
          env: *env
`,
		"o/run.sh":   "#!/bin/sh\ntest -f /etc/x && exec /bin/app --glob '*.yaml' &\n",
		"o/big.yaml": hostile.Oversized("big", 64<<10-2), // plus its closing quote and newline
	}
	for p, c := range hostile.FanOut("fan", 6) {
		files[p] = c
	}
	// A small size limit keeps the file just under it quick to build
	// under the race detector.
	r := newTestRenderer(t, Options{CacheSize: -1, Limits: Limits{MaxFileSize: 64 << 10}})
	res, err := r.Render(context.Background(), mapSnapshot(files), "o")
	require.NoError(t, err)
	assert.Len(t, res.Objects, 3+64)
}

// TestObjectLimitAfterTheBuild: a List hides its items from the count made
// before the build; the count after it refuses them.
func TestObjectLimitAfterTheBuild(t *testing.T) {
	var items []string
	for i := range 30 {
		items = append(items, fmt.Sprintf("  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c%d}}", i))
	}
	files := map[string]string{
		"o/kustomization.yaml": "resources: [list.yaml]\n",
		"o/list.yaml":          "apiVersion: v1\nkind: List\nitems:\n" + strings.Join(items, "\n") + "\n",
	}
	r := newTestRenderer(t, Options{CacheSize: -1, Limits: Limits{MaxObjects: 20}})
	_, err := r.Render(context.Background(), mapSnapshot(files), "o")
	var le *LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, LimitObjects, le.Limit)
	assert.EqualError(t, err, "render o: o/kustomization.yaml: it renders 30 objects: over the object count limit of 20 objects (limits.maxObjects)")

	r = newTestRenderer(t, Options{CacheSize: -1, Limits: Limits{MaxObjects: -1}})
	res, err := r.Render(context.Background(), mapSnapshot(files), "o")
	require.NoError(t, err)
	assert.Len(t, res.Objects, 30)
}

func TestAliasExpansionCount(t *testing.T) {
	for levels, want := range map[int]int64{1: 9 * 10, 2: 9*10 + 9*91} {
		got, err := aliasExpansion([]byte(hostile.AliasBomb("b", levels)), 1<<40)
		require.NoError(t, err)
		assert.Equal(t, want, got, "levels %d", levels)
	}
	// Linear time whatever the depth: 40 levels is 9^40 nodes.
	got, err := aliasExpansion([]byte(hostile.AliasBomb("b", 40)), 1<<40)
	require.NoError(t, err)
	assert.Greater(t, got, int64(1<<40))
}

func TestSourcesNameTheFile(t *testing.T) {
	snap := repoSnapshot(t)
	r := newTestRenderer(t, Options{})
	res, err := r.Render(context.Background(), snap, "overlays/prod")
	require.NoError(t, err)
	source := r.Sources(snap, "overlays/prod")
	var got []string
	for _, o := range res.Objects {
		got = append(got, o.GetKind()+" "+source(o))
	}
	assert.Contains(t, got, "Deployment base/deployment.yaml:1")
}

func TestSizesInMessages(t *testing.T) {
	for _, tc := range []struct {
		n, max   int64
		got, lim string
	}{
		{9 << 20, 8 << 20, "9.0 MiB", "8.0 MiB"},
		{65538, 65536, "65538 bytes", "65536 bytes"},
		{100 << 10, 64 << 10, "100.0 KiB", "64.0 KiB"},
		{900, 512, "900 bytes", "512 bytes"},
	} {
		got, lim := sizes(tc.n, tc.max)
		assert.Equal(t, tc.got+" "+tc.lim, got+" "+lim)
	}
}
