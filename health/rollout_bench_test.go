package health

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// The environment of issue 21: 500 Deployments of 2 replicas, 500 Services
// and 500 ConfigMaps in one namespace, applied with server-side apply as the
// reconciler does. 16 fake nodes of 110 pods hold the 1,000 pods plus the
// surge pod each Deployment adds during a rollout (the default 3 nodes hold
// 330).
const (
	benchApps     = 500
	benchReplicas = 2
	benchNodes    = 16
)

// benchIdleWindow is how long BenchmarkMonitorIdle measures; override with
// BATON_BENCH_IDLE_WINDOW (a Go duration).
const benchIdleWindow = time.Minute

// BenchmarkRollout500 changes the image of all 500 Deployments and follows
// the rollout with Wait, as the agent does after an apply, in a child
// process (see runFollower). It reports:
//
//   - apply-s: the harness's server-side apply of the 500 changed
//     Deployments (not the checker's work; for context);
//   - cluster-available-s: apply end → the last Deployment Available with
//     the new template, seen by the parent's own watch;
//   - healthy-s: apply end → Wait returned Healthy (when the child said
//     so, by the parent's clock);
//   - lag-s: healthy-s − cluster-available-s (the goal: ≤ 2 s);
//   - cpu-s: the child's CPU time (getrusage, user + system) from the start
//     of Wait to its return (the goal: ≤ 17);
//   - peak-rss-MB: the child's peak resident set (VmHWM, its start-up
//     included), rss-delta-MB its growth over the RSS at the start of the
//     wait, peak-heap-MB the largest live heap sampled (the goal: peak RSS
//     ≤ 200 MB);
//   - cluster-alone-s: the same rollout without a follower, just before,
//     and slowdown its ratio to cluster-available-s: how much following
//     the rollout delays the cluster on a machine it shares.
//
// With -cpuprofile, the child writes its own profile beside the parent's,
// with ".wait.follower" appended to the name.
func BenchmarkRollout500(b *testing.B) {
	f := benchFixture(b)
	var sum rolloutFigures
	var alone float64
	n := 0
	for i := 0; i < b.N; i++ {
		alone += f.rollout(b, false).cluster
		sum.add(f.rollout(b, true))
		n++
	}
	sum.report(b, n)
	b.ReportMetric(alone/float64(n), "cluster-alone-s")
	b.ReportMetric(sum.cluster/alone, "slowdown")
}

// BenchmarkMonitorIdle1500 runs Monitor on the 1,500 healthy objects in a
// child process and measures its CPU time over an idle minute after the
// first Healthy report (the goal: ≤ 1 CPU-s per minute). reports is how
// many reports it sent in that minute (nothing changed: 0).
func BenchmarkMonitorIdle1500(b *testing.B) {
	f := benchFixture(b)
	window := benchIdleWindow
	if s := os.Getenv("BATON_BENCH_IDLE_WINDOW"); s != "" {
		var err error
		if window, err = time.ParseDuration(s); err != nil {
			b.Fatalf("BATON_BENCH_IDLE_WINDOW: %v", err)
		}
	}
	var cpu, rss, reports float64
	n := 0
	for i := 0; i < b.N; i++ {
		ch := f.startFollower(b, "monitor", followerWindow+"="+window.String())
		ch.expect(b, "healthy", 10*time.Minute)
		_, res := ch.goAndResult(b, window+5*time.Minute)
		if res.Overall != Healthy {
			b.Fatalf("monitor: %s: %s", res.Overall, res.Message)
		}
		cpu += res.CPUSeconds / window.Minutes()
		rss += float64(res.PeakRSSBytes) / 1e6
		reports += float64(res.Reports)
		n++
	}
	b.ReportMetric(cpu/float64(n), "cpu-s/min")
	b.ReportMetric(rss/float64(n), "peak-rss-MB")
	b.ReportMetric(reports/float64(n), "reports")
}

// rolloutFixture is the benchmark environment, built once per test binary
// and left for the control plane's end to remove.
type rolloutFixture struct {
	ns       string
	dyn      dynamic.Interface
	refsFile string
	avail    *availability
	version  int // the image tag the Deployments run now: registry.example/app-NNN:1.<version>
}

var fixture struct {
	once sync.Once
	f    *rolloutFixture
	err  error
}

