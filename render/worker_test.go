package render

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/heappeak"
	"github.com/baton-gitops/baton/internal/testenv/hostile"
)

// TestMain lets this test binary serve as a render worker: the worker tests
// start it again with WorkerEnv set.
func TestMain(m *testing.M) {
	if IsWorker() {
		os.Exit(ServeWorker())
	}
	os.Exit(m.Run())
}

func workerRenderer(t testing.TB, limits Limits) *Renderer {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	r := newTestRenderer(t, Options{CacheSize: -1, WorkerPath: exe, Limits: limits})
	t.Cleanup(r.Close)
	return r
}

// TestWorkerRendersLikeInProcess: a build in a worker gives the objects and
// digest of the same build in process, for every fixture folder.
func TestWorkerRendersLikeInProcess(t *testing.T) {
	snap := repoSnapshot(t)
	inProcess := newTestRenderer(t, Options{CacheSize: -1})
	worker := workerRenderer(t, Limits{})
	for _, path := range []string{"base", "overlays/dev", "overlays/staging", "overlays/prod", "plain"} {
		want, err := inProcess.Render(context.Background(), snap, path)
		require.NoError(t, err)
		got, err := worker.Render(context.Background(), snap, path)
		require.NoError(t, err, path)
		assert.Equal(t, want.Digest, got.Digest, path)
		assert.Equal(t, want.Objects, got.Objects, path)
		wantYAML, _ := want.YAML()
		gotYAML, _ := got.YAML()
		assert.Equal(t, string(wantYAML), string(gotYAML), path)
	}
}

// TestWorkerKeepsErrorTypes: refusals and limits cross the process
// boundary as the errors callers test for.
func TestWorkerKeepsErrorTypes(t *testing.T) {
	r := workerRenderer(t, Limits{})
	_, err := r.Render(context.Background(), mapSnapshot(map[string]string{
		"o/kustomization.yaml": "resources: [https://github.com/evil/repo//x]\n"}), "o")
	require.ErrorIs(t, err, ErrRemoteRefused)
	assert.Contains(t, err.Error(), `o/kustomization.yaml:1: resources entry "https://github.com/evil/repo//x"`)

	_, err = r.Render(context.Background(), mapSnapshot(map[string]string{
		"o/kustomization.yaml": "resources: [bomb.yaml]\n", "o/bomb.yaml": hostile.AliasBomb("bomb", 9)}), "o")
	var le *LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, LimitAliases, le.Limit)
	assert.Equal(t, "o/bomb.yaml", le.File)
	assert.Equal(t, "render o: "+le.Error(), err.Error(), "the build's own error, not a worker failure")
	assert.Len(t, r.worker.idle, 1, "a refused build leaves the worker fit for the next")

	// The agent refuses to read a blob over the limit for the worker.
	_, err = r.Render(context.Background(), mapSnapshot(map[string]string{
		"o/kustomization.yaml": "resources: [big.yaml]\n", "o/big.yaml": hostile.Oversized("big", 9<<20)}), "o")
	require.ErrorAs(t, err, &le)
	assert.Equal(t, LimitFileSize, le.Limit)
}

// TestWorkerMemoryLimit: a build that grows past the memory limit is
// stopped, with a *LimitError naming the folder, and this process's heap
// stays small while it runs.
func TestWorkerMemoryLimit(t *testing.T) {
	r := workerRenderer(t, Limits{MaxMemory: 32 << 20})
	var err error
	peak := heappeak.During(func() {
		_, err = r.Render(context.Background(), mapSnapshot(hostile.ManyAliases("o", 12)), "o")
	})
	var le *LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, LimitMemory, le.Limit)
	assert.Equal(t, "o", le.File)
	assert.Contains(t, err.Error(), "o: the build's memory grew past it and the build was stopped: over the render memory limit of 32.0 MiB (limits.renderMemory)")
	t.Logf("this process's heap grew by at most %d MiB while the worker hit its limit", peak>>20)
	assert.Less(t, peak, uint64(24<<20), "the build's memory stays in the worker")
}

// TestWorkerTimeLimit: a build that outlives its time is killed.
func TestWorkerTimeLimit(t *testing.T) {
	r := workerRenderer(t, Limits{MaxDuration: time.Millisecond})
	_, err := r.Render(context.Background(), mapSnapshot(map[string]string{"o/a.yaml": cm("a")}), "o")
	var le *LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, LimitTime, le.Limit)
	assert.Contains(t, err.Error(), "over the render time limit of 1ms (limits.renderTimeout)")
}

// TestWorkerThatCannotStart names the executable.
func TestWorkerThatCannotStart(t *testing.T) {
	r := newTestRenderer(t, Options{CacheSize: -1, WorkerPath: "/nonexistent/baton"})
	_, err := r.Render(context.Background(), mapSnapshot(map[string]string{"o/a.yaml": cm("a")}), "o")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "render worker: start /nonexistent/baton")
	var le *LimitError
	assert.False(t, errors.As(err, &le))
	assert.False(t, cacheable(err), "a worker that failed says nothing about the input")
}

func TestWhatIsCached(t *testing.T) {
	assert.True(t, cacheable(nil))
	assert.True(t, cacheable(&LimitError{Limit: LimitMemory}), "memory grows with the input")
	assert.True(t, cacheable(ErrRemoteRefused))
	assert.False(t, cacheable(&LimitError{Limit: LimitTime}), "a busy machine is slower")
	assert.False(t, cacheable(&workerFailure{errors.New("broken pipe")}))
}

// BenchmarkWorkerOverhead renders the prod fixture overlay in process and in
// a worker, as the agent does: the difference is the cost of the isolation
// per new revision (the file reads over a pipe, the objects as JSON).
func BenchmarkWorkerOverhead(b *testing.B) {
	snap := repoSnapshot(b)
	exe, err := os.Executable()
	require.NoError(b, err)
	for _, mode := range []struct {
		name   string
		worker string
	}{{"in-process", ""}, {"worker", exe}} {
		b.Run(mode.name, func(b *testing.B) {
			r := newTestRenderer(b, Options{CacheSize: -1, WorkerPath: mode.worker})
			defer r.Close()
			for b.Loop() {
				if _, err := r.Render(context.Background(), snap, "overlays/prod"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWorkerIsReusedAndReplaced: builds share a worker; one that hit a limit
// is replaced, and the next build succeeds.
func TestWorkerIsReusedAndReplaced(t *testing.T) {
	r := workerRenderer(t, Limits{MaxMemory: 32 << 20})
	ok := mapSnapshot(map[string]string{"o/a.yaml": cm("a")})
	_, err := r.Render(context.Background(), ok, "o")
	require.NoError(t, err)
	first := r.worker.idle[0].cmd.Process.Pid
	_, err = r.Render(context.Background(), mapSnapshot(map[string]string{"o/b.yaml": cm("b")}), "o")
	require.NoError(t, err)
	assert.Equal(t, first, r.worker.idle[0].cmd.Process.Pid, "the idle worker served the second build")

	_, err = r.Render(context.Background(), mapSnapshot(hostile.ManyAliases("o", 12)), "o")
	var le *LimitError
	require.ErrorAs(t, err, &le)
	assert.Empty(t, r.worker.idle, "the worker that hit the limit is gone")
	res, err := r.Render(context.Background(), mapSnapshot(map[string]string{"o/c.yaml": cm("c")}), "o")
	require.NoError(t, err)
	assert.Len(t, res.Objects, 1)
	assert.NotEqual(t, first, r.worker.idle[0].cmd.Process.Pid)
}
