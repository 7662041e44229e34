package image_test

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/baton-gitops/baton/internal/image"
)

// TestSameCommitSameDigest builds the image a second time from the same
// commit checked out as a git worktree (a .git file, not a folder) in a
// folder of another name and length (the go command's build cache holds
// the compiled packages, but the binaries are linked again): every digest
// and every output file must be identical.
func TestSameCommitSameDigest(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a second build of both platforms")
	}
	first, _ := build(t)
	wt, err := os.MkdirTemp(work, "second-a-worktree-of-the-same-commit-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", filepath.Join(work, "first"), "worktree", "add", "--quiet", "--detach", wt, "HEAD").CombinedOutput(); err != nil {
		t.Fatalf("git worktree add: %v: %s", err, out)
	}
	second, _, err := buildFrom(t, wt, wt+"-out")
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != second.Digest {
		t.Errorf("index digest %s, then %s", first.Digest, second.Digest)
	}
	for i, p := range first.Platforms {
		q := second.Platforms[i]
		if p.Digest != q.Digest {
			t.Errorf("%s: image digest %s, then %s", p.Platform, p.Digest, q.Digest)
		}
		for _, pair := range [][2]string{{p.Binary, q.Binary}, {p.Tarball, q.Tarball}, {p.SBOM, q.SBOM}} {
			if a, b := sum(t, pair[0]), sum(t, pair[1]); a != b {
				t.Errorf("%s differs from %s: %s, %s", pair[0], pair[1], a, b)
			}
		}
	}
}

