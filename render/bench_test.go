package render

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The render benchmarks: Baton against the kustomize CLI built from the same
// kustomize/api version (see kustomizeCLIVersion), on the same tree, in the
// same run:
//
//	go test ./render -run '^$' -bench 'RenderCold|RenderProcess|KustomizeCLI' -benchmem -benchtime 1x
//
// BenchmarkRenderCold times Baton's in-process build; BenchmarkRenderProcess
// and BenchmarkKustomizeCLI time one render per process, start-up included,
// and report its CPU seconds and peak RSS, so the two compare like for like.
// The first run builds the CLI into the cache folder (about a minute).
// docs/benchmarks.md has the figures.
//
// The tree is a monorepo of teams (base/team-N, each a kustomization of 100
// applications) and a production overlay. Each application has a Deployment,
// a Service, a ServiceAccount, a HorizontalPodAutoscaler (one file) and a
// ConfigMap from its team's configMapGenerator, with the references between
// them that name-reference fixing follows (envFrom, serviceAccountName,
// scaleTargetRef). The overlay adds what a real one does: namePrefix,
// namespace, labels with and without selectors, an image override, a
// configMapGenerator merged into some applications' ConfigMaps,
// strategic-merge patches on every Deployment (by selector) and on some by
// name, and a JSON 6902 patch on every Service.

// benchShape is the size of the benchmark tree: teams × apps per team
// applications of benchObjectsPerApp objects.
type benchShape struct{ teams, appsPerTeam int }

const benchObjectsPerApp = 5

func (s benchShape) objects() int { return s.teams * s.appsPerTeam * benchObjectsPerApp }

// benchShapes: 4,000 objects is the size the goal is set at; 1,000 shows how
// the cost grows with the size.
var benchShapes = []benchShape{{teams: 2, appsPerTeam: 100}, {teams: 8, appsPerTeam: 100}}

// benchOverlay is the overlay folder of the benchmark tree.
const benchOverlay = "overlays/bench"