// benchFixture builds the environment on first use and waits until the
// cluster has rolled it out.
func benchFixture(b *testing.B) *rolloutFixture {
	b.Helper()
	fixture.once.Do(func() {
		fixture.f, fixture.err = newRolloutFixture(b)
	})
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	if fixture.f == nil {
		b.Fatal("the benchmark fixture failed to build (see the first benchmark's output)")
	}
	return fixture.f
}

func newRolloutFixture(b *testing.B) (*rolloutFixture, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := env.EnsureNodes(ctx, benchNodes); err != nil {
		return nil, err
	}
	kube := env.Clientset(b)
	f := &rolloutFixture{ns: "bench-rollout", dyn: env.Dynamic(b)}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", f.ns, err)
	}
	if err := waitDefaultServiceAccount(ctx, kube, f.ns); err != nil {
		return nil, err
	}
	var refs []ObjectRef
	for i := range benchApps {
		name := appName(i)
		refs = append(refs, ref("Deployment", f.ns, name), ref("Service", f.ns, name), ref("ConfigMap", f.ns, name))
	}
	raw, _ := json.Marshal(refs)
	// Not b.TempDir: that goes when this benchmark ends; the fixture
	// outlives it.
	dir, err := os.MkdirTemp("", "baton-bench-")
	if err != nil {
		return nil, err
	}
	f.refsFile = filepath.Join(dir, "refs.json")
	if err := os.WriteFile(f.refsFile, raw, 0o600); err != nil {
		return nil, err
	}
	if f.avail, err = watchAvailability(kube, f.ns); err != nil {
		return nil, err
	}
	done := f.avail.expect(f.images())
	started := time.Now()
	if err := f.apply(ctx, true); err != nil {
		return nil, err
	}
	if err := f.awaitAvailable(ctx, done); err != nil {
		return nil, err
	}
	b.Logf("fixture: %d objects applied and available in %s", 3*benchApps, time.Since(started).Round(time.Second))
	return f, nil
}

func appName(i int) string { return fmt.Sprintf("app-%03d", i) }

// image is the image Deployment i runs at the fixture's version.
func (f *rolloutFixture) image(i int) string { return imageAt(i, f.version) }

// images maps a Deployment's index to its image at the present version,
// for the availability watch's goroutine.
func (f *rolloutFixture) images() func(int) string {
	v := f.version
	return func(i int) string { return imageAt(i, v) }
}

func imageAt(i, version int) string {
	return fmt.Sprintf("registry.example/%s:1.%d", appName(i), version)
}

// apply applies the Deployments at the current version, and with all the
// Services and ConfigMaps too, 16 at a time.
func (f *rolloutFixture) apply(ctx context.Context, all bool) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range benchApps {
		objs := []*unstructured.Unstructured{f.deployment(i)}
		if all {
			objs = append(objs, f.service(i), f.configMap(i))
		}
		for _, obj := range objs {
			g.Go(func() error {
				gvk := obj.GroupVersionKind()
				gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"}
				_, err := f.dyn.Resource(gvr).Namespace(f.ns).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "baton", Force: true})
				if err != nil {
					return fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
				}
				return nil
			})
		}
	}
	return g.Wait()
}

func (f *rolloutFixture) deployment(i int) *unstructured.Unstructured {
	name := appName(i)
	labels := map[string]any{"app": name, "app.kubernetes.io/managed-by": "baton"}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": f.ns, "labels": labels},
		"spec": map[string]any{
			"replicas": int64(benchReplicas),
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "app", "image": f.image(i),
					"ports":     []any{map[string]any{"containerPort": int64(8080)}},
					"envFrom":   []any{map[string]any{"configMapRef": map[string]any{"name": name}}},
					"resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "16Mi"}, "limits": map[string]any{"memory": "64Mi"}},
				}}},
			},
		},
	}}
}

func (f *rolloutFixture) service(i int) *unstructured.Unstructured {
	name := appName(i)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": name, "namespace": f.ns, "labels": map[string]any{"app": name}},
		"spec": map[string]any{
			"selector": map[string]any{"app": name},
			"ports":    []any{map[string]any{"port": int64(80), "targetPort": int64(8080)}},
		},
	}}
}

