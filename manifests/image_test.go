package manifests_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/baton-gitops/baton/internal/image"
)

// TestImageFollowsTheReleaseVersion: the install runs the image `make image`
// builds, tagged with a release version. At a release commit (HEAD tagged
// vX.Y.Z) the tag is that version — the one the image is stamped with
// there; between releases it is never older than the last release.
func TestImageFollowsTheReleaseVersion(t *testing.T) {
	root := filepath.Dir(dir(t))
	img, err := image.ReadKustomizationImage(filepath.Join(dir(t), "kustomization.yaml"), "baton")
	if err != nil {
		t.Fatal(err)
	}
	if img.NewName != image.DefaultImage {
		t.Errorf("manifests' image %q, the image is built as %q", img.NewName, image.DefaultImage)
	}
	if img.Digest != "" {
		t.Errorf("manifests pin digest %s: pin digests in your overlay, the install follows the release tag", img.Digest)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^IMAGE_NAME \?= (\S+)$`).FindSubmatch(makefile); m == nil || string(m[1]) != image.DefaultImage {
		t.Errorf("Makefile IMAGE_NAME %q, want %q", m, image.DefaultImage)
	}
	tag, err := version.ParseSemantic(img.NewTag)
	if err != nil || !strings.HasPrefix(img.NewTag, "v") {
		t.Fatalf("manifests' image tag %q: want a release version vX.Y.Z (%v)", img.NewTag, err)
	}
	gitDescribe := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", root, "describe", "--tags", "--match", "v*"}, args...)...).Output()
		if err != nil {
			return "" // no such tag
		}
		return strings.TrimSpace(string(out))
	}
	if release := gitDescribe("--exact-match", "HEAD"); release != "" {
		if img.NewTag != release {
			t.Errorf("HEAD is release %s, the manifests' image tag is %s: run make manifests-version VERSION=%s", release, img.NewTag, release)
		}
	}
	if last := gitDescribe("--abbrev=0", "HEAD"); last != "" {
		if v, err := version.ParseSemantic(last); err == nil && tag.LessThan(v) {
			t.Errorf("manifests' image tag %s is older than the last release %s", img.NewTag, last)
		}
	}

	var d appsv1.Deployment
	into(t, find(t, build(t), "Deployment", "baton"), &d)
	if got, want := d.Spec.Template.Spec.Containers[0].Image, img.NewName+":"+img.NewTag; got != want {
		t.Errorf("Deployment image %q, want %q", got, want)
	}
}

// TestDeploymentRunsAsTheImageUser: the pod's user and group are the ones
// the image's /etc/passwd and /etc/group name (and its config's User).
func TestDeploymentRunsAsTheImageUser(t *testing.T) {
	var d appsv1.Deployment
	into(t, find(t, build(t), "Deployment", "baton"), &d)
	sc := d.Spec.Template.Spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != image.UID || sc.RunAsGroup == nil || *sc.RunAsGroup != image.GID ||
		sc.FSGroup == nil || *sc.FSGroup != image.GID {
		t.Errorf("pod security context %+v: want user and group %d, fsGroup %d, as in the image", sc, image.UID, image.GID)
	}
}