// writeBenchTree writes the benchmark tree of the given shape under dir.
func writeBenchTree(tb testing.TB, dir string, shape benchShape) {
	tb.Helper()
	write := func(p, content string) {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	var base, byName strings.Builder
	base.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	var merged strings.Builder // overlay configMapGenerator entries
	for t := range shape.teams {
		team := fmt.Sprintf("team-%d", t)
		fmt.Fprintf(&base, "  - %s\n", team)
		var kust, gen strings.Builder
		fmt.Fprintf(&kust, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nlabels:\n  - pairs:\n      team: %s\nresources:\n", team)
		for a := range shape.appsPerTeam {
			app := fmt.Sprintf("%s-app-%03d", team, a)
			write("base/"+team+"/"+app+".yaml", benchApp(app))
			fmt.Fprintf(&kust, "  - %s.yaml\n", app)
			fmt.Fprintf(&gen, "  - name: %[1]s-config\n    literals:\n      - SERVICE_NAME=%[1]s\n      - LOG_LEVEL=info\n      - PORT=\"8080\"\n", app)
			if a%10 == 0 { // every tenth application is tuned in production
				fmt.Fprintf(&merged, "  - name: %s-config\n    behavior: merge\n    literals:\n      - LOG_LEVEL=warn\n", app)
				fmt.Fprintf(&byName, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\nspec:\n  replicas: 6\n", app)
			}
		}
		kust.WriteString("configMapGenerator:\n")
		kust.WriteString(gen.String())
		write("base/"+team+"/kustomization.yaml", kust.String())
	}
	write("base/kustomization.yaml", base.String())
	write(benchOverlay+"/replicas.yaml", strings.TrimPrefix(byName.String(), "---\n"))
	write(benchOverlay+"/deployment-defaults.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: any
spec:
  revisionHistoryLimit: 3
  template:
    spec:
      containers:
        - name: app
          env:
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: http://otel-collector.observability:4317
          resources:
            limits:
              memory: 256Mi
`)
	write(benchOverlay+"/kustomization.yaml", `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namePrefix: prod-
namespace: prod
resources:
  - ../../base
labels:
  - pairs:
      env: prod
    includeSelectors: true
  - pairs:
      owner: platform
images:
  - name: ghcr.io/acme/app
    newTag: 1.4.2
configMapGenerator:
`+merged.String()+`patches:
  - path: deployment-defaults.yaml
    target:
      kind: Deployment
  - path: replicas.yaml
  - target:
      kind: Service
    patch: |-
      - op: add
        path: /spec/sessionAffinity
        value: ClientIP
      - op: add
        path: /metadata/annotations
        value:
          service.kubernetes.io/topology-mode: Auto
`)
}

// benchApp is one application's objects but its ConfigMap.
func benchApp(app string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels:
    app: %[1]s
spec:
  replicas: 2
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      serviceAccountName: %[1]s
      containers:
        - name: app
          image: ghcr.io/acme/app:1.0.0
          ports:
            - containerPort: 8080
          envFrom:
            - configMapRef:
                name: %[1]s-config
          resources:
            requests:
              cpu: 50m
              memory: 64Mi
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector:
    app: %[1]s
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: %[1]s
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: %[1]s
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: %[1]s
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
`, app)
}

// benchSnapshot has a fixed TreeHash, as the real source.Snapshot reads the
// stored git tree hash instead of hashing content.
type benchSnapshot struct{ fs.FS }

func (benchSnapshot) TreeHash(string) (string, error) {
	return "4b825dc642cb6eb9a060e54bf8d69288fbee4904", nil
}

// benchTree writes the tree of shape to a temporary folder.
func benchTree(b *testing.B, shape benchShape) (string, Snapshot) {
	dir := b.TempDir()
	writeBenchTree(b, dir, shape)
	return dir, benchSnapshot{os.DirFS(dir)}
}

// forEachShape runs bench as a sub-benchmark per tree size.
func forEachShape(b *testing.B, bench func(b *testing.B, shape benchShape)) {
	for _, shape := range benchShapes {
		b.Run(fmt.Sprintf("objects=%d", shape.objects()), func(b *testing.B) { bench(b, shape) })
	}
}

// BenchmarkRenderCold: every iteration is a full build (cache disabled).
func BenchmarkRenderCold(b *testing.B) {
	forEachShape(b, func(b *testing.B, shape benchShape) {
		_, snap := benchTree(b, shape)
		r := newTestRenderer(b, Options{CacheSize: -1})
		ctx := context.Background()
		cpu := processCPU()
		for b.Loop() {
			res, err := r.Render(ctx, snap, benchOverlay)
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Objects) != shape.objects() {
				b.Fatalf("%d objects, want %d", len(res.Objects), shape.objects())
			}
		}
		b.ReportMetric((processCPU()-cpu).Seconds()/float64(b.N), "cpu-s/op")
	})
}

// BenchmarkRenderCached: after the first build, renders of the same tree do
// no build at all.
func BenchmarkRenderCached(b *testing.B) {
	_, snap := benchTree(b, benchShapes[0])
	r := newTestRenderer(b, Options{})
	ctx := context.Background()
	if _, err := r.Render(ctx, snap, benchOverlay); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := r.Render(ctx, snap, benchOverlay); err != nil {
			b.Fatal(err)
		}
	}
	if n := r.builds.Load(); n != 1 {
		b.Fatalf("%d builds, want 1: cached renders must do no work", n)
	}
}

// BenchmarkRenderProcess renders once per process (this test binary run
// again as TestBenchRenderChild), like BenchmarkKustomizeCLI: wall time,
// CPU seconds and peak RSS compare directly with the CLI's.
func BenchmarkRenderProcess(b *testing.B) {
	forEachShape(b, func(b *testing.B, shape benchShape) {
		dir, _ := benchTree(b, shape)
		runProcessBench(b, []string{os.Args[0], "-test.run", "^TestBenchRenderChild$", "-test.count", "1"},
			benchChildEnv+"="+dir, fmt.Sprintf("%s=%d", benchChildObjectsEnv, shape.objects()))
	})
}

// BenchmarkKustomizeCLI runs `kustomize build` on the same tree, for
// comparison with BenchmarkRenderCold and BenchmarkRenderProcess.
func BenchmarkKustomizeCLI(b *testing.B) {
	bin := ensureKustomizeCLI(b)
	forEachShape(b, func(b *testing.B, shape benchShape) {
		dir, _ := benchTree(b, shape)
		runProcessBench(b, []string{bin, "build", filepath.Join(dir, benchOverlay)})
	})
}

// runProcessBench runs argv once per iteration, through TestBenchLauncher,
// and reports the process's wall time (as ns/op), CPU seconds and the
// largest peak RSS. B/op and allocs/op are this process's, not the child's.
func runProcessBench(b *testing.B, argv []string, env ...string) {
	spec, err := json.Marshal(argv)
	if err != nil {
		b.Fatal(err)
	}
	var wall, cpu time.Duration
	var maxRSS int64
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestBenchLauncher$", "-test.count", "1")
		cmd.Env = append(append(os.Environ(), env...), benchLaunchEnv+"="+string(spec))
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%s: %v\n%s", argv, err, out)
		}
		var w, c, rss int64
		i := bytes.Index(out, []byte(benchLaunchMarker))
		if i < 0 {
			b.Fatalf("no figures from the launcher:\n%s", out)
		}
		if _, err := fmt.Sscanf(string(out[i:]), benchLaunchMarker+" %d %d %d", &w, &c, &rss); err != nil {
			b.Fatalf("launcher output: %v\n%s", err, out)
		}
		wall, cpu, maxRSS = wall+time.Duration(w), cpu+time.Duration(c), max(maxRSS, rss)
	}
	b.ReportMetric(float64(wall.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(maxRSS)/(1<<20), "peak-RSS-MiB")
}