func (f *rolloutFixture) configMap(i int) *unstructured.Unstructured {
	name := appName(i)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": f.ns, "labels": map[string]any{"app": name}},
		"data": map[string]any{
			"LOG_LEVEL": "info", "LISTEN": ":8080",
			"config.yaml": strings.Repeat("# settings of "+name+"\n", 16),
		},
	}}
}

// rolloutFigures are one rollout's measurements, or their sum.
type rolloutFigures struct {
	apply, cluster, healthy, cpu, peakRSS, rssDelta, peakHeap float64
}

func (s *rolloutFigures) add(r rolloutFigures) {
	s.apply += r.apply
	s.cluster += r.cluster
	s.healthy += r.healthy
	s.cpu += r.cpu
	s.peakRSS += r.peakRSS
	s.rssDelta += r.rssDelta
	s.peakHeap += r.peakHeap
}

func (s rolloutFigures) report(b *testing.B, n int) {
	d := float64(n)
	b.ReportMetric(s.apply/d, "apply-s")
	b.ReportMetric(s.cluster/d, "cluster-available-s")
	b.ReportMetric(s.healthy/d, "healthy-s")
	b.ReportMetric((s.healthy-s.cluster)/d, "lag-s")
	b.ReportMetric(s.cpu/d, "cpu-s")
	b.ReportMetric(s.peakRSS/d, "peak-rss-MB")
	b.ReportMetric(s.rssDelta/d, "rss-delta-MB")
	b.ReportMetric(s.peakHeap/d, "peak-heap-MB")
}

// rollout changes every Deployment's image and measures the cluster's
// rollout and, with follow, the child's wait.
func (f *rolloutFixture) rollout(b *testing.B, follow bool) rolloutFigures {
	var ch *follower
	if follow {
		ch = f.startFollower(b, "wait")
	}
	f.version++
	done := f.avail.expect(f.images())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	applyStart := time.Now()
	if err := f.apply(ctx, false); err != nil {
		b.Fatal(err)
	}
	applyEnd := time.Now()
	if !follow {
		if err := f.awaitAvailable(ctx, done); err != nil {
			b.Fatal(err)
		}
		r := rolloutFigures{apply: applyEnd.Sub(applyStart).Seconds(), cluster: f.avail.at().Sub(applyEnd).Seconds()}
		b.Logf("rollout to 1.%d without a follower: apply %.1f s; cluster available %.1f s after apply end", f.version, r.apply, r.cluster)
		return r
	}
	healthyAt, res := ch.goAndResult(b, 15*time.Minute)
	if res.Overall != Healthy {
		b.Fatalf("wait: %s: %s", res.Overall, res.Message)
	}
	if err := f.awaitAvailable(ctx, done); err != nil {
		b.Fatal(err)
	}
	r := rolloutFigures{
		apply:    applyEnd.Sub(applyStart).Seconds(),
		cluster:  f.avail.at().Sub(applyEnd).Seconds(),
		healthy:  healthyAt.Sub(applyEnd).Seconds(),
		cpu:      res.CPUSeconds,
		peakRSS:  float64(res.PeakRSSBytes) / 1e6,
		rssDelta: float64(res.PeakRSSBytes-res.StartRSSBytes) / 1e6,
		peakHeap: float64(res.PeakHeapBytes) / 1e6,
	}
	b.Logf("rollout to 1.%d: apply %.1f s; cluster available %.1f s, Baton healthy %.1f s after apply end; %.1f CPU-s; peak RSS %.0f MB (+%.0f), heap %.0f MB",
		f.version, r.apply, r.cluster, r.healthy, r.cpu, r.peakRSS, r.rssDelta, r.peakHeap)
	return r
}

// awaitAvailable waits until done is closed: every Deployment available.
func (f *rolloutFixture) awaitAvailable(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: %d/%d Deployments available: %w", f.avail.count(), benchApps, ctx.Err())
	}
}

