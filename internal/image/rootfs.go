package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The image's user: the same ids as the Deployment's securityContext
// (runAsUser and runAsGroup 65532), named as distroless names them.
const (
	UID      = 65532
	GID      = 65532
	UserName = "nonroot"
	Home     = "/home/nonroot"
)

// Paths inside the image.
const (
	// BinaryPath is the agent: the image's entrypoint.
	BinaryPath = "/usr/local/bin/baton"
	// CABundlePath is where Go (and most TLS libraries) look for the
	// system's roots on Linux.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
)

// entry is one file or folder of a layer.
type entry struct {
	path     string // absolute, without a trailing slash
	dir      bool
	mode     int64
	uid, gid int
	data     []byte
}

// baseEntries is the root filesystem under the binary: the user, name
// resolution order and the CA bundle, and the folders that hold them.
func baseEntries() ([]entry, error) {
	certs, err := caBundle()
	if err != nil {
		return nil, err
	}
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		fmt.Sprintf("%s:x:%d:%d:%s:%s:/sbin/nologin\n", UserName, UID, GID, UserName, Home)
	group := "root:x:0:\n" + fmt.Sprintf("%s:x:%d:\n", UserName, GID)
	return []entry{
		{path: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "/etc/group", mode: 0o644, data: []byte(group)},
		// Go's resolver reads it to order /etc/hosts before DNS.
		{path: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{path: CABundlePath, mode: 0o644, data: certs},
		{path: Home, dir: true, mode: 0o700, uid: UID, gid: GID},
		{path: "/tmp", dir: true, mode: 0o1777},
	}, nil
}

// caBundle is the Mozilla (NSS) root store as Go's x509roots/fallback module
// ships it, PEM-encoded: pinned by go.sum, so every machine writes the same
// bytes, unlike a copy of the build machine's own /etc/ssl. Updating it is
// `go get golang.org/x/crypto/x509roots/fallback@latest`.
//
// A root that NSS distrusts for certificates issued after a date carries a
// constraint no PEM file can express: it is left out rather than trusted
// without the constraint. A repository whose server chains to such a root
// names its CA with caBundleFile.
func caBundle() ([]byte, error) {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
	}
	if b.Len() == 0 {
		return nil, fmt.Errorf("CA bundle: the fallback module holds no roots")
	}
	return b.Bytes(), nil
}

// layer writes entries as a reproducible tar — sorted, every parent folder
// present, fixed owners and modes, every time mtime — gzip-compressed once
// at the best level (the gzip header carries no time or name).
func layer(entries []entry, mtime time.Time) (v1.Layer, error) {
	entries = withParents(entries)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.path, "/"),
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.path, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := io.Copy(zw, &raw); err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	compressed := gz.Bytes()
	// The opener hands out the compressed bytes: the library then keeps
	// them as they are (no second compression) and derives the diff id by
	// decompressing.
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// withParents adds the missing parent folders of every entry, owned by
// root with mode 0755, as a root filesystem has them.
func withParents(entries []entry) []entry {
	have := map[string]bool{}
	for _, e := range entries {
		have[e.path] = true
	}
	out := slices.Clone(entries)
	for _, e := range entries {
		for dir := path.Dir(e.path); dir != "/" && !have[dir]; dir = path.Dir(dir) {
			have[dir] = true
			out = append(out, entry{path: dir, dir: true, mode: 0o755})
		}
	}
	return out
}