const (
	benchLaunchEnv       = "BATON_BENCH_LAUNCH"
	benchLaunchMarker    = "baton-bench-launch:"
	benchChildEnv        = "BATON_BENCH_CHILD_TREE"
	benchChildObjectsEnv = "BATON_BENCH_CHILD_OBJECTS"
)

// TestBenchLauncher runs the command in $BATON_BENCH_LAUNCH (a JSON argv)
// and prints its wall time, CPU time and peak RSS. The process benchmarks
// start commands through it because the peak RSS Linux reports for a child
// is at least its parent's RSS when it started (the child runs in the
// parent's memory until exec): the benchmark process is large, this one is
// not. It does nothing otherwise.
func TestBenchLauncher(t *testing.T) {
	spec := os.Getenv(benchLaunchEnv)
	if spec == "" {
		t.Skip("run by the process benchmarks")
	}
	var argv []string
	if err := json.Unmarshal([]byte(spec), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s: want a JSON argv: %v", benchLaunchEnv, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", argv, err, stderr.String())
	}
	wall := time.Since(start)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	fmt.Printf("%s %d %d %d\n", benchLaunchMarker, wall.Nanoseconds(), cpu.Nanoseconds(), peakRSS(cmd.ProcessState))
}

// TestBenchRenderChild is BenchmarkRenderProcess's child: one render of the
// tree in $BATON_BENCH_CHILD_TREE. It does nothing otherwise.
func TestBenchRenderChild(t *testing.T) {
	dir := os.Getenv(benchChildEnv)
	if dir == "" {
		t.Skip("run by BenchmarkRenderProcess")
	}
	r := newTestRenderer(t, Options{CacheSize: -1})
	res, err := r.Render(context.Background(), benchSnapshot{os.DirFS(dir)}, benchOverlay)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.Getenv(benchChildObjectsEnv); fmt.Sprint(len(res.Objects)) != want {
		t.Fatalf("%d objects, want %s", len(res.Objects), want)
	}
}

// TestWriteBenchTree writes the 4,000-object benchmark tree to
// $BATON_BENCH_TREE for timing by hand (hyperfine, profilers); it does
// nothing otherwise.
func TestWriteBenchTree(t *testing.T) {
	dir := os.Getenv("BATON_BENCH_TREE")
	if dir == "" {
		t.Skip("set BATON_BENCH_TREE to a folder to write the benchmark tree there")
	}
	writeBenchTree(t, dir, benchShapes[len(benchShapes)-1])
}