// follower is a running child process (see runFollower).
type follower struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startFollower starts the child in mode and waits for its "ready".
func (f *rolloutFixture) startFollower(b *testing.B, mode string, extraEnv ...string) *follower {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), followerEnv+"="+mode, followerKubeconfig+"="+env.KubeconfigPath(), followerRefs+"="+f.refsFile)
	cmd.Env = append(cmd.Env, extraEnv...)
	if p := childProfile(mode); p != "" {
		cmd.Env = append(cmd.Env, followerCPUProfile+"="+p)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ch := &follower{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
	go func() {
		defer close(ch.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			ch.lines <- sc.Text()
		}
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ch.expect(b, "ready", time.Minute)
	return ch
}

// childProfile is where the child writes its CPU profile: beside the
// parent's -cpuprofile, or nowhere.
func childProfile(mode string) string {
	fl := flag.Lookup("test.cpuprofile")
	if fl == nil || fl.Value.String() == "" {
		return ""
	}
	p := fl.Value.String()
	if dir := flag.Lookup("test.outputdir"); !filepath.IsAbs(p) && dir != nil && dir.Value.String() != "" {
		p = filepath.Join(dir.Value.String(), p)
	}
	return p + "." + mode + ".follower"
}

// expect waits for the line want from the child.
func (ch *follower) expect(b *testing.B, want string, within time.Duration) {
	b.Helper()
	select {
	case line, ok := <-ch.lines:
		if !ok || line != want {
			b.Fatalf("follower: got %q, want %q", line, want)
		}
	case <-time.After(within):
		b.Fatalf("follower: no %q within %s", want, within)
	}
}

// goAndResult tells the child to start, and returns when it said "done"
// and its result.
func (ch *follower) goAndResult(b *testing.B, within time.Duration) (time.Time, followerResult) {
	b.Helper()
	if _, err := io.WriteString(ch.stdin, "go\n"); err != nil {
		b.Fatal(err)
	}
	ch.expect(b, "done", within)
	done := time.Now()
	select {
	case line, ok := <-ch.lines:
		rest, found := strings.CutPrefix(line, "result ")
		if !ok || !found {
			b.Fatalf("follower: got %q, want a result", line)
		}
		var res followerResult
		if err := json.Unmarshal([]byte(rest), &res); err != nil {
			b.Fatalf("follower: result %q: %v", rest, err)
		}
		if res.Err != "" {
			b.Fatalf("follower: %s", res.Err)
		}
		return done, res
	case <-time.After(time.Minute):
		b.Fatal("follower: no result within a minute of done")
		return done, followerResult{}
	}
}

// availability follows the fixture's Deployments from the parent and
// records when the last one became Available with the expected template:
// the cluster's own finish line, independent of the checker.
type availability struct {
	store cache.Store

	mu    sync.Mutex // guards the fields below
	image func(i int) string
	ready map[string]bool
	last  time.Time
	done  chan struct{}
}

func watchAvailability(kube kubernetes.Interface, ns string) (*availability, error) {
	f := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
	inf := f.Apps().V1().Deployments().Informer()
	a := &availability{store: inf.GetStore(), ready: map[string]bool{}}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.observe(obj) },
		UpdateFunc: func(_, obj any) { a.observe(obj) },
	})
	if err != nil {
		return nil, err
	}
	// Runs until the test binary ends, with the control plane.
	f.Start(make(chan struct{}))
	f.WaitForCacheSync(make(chan struct{}))
	return a, nil
}

// expect starts counting toward every Deployment i running image(i), and
// returns a channel closed when all do.
func (a *availability) expect(image func(int) string) <-chan struct{} {
	a.mu.Lock()
	a.image, a.ready, a.done = image, map[string]bool{}, make(chan struct{})
	done := a.done
	a.mu.Unlock()
	for _, obj := range a.store.List() {
		a.observe(obj)
	}
	return done
}

func (a *availability) observe(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.image == nil || a.ready[d.Name] {
		return
	}
	var i int
	if _, err := fmt.Sscanf(d.Name, "app-%d", &i); err != nil {
		return
	}
	want := *d.Spec.Replicas
	if d.Spec.Template.Spec.Containers[0].Image != a.image(i) || d.Status.ObservedGeneration < d.Generation ||
		d.Status.UpdatedReplicas != want || d.Status.Replicas != want || d.Status.AvailableReplicas != want {
		return
	}
	a.ready[d.Name] = true
	if len(a.ready) == benchApps {
		a.last = time.Now()
		close(a.done)
	}
}

func (a *availability) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ready)
}

func (a *availability) at() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}
