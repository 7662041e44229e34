package image_test

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/baton-gitops/baton/internal/image"
)

func TestIndexHoldsBothPlatforms(t *testing.T) {
	res, src := build(t)
	idx, err := image.ReadLayout(res.Layout)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d != res.Digest {
		t.Errorf("layout holds index %s, the build returned %s", d, res.Digest)
	}
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %s", mt)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		got = append(got, d.Platform.OS+"/"+d.Platform.Architecture+"/"+d.Platform.Variant)
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %s", d.Digest, d.MediaType)
		}
	}
	if want := []string{"linux/amd64/", "linux/arm64/v8"}; !slices.Equal(got, want) {
		t.Errorf("index platforms %v, want %v", got, want)
	}
	if m.Annotations[image.LabelRevision] != src.Commit || m.Annotations[image.LabelVersion] != src.Version {
		t.Errorf("index annotations %v, want revision %s and version %s", m.Annotations, src.Commit, src.Version)
	}
	digest, err := os.ReadFile(filepath.Join(filepath.Dir(res.Layout), "digest"))
	if err != nil || strings.TrimSpace(string(digest)) != res.Digest.String() {
		t.Errorf("digest file %q (%v), want %s", digest, err, res.Digest)
	}
}

func TestImageConfig(t *testing.T) {
	res, src := build(t)
	for _, p := range res.Platforms {
		cf, err := p.Image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != p.Platform.OS || cf.Architecture != p.Platform.Arch {
			t.Errorf("%s: config says %s/%s", p.Platform, cf.OS, cf.Architecture)
		}
		c := cf.Config
		// The Deployment's runAsUser and runAsGroup; the manifests' tests
		// check the other side.
		if c.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532", p.Platform, c.User)
		}
		if !slices.Equal(c.Entrypoint, []string{image.BinaryPath}) || len(c.Cmd) != 0 {
			t.Errorf("%s: entrypoint %v cmd %v, want the binary alone", p.Platform, c.Entrypoint, c.Cmd)
		}
		want := map[string]string{
			image.LabelSource:   image.DefaultRepository,
			image.LabelRevision: src.Commit,
			image.LabelVersion:  src.Version,
			image.LabelLicenses: "NOASSERTION",
		}
		for k, v := range want {
			if c.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", p.Platform, k, c.Labels[k], v)
			}
		}
		if !cf.Created.Time.Equal(src.Time) {
			t.Errorf("%s: created %s, want the commit's time %s", p.Platform, cf.Created.Time, src.Time)
		}
		for _, h := range cf.History {
			if !h.Created.Time.Equal(src.Time) {
				t.Errorf("%s: history %q created %s, want %s", p.Platform, h.CreatedBy, h.Created.Time, src.Time)
			}
		}
	}
}

// file is one tar entry of a layer.
type file struct {
	hdr  *tar.Header
	data []byte
}

func layerFiles(t *testing.T, l v1.Layer) []file {
	t.Helper()
	if mt, _ := l.MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []file
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, file{h, data})
	}
}