func sum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestPushAndPullByDigest pushes the index to a registry on loopback —
// go-containerregistry's registry package, a real implementation of the OCI
// distribution API served over HTTP, behind basic auth — with the
// credentials found as docker and podman keep them ($DOCKER_CONFIG/
// config.json), then pulls it back by digest.
func TestPushAndPullByDigest(t *testing.T) {
	res, src := build(t)
	const user, pass = "ci", "s3cret"
	reg := httptest.NewServer(basicAuth(user, pass, registry.New(registry.Logger(discardLogger()))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	dockerConfig := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dockerConfig)

	idx, err := image.ReadLayout(res.Layout)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	ref := host + "/baton-gitops/baton:" + src.Version
	d, err := image.Push(t.Context(), idx, ref, image.PushOptions{Progress: &progress})
	if err != nil {
		t.Fatalf("push: %v\n%s", err, progress.String())
	}
	if d.DigestStr() != res.Digest.String() {
		t.Errorf("pushed %s, built %s", d, res.Digest)
	}
	if !strings.Contains(progress.String(), "push "+ref) {
		t.Errorf("no progress printed: %q", progress.String())
	}

	// Without credentials the registry refuses: the keychain did the work.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	if _, err := remote.Index(d, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err == nil {
		t.Error("the registry served the index without credentials")
	}
	t.Setenv("DOCKER_CONFIG", dockerConfig)

	pulled, err := remote.Index(d, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		t.Fatalf("pull %s: %v", d, err)
	}
	if got, _ := pulled.Digest(); got != res.Digest {
		t.Errorf("pulled index %s, want %s", got, res.Digest)
	}
	for _, p := range res.Platforms {
		img, err := remote.Image(d.Context().Digest(p.Digest.String()), remote.WithAuthFromKeychain(authn.DefaultKeychain))
		if err != nil {
			t.Fatalf("pull %s image %s: %v", p.Platform, p.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := p.Image.Layers()
		for i, l := range layers {
			// Reading the blob makes the client verify it against its digest.
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Errorf("%s layer %d: %v", p.Platform, i, err)
			}
			rc.Close()
			got, _ := l.Digest()
			w, _ := want[i].Digest()
			if got != w {
				t.Errorf("%s layer %d: %s, want %s", p.Platform, i, got, w)
			}
		}
	}
	// The tag resolves to the same index.
	tag, _ := name.NewTag(ref)
	desc, err := remote.Head(tag, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil || desc.Digest != res.Digest {
		t.Errorf("tag %s: %v, %v; want %s", tag, desc, err, res.Digest)
	}
}

// basicAuth guards a handler with HTTP basic auth, as a private registry
// answers: 401 with a Basic challenge.
func basicAuth(user, pass string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test registry"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestSBOM reads each platform's SPDX document: it describes the image,
// the binary with its checksum, and every module the binary's build
// information names, at the versions compiled in.
func TestSBOM(t *testing.T) {
	res, src := build(t)
	for _, p := range res.Platforms {
		raw, err := os.ReadFile(p.SBOM)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			SPDXVersion, DocumentNamespace string
			CreationInfo                   struct{ Created string }
			Packages                       []struct {
				SPDXID, Name, VersionInfo string
				Checksums                 []struct{ Algorithm, ChecksumValue string }
				ExternalRefs              []struct{ ReferenceType, ReferenceLocator string }
			}
			Relationships []struct{ SpdxElementID, RelationshipType, RelatedSpdxElement string }
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", p.SBOM, err)
		}
		if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != src.Time.Format(time.RFC3339) {
			t.Errorf("%s: version %q created %q", p.SBOM, doc.SPDXVersion, doc.CreationInfo.Created)
		}
		byName := map[string]string{}
		ids := map[string]bool{}
		for _, pkg := range doc.Packages {
			byName[pkg.Name] = pkg.VersionInfo
			if ids[pkg.SPDXID] {
				t.Errorf("%s: SPDXID %s twice", p.SBOM, pkg.SPDXID)
			}
			ids[pkg.SPDXID] = true
			if pkg.SPDXID == "SPDXRef-Binary" {
				if len(pkg.Checksums) != 1 || pkg.Checksums[0].ChecksumValue != sum(t, p.Binary) {
					t.Errorf("%s: binary checksums %v, want %s", p.SBOM, pkg.Checksums, sum(t, p.Binary))
				}
				if pkg.VersionInfo != src.Version {
					t.Errorf("%s: binary version %q, want %q", p.SBOM, pkg.VersionInfo, src.Version)
				}
			}
		}
		info, err := buildinfo.ReadFile(p.Binary)
		if err != nil {
			t.Fatal(err)
		}
		for _, dep := range info.Deps {
			if dep.Replace != nil {
				dep = dep.Replace
			}
			if byName[dep.Path] != dep.Version {
				t.Errorf("%s: %s at %q, the binary has %s", p.SBOM, dep.Path, byName[dep.Path], dep.Version)
			}
		}
		if byName["stdlib"] != info.GoVersion {
			t.Errorf("%s: stdlib %q, want %s", p.SBOM, byName["stdlib"], info.GoVersion)
		}
		if _, ok := byName["k8s.io/client-go"]; !ok {
			t.Errorf("%s: no k8s.io/client-go", p.SBOM)
		}
		for _, r := range doc.Relationships {
			if !ids[r.SpdxElementID] && r.SpdxElementID != "SPDXRef-DOCUMENT" || !ids[r.RelatedSpdxElement] {
				t.Errorf("%s: relationship %+v names an unknown element", p.SBOM, r)
			}
		}
	}
}

// TestPodmanRunsTheImage loads the host platform's tarball into podman and
// runs it as the Deployment runs it: its user, a read-only root, no
// capabilities, no privilege escalation. Where no podman can run (CI has
// only Go, git, make and a C compiler) it is skipped: TestTarballLoads then
// stands in for the load, TestImageConfig for the runtime's view of the
// config, and TestBinaryFromTheImageRuns for the process.
func TestPodmanRunsTheImage(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed: the tarball, config and binary tests stand in for a container run")
	}
	if out, err := exec.Command(podman, "info").CombinedOutput(); err != nil {
		t.Skipf("podman cannot run here (%v): %s", err, lastLine(out))
	}
	res, src := build(t)
	var tarballPath string
	for _, p := range res.Platforms {
		if p.Platform.Arch == hostArch() {
			tarballPath = p.Tarball
		}
	}
	if tarballPath == "" {
		t.Skipf("no image for %s", hostArch())
	}
	out, err := exec.Command(podman, "load", "-q", "-i", tarballPath).CombinedOutput()
	if err != nil {
		t.Fatalf("podman load: %v: %s", err, out)
	}
	id := podmanImageID(t, podman, res.Tag.String())
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "--force", id).Run() })

	// podman read the archive's config as the runtime will use it.
	out, err = exec.Command(podman, "image", "inspect", "--format", "{{.User}} {{.Config.Entrypoint}}", id).CombinedOutput()
	if want := "65532:65532 [" + image.BinaryPath + "]"; err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("podman image inspect: %q %v, want %q", out, err, want)
	}

	run := exec.Command(podman, "run", "--rm", "--network=none", "--read-only", "--cap-drop=ALL",
		"--security-opt=no-new-privileges", id, "version", "-o", "json")
	out, err = run.CombinedOutput()
	if err != nil && runtimeRefused(out) {
		// In a sandbox without the cgroup or rlimit rights a runtime needs,
		// crun refuses before the image's process starts.
		t.Skipf("podman loaded the image but cannot start containers here: %s", lastLine(out))
	}
	if err != nil {
		t.Fatalf("podman run: %v: %s", err, out)
	}
	var v struct{ Version, Commit string }
	if err := json.Unmarshal([]byte(lastLine(out)), &v); err != nil || v.Commit != src.Commit || v.Version != src.Version {
		t.Errorf("podman run version printed %s (%v); want version %s commit %s", out, err, src.Version, src.Commit)
	}
}

// runtimeRefused tells a container runtime that could not create the
// container from a process that ran and failed.
func runtimeRefused(out []byte) bool {
	s := string(out)
	return strings.Contains(s, "OCI runtime error") || strings.Contains(s, "OCI permission denied") ||
		strings.Contains(s, "crun: ")
}

func podmanImageID(t *testing.T, podman, ref string) string {
	t.Helper()
	out, err := exec.Command(podman, "image", "inspect", "--format", "{{.Id}}", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("podman image inspect %s: %v: %s", ref, err, out)
	}
	return strings.TrimSpace(string(out))
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
