package image_test

import (
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/internal/image"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func hostArch() string { return runtime.GOARCH }

func TestParsePlatforms(t *testing.T) {
	got, err := image.ParsePlatforms("linux/amd64, linux/arm64")
	if err != nil || len(got) != 2 || got[1] != (image.Platform{OS: "linux", Arch: "arm64"}) {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "linux", "amd64/", "windows/amd64", "linux/arm/v7"} {
		if _, err := image.ParsePlatforms(bad); err == nil || !strings.Contains(err.Error(), "platform") {
			t.Errorf("%q: error %v, want one naming the platform", bad, err)
		}
	}
}

// TestSetKustomizationImage edits a copy of the install's kustomization as
// `make manifests-version` does: the tag changes, a digest pin goes, and
// the comments stay.
func TestSetKustomizationImage(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "manifests", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kustomization.yaml")
	// Setting what is there already changes no byte: comments, order and
	// sequence indentation are kept.
	cur, err := image.ReadKustomizationImage(filepath.Join(repoRoot(t), "manifests", "kustomization.yaml"), "baton")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := image.SetKustomizationImage(path, "baton", cur.NewName, cur.NewTag); err != nil {
		t.Fatal(err)
	}
	if same, _ := os.ReadFile(path); string(same) != string(src) {
		t.Errorf("a no-op edit rewrote the file:\n%s", same)
	}
	pinned := strings.Replace(string(src), "newTag:", "digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\n    newTag:", 1)
	if err := os.WriteFile(path, []byte(pinned), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := image.SetKustomizationImage(path, "baton", "registry.example/baton", "v9.8.7"); err != nil {
		t.Fatal(err)
	}
	got, err := image.ReadKustomizationImage(path, "baton")
	if err != nil {
		t.Fatal(err)
	}
	if got.NewName != "registry.example/baton" || got.NewTag != "v9.8.7" || got.Digest != "" {
		t.Errorf("after the edit: %+v", got)
	}
	after, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") && !strings.Contains(string(after), strings.TrimSpace(line)) {
			t.Errorf("comment lost: %s", line)
		}
	}
	if err := image.SetKustomizationImage(path, "nginx", "x", "y"); err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("unknown image: error %v, want one naming it", err)
	}
}