func TestLayers(t *testing.T) {
	res, src := build(t)
	var baseDigests []v1.Hash
	for _, p := range res.Platforms {
		layers, err := p.Image.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 2 {
			t.Fatalf("%s: %d layers, want the base and the binary", p.Platform, len(layers))
		}
		d, _ := layers[0].Digest()
		baseDigests = append(baseDigests, d)

		base := layerFiles(t, layers[0])
		names := map[string]file{}
		var order []string
		for _, f := range base {
			names[f.hdr.Name] = f
			order = append(order, f.hdr.Name)
			if !f.hdr.ModTime.Equal(src.Time) {
				t.Errorf("%s: %s mtime %s, want the commit's time", p.Platform, f.hdr.Name, f.hdr.ModTime)
			}
		}
		if !slices.IsSorted(order) {
			t.Errorf("%s: base layer not sorted: %v", p.Platform, order)
		}
		passwd := string(names["etc/passwd"].data)
		if !strings.Contains(passwd, "nonroot:x:65532:65532:nonroot:/home/nonroot:") {
			t.Errorf("%s: /etc/passwd has no user 65532:\n%s", p.Platform, passwd)
		}
		if !strings.Contains(string(names["etc/group"].data), "nonroot:x:65532:") {
			t.Errorf("%s: /etc/group has no group 65532", p.Platform)
		}
		if h := names["home/nonroot/"].hdr; h == nil || h.Uid != 65532 || h.Gid != 65532 {
			t.Errorf("%s: /home/nonroot not owned by 65532: %+v", p.Platform, h)
		}
		if h := names["tmp/"].hdr; h == nil || h.Mode != 0o1777 {
			t.Errorf("%s: /tmp %+v, want mode 1777", p.Platform, h)
		}
		certs := names[strings.TrimPrefix(image.CABundlePath, "/")].data
		if n := countCerts(t, certs); n < 100 {
			t.Errorf("%s: %d CA certificates, want the Mozilla store (over 100)", p.Platform, n)
		}

		bin := layerFiles(t, layers[1])
		if len(bin) < 1 || bin[len(bin)-1].hdr.Name != strings.TrimPrefix(image.BinaryPath, "/") {
			t.Fatalf("%s: binary layer %v", p.Platform, bin)
		}
		exe := bin[len(bin)-1]
		if exe.hdr.Mode != 0o755 || exe.hdr.Uid != 0 {
			t.Errorf("%s: binary mode %o uid %d, want 755 owned by root (read-only to the user)", p.Platform, exe.hdr.Mode, exe.hdr.Uid)
		}
		onDisk, err := os.ReadFile(p.Binary)
		if err != nil || !bytes.Equal(onDisk, exe.data) {
			t.Errorf("%s: the layer's binary differs from the compiled %s (%v)", p.Platform, p.Binary, err)
		}
		checkBinary(t, p.Platform, exe.data)
	}
	if len(baseDigests) == 2 && baseDigests[0] != baseDigests[1] {
		t.Errorf("base layers differ between platforms: %v; want one shared blob", baseDigests)
	}
}

func countCerts(t *testing.T, pemData []byte) int {
	t.Helper()
	n := 0
	for {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			return n
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Errorf("CA bundle certificate %d: %v", n, err)
		}
		n++
	}
}

// checkBinary checks that the binary is for the platform, static and built
// with the image's settings.
func checkBinary(t *testing.T, p image.Platform, data []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: binary: %v", p, err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.Arch]
	if f.Machine != want {
		t.Errorf("%s: ELF machine %s, want %s", p, f.Machine, want)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s: the binary asks for a dynamic loader: not static", p)
		}
	}
	info, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: build info: %v", p, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOARCH": p.Arch, "GOOS": p.OS} {
		if settings[k] != v {
			t.Errorf("%s: build setting %s = %q, want %q", p, k, settings[k], v)
		}
	}
	if _, race := settings["-race"]; race {
		t.Errorf("%s: built with the race detector", p)
	}
}

// TestBinaryFromTheImageRuns extracts the host's platform's binary from the
// image's layer and runs `baton version`: it must print the version and the
// commit the labels name.
func TestBinaryFromTheImageRuns(t *testing.T) {
	res, src := build(t)
	for _, p := range res.Platforms {
		if p.Platform.Arch != runtime.GOARCH || p.Platform.OS != runtime.GOOS {
			continue
		}
		layers, err := p.Image.Layers()
		if err != nil {
			t.Fatal(err)
		}
		files := layerFiles(t, layers[len(layers)-1])
		exe := filepath.Join(t.TempDir(), "baton")
		if err := os.WriteFile(exe, files[len(files)-1].data, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(exe, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("baton version from the image: %v: %s", err, out)
		}
		want := "baton " + src.Version + " (commit " + src.Commit + ", "
		if !strings.HasPrefix(string(out), want) {
			t.Errorf("baton version printed %q, want it to start with %q", out, want)
		}
		return
	}
	t.Skipf("no image for this machine's platform %s/%s", runtime.GOOS, runtime.GOARCH)
}

// TestTarballLoads reads each docker-archive tarball back, as docker load
// and podman load read it: one image, tagged, equal to the built one.
func TestTarballLoads(t *testing.T) {
	res, _ := build(t)
	for _, p := range res.Platforms {
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(p.Tarball) })
		if err != nil {
			t.Fatalf("%s: %v", p.Tarball, err)
		}
		if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{res.Tag.String()}) {
			t.Errorf("%s: manifest.json %+v, want one image tagged %s", p.Tarball, m, res.Tag)
		}
		img, err := tarball.ImageFromPath(p.Tarball, &res.Tag)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := img.ConfigName()
		want, _ := p.Image.ConfigName()
		if got != want {
			t.Errorf("%s: config %s, want %s", p.Tarball, got, want)
		}
	}
}
