package render

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The benchmark tree: a base of 500 Deployments, 500 Services and 500
// ConfigMaps (one file each) and an overlay with namePrefix, labels and an
// image override: 1,500 objects.
//
// Compare the cold figure with the kustomize CLI (same API version) on the
// same tree:
//
//	GOTOOLCHAIN=local GOBIN=$HOME/.cache/baton/bin/kustomize-v5.8.2 \
//	  go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.2
//	go test ./render -run '^$' -bench 'Render|KustomizeCLI' -benchmem
//
// or one-shot, process start included on both sides:
//
//	BATON_BENCH_TREE=/tmp/tree go test ./render -run TestWriteBenchTree
//	go test -c -o /tmp/render.test ./render
//	hyperfine -r 5 \
//	  '$HOME/.cache/baton/bin/kustomize-v5.8.2/kustomize build /tmp/tree/overlays/bench' \
//	  'BATON_BENCH_TREE=/tmp/tree /tmp/render.test -test.run ^$ -test.bench RenderCold -test.benchtime 1x'
const benchApps = 500

// writeBenchTree writes the benchmark tree under dir.
func writeBenchTree(tb testing.TB, dir string) {
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
	var resources strings.Builder
	resources.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for i := range benchApps {
		name := fmt.Sprintf("app-%03d", i)
		write("base/"+name+"-deployment.yaml", fmt.Sprintf(`apiVersion: apps/v1
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
      containers:
        - name: app
          image: ghcr.io/acme/app:1.0.0
          ports:
            - containerPort: 8080
          envFrom:
            - configMapRef:
                name: %[1]s
          resources:
            requests:
              cpu: 50m
              memory: 64Mi
`, name))
		write("base/"+name+"-service.yaml", fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector:
    app: %[1]s
  ports:
    - port: 80
      targetPort: 8080
`, name))
		write("base/"+name+"-configmap.yaml", fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s
data:
  LOG_LEVEL: info
  SERVICE_NAME: %[1]s
`, name))
		for _, kind := range []string{"deployment", "service", "configmap"} {
			fmt.Fprintf(&resources, "  - %s-%s.yaml\n", name, kind)
		}
	}
	write("base/kustomization.yaml", resources.String())
	write("overlays/bench/kustomization.yaml", `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namePrefix: prod-
namespace: prod
resources:
  - ../../base
labels:
  - pairs:
      env: prod
      team: acme
images:
  - name: ghcr.io/acme/app
    newTag: 1.4.2
`)
}

// benchSnapshot has a fixed TreeHash, as the real source.Snapshot reads the
// stored git tree hash instead of hashing content.
type benchSnapshot struct{ fs.FS }

func (benchSnapshot) TreeHash(string) (string, error) {
	return "4b825dc642cb6eb9a060e54bf8d69288fbee4904", nil
}

// benchTree writes the tree to a temporary folder, or uses the one already
// written to $BATON_BENCH_TREE (so one-shot runs time the render alone).
func benchTree(b *testing.B) (string, Snapshot) {
	dir := os.Getenv("BATON_BENCH_TREE")
	if _, err := os.Stat(filepath.Join(dir, "overlays", "bench", "kustomization.yaml")); dir == "" || err != nil {
		dir = b.TempDir()
		writeBenchTree(b, dir)
	}
	return dir, benchSnapshot{os.DirFS(dir)}
}

// BenchmarkRenderCold: every iteration is a full build (cache disabled).
func BenchmarkRenderCold(b *testing.B) {
	_, snap := benchTree(b)
	r := newTestRenderer(b, Options{CacheSize: -1})
	ctx := context.Background()
	cpu := processCPU()
	for b.Loop() {
		res, err := r.Render(ctx, snap, "overlays/bench")
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Objects) != 3*benchApps {
			b.Fatalf("%d objects, want %d", len(res.Objects), 3*benchApps)
		}
	}
	b.ReportMetric((processCPU()-cpu).Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkRenderCached: after the first build, renders of the same tree do
// no build at all.
func BenchmarkRenderCached(b *testing.B) {
	_, snap := benchTree(b)
	r := newTestRenderer(b, Options{})
	ctx := context.Background()
	if _, err := r.Render(ctx, snap, "overlays/bench"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := r.Render(ctx, snap, "overlays/bench"); err != nil {
			b.Fatal(err)
		}
	}
	if n := r.builds.Load(); n != 1 {
		b.Fatalf("%d builds, want 1: cached renders must do no work", n)
	}
}

// BenchmarkKustomizeCLI runs `kustomize build` on the same tree, for
// comparison with BenchmarkRenderCold. It needs the CLI (see the top of this
// file); BATON_KUSTOMIZE may name another binary.
func BenchmarkKustomizeCLI(b *testing.B) {
	bin := kustomizeCLI()
	if bin == "" {
		b.Skip("kustomize CLI not found: install it with GOTOOLCHAIN=local GOBIN=$HOME/.cache/baton/bin/kustomize-v5.8.2 go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.2, or set BATON_KUSTOMIZE")
	}
	dir, _ := benchTree(b)
	var cpu time.Duration
	for b.Loop() {
		cmd := exec.Command(bin, "build", filepath.Join(dir, "overlays", "bench"))
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

func kustomizeCLI() string {
	if bin := os.Getenv("BATON_KUSTOMIZE"); bin != "" {
		return bin
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	found, _ := filepath.Glob(filepath.Join(home, ".cache", "baton", "bin", "kustomize-v5.*", "kustomize"))
	if len(found) == 0 {
		return ""
	}
	slices.Sort(found)
	return found[len(found)-1]
}

// TestWriteBenchTree writes the benchmark tree to $BATON_BENCH_TREE for
// timing the CLI by hand (hyperfine); it does nothing otherwise.
func TestWriteBenchTree(t *testing.T) {
	dir := os.Getenv("BATON_BENCH_TREE")
	if dir == "" {
		t.Skip("set BATON_BENCH_TREE to a folder to write the benchmark tree there")
	}
	writeBenchTree(t, dir)
}
