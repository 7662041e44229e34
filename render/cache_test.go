package render

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheUnchangedInputDoesNoWork(t *testing.T) {
	r := newTestRenderer(t, Options{})
	snap := repoSnapshot(t)
	ctx := context.Background()

	first, err := r.Render(ctx, snap, "overlays/prod")
	require.NoError(t, err)
	require.EqualValues(t, 1, r.builds.Load())

	second, err := r.Render(ctx, snap, "overlays/prod")
	require.NoError(t, err)
	assert.EqualValues(t, 1, r.builds.Load(), "a cache hit does not build")
	assert.Equal(t, first.Digest, second.Digest)
	assert.Same(t, first.Objects[0], second.Objects[0], "the cached objects are returned as they are")

	// Another snapshot with the same content (another commit, same tree)
	// hits the cache too: the key is the tree hash, not the commit.
	again := repoSnapshot(t)
	_, err = r.Render(ctx, again, "overlays/prod")
	require.NoError(t, err)
	assert.EqualValues(t, 1, r.builds.Load())

	// Another folder of the same tree is another entry.
	_, err = r.Render(ctx, snap, "overlays/dev")
	require.NoError(t, err)
	assert.EqualValues(t, 2, r.builds.Load())
}

func TestCacheKeyIsTheRootTree(t *testing.T) {
	r := newTestRenderer(t, Options{})
	ctx := context.Background()
	files := withBase(map[string]string{
		"overlays/prod/kustomization.yaml": "resources:\n  - ../../base\nnamePrefix: prod-\n",
	})

	before, err := r.Render(ctx, mapSnapshot(files), "overlays/prod")
	require.NoError(t, err)

	// Only the base changes: the overlay's own tree is identical, the root
	// tree is not, and the overlay must be rebuilt.
	files["base/deployment.yaml"] = strings.Replace(baseDeployment, "1.0.0", "1.1.0", 1)
	after, err := r.Render(ctx, mapSnapshot(files), "overlays/prod")
	require.NoError(t, err)
	assert.EqualValues(t, 2, r.builds.Load())
	assert.NotEqual(t, before.Digest, after.Digest)
}

func TestCacheIsBoundedLRU(t *testing.T) {
	r := newTestRenderer(t, Options{CacheSize: 2})
	snap := repoSnapshot(t)
	ctx := context.Background()
	render := func(p string) {
		t.Helper()
		_, err := r.Render(ctx, snap, p)
		require.NoError(t, err)
	}

	render("overlays/dev")
	render("overlays/staging")
	render("overlays/dev")  // dev is now the most recently used
	render("overlays/prod") // evicts staging
	assert.EqualValues(t, 3, r.builds.Load())
	assert.Equal(t, 2, r.cache.len())

	render("overlays/dev")
	assert.EqualValues(t, 3, r.builds.Load(), "dev stayed")
	render("overlays/staging")
	assert.EqualValues(t, 4, r.builds.Load(), "staging was evicted")
}

func TestCacheDisabled(t *testing.T) {
	r := newTestRenderer(t, Options{CacheSize: -1})
	snap := repoSnapshot(t)
	for range 2 {
		_, err := r.Render(context.Background(), snap, "base")
		require.NoError(t, err)
	}
	assert.EqualValues(t, 2, r.builds.Load())
}

func TestCacheKeepsFailures(t *testing.T) {
	r := newTestRenderer(t, Options{})
	files := withBase(map[string]string{"overlays/x/kustomization.yaml": "resources:\n  - missing.yaml\n"})
	snap := mapSnapshot(files)
	err1 := renderFails(t, r, files, "overlays/x")
	_, err2 := r.Render(context.Background(), snap, "overlays/x")
	assert.Equal(t, err1.Error(), err2.Error())
	assert.EqualValues(t, 1, r.builds.Load(), "an unchanged broken tree is not rebuilt")
}

func TestConcurrentRendersShareOneBuild(t *testing.T) {
	r := newTestRenderer(t, Options{})
	snap := repoSnapshot(t)
	paths := []string{"overlays/dev", "overlays/staging", "overlays/prod", "plain"}
	digests := make([]string, 4*len(paths))
	var wg sync.WaitGroup
	for i := range digests {
		wg.Go(func() {
			res, err := r.Render(context.Background(), snap, paths[i%len(paths)])
			if assert.NoError(t, err) {
				digests[i] = res.Digest
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, len(paths), r.builds.Load(), "one build per folder")
	for i := range digests {
		assert.Equal(t, digests[i%len(paths)], digests[i])
	}
}

func TestRenderCancelled(t *testing.T) {
	r := newTestRenderer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Render(ctx, repoSnapshot(t), "base")
	assert.ErrorIs(t, err, context.Canceled)
	assert.EqualValues(t, 0, r.builds.Load())
}

type failingTreeHash struct{ *testSnapshot }

func (failingTreeHash) TreeHash(string) (string, error) { return "", errors.New("object not found") }

func TestRenderTreeHashError(t *testing.T) {
	r := newTestRenderer(t, Options{})
	_, err := r.Render(context.Background(), failingTreeHash{repoSnapshot(t)}, "base")
	assert.ErrorContains(t, err, "render base: tree hash of snapshot root: object not found")
	_, err = r.Render(context.Background(), nil, "base")
	assert.ErrorContains(t, err, "nil snapshot")
}

// TestSecretsNeverLogged renders a Secret with debug logging on, then a
// broken overlay that quotes it, and checks that no content reached the log.
func TestSecretsNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	r := newTestRenderer(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	files := map[string]string{
		"app/kustomization.yaml": "resources:\n  - secret.yaml\nsecretGenerator:\n  - name: db\n    literals:\n      - password=hunter2-generated\n",
		"app/secret.yaml":        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\nstringData:\n  token: hunter2-literal\n",
		"bad/kustomization.yaml": "resources:\n  - secret.yaml\n  - secret.yaml\n",
		"bad/secret.yaml":        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\nstringData:\n  token: hunter2-literal\n",
	}
	res, err := r.Render(context.Background(), mapSnapshot(files), "app")
	require.NoError(t, err)
	require.Len(t, res.Objects, 2)
	_, err = r.Render(context.Background(), mapSnapshot(files), "bad")
	require.Error(t, err)

	require.Contains(t, logs.String(), "rendered", "debug logging is on")
	assert.NotContains(t, logs.String(), "hunter2")
	assert.NotContains(t, logs.String(), "aHVudGVy", "nor base64 of it")
}
