package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Defaults of Options.
const (
	DefaultImage      = "ghcr.io/baton-gitops/baton"
	DefaultRepository = "https://github.com/baton-gitops/baton"
)

// Options configure Build. Zero values take the documented defaults.
type Options struct {
	// Dir is the module's root, a git work tree. Required.
	Dir string
	// Out receives the outputs (see Result). Required; it is emptied first.
	Out string
	// Source is the commit, version and time; zero: ReadSource(Dir).
	Source Source
	// Image is the image's name without a tag, for the tarballs' tags and
	// the SBOM. Default DefaultImage.
	Image string
	// Repository is the source repository's URL. Default DefaultRepository.
	Repository string
	// Licenses is the SPDX licence expression of the labels. Default
	// NOASSERTION.
	Licenses string
	// Platforms to build. Default DefaultPlatforms.
	Platforms []Platform
	// Toolchain is CompileOptions.Toolchain.
	Toolchain string
	// Binaries, when set, are already compiled binaries by platform (tests
	// reuse one compilation); missing platforms are compiled.
	Binaries map[Platform]string
	// Progress receives a line per step. Nil: none.
	Progress io.Writer
}

// Result is what Build wrote.
type Result struct {
	Index  v1.ImageIndex
	Digest v1.Hash
	// Tag is Image:version, the name the tarballs load as.
	Tag name.Tag
	// Layout is the OCI image layout folder holding the index.
	Layout string
	// Platforms lists each platform's outputs, in Options.Platforms order.
	Platforms []PlatformResult
}

// PlatformResult is one platform's image and files.
type PlatformResult struct {
	Platform Platform
	Image    v1.Image
	Digest   v1.Hash
	// Binary is the compiled agent; Tarball a `docker load` archive of the
	// image; SBOM its SPDX document.
	Binary, Tarball, SBOM string
}

// Build compiles the agent for every platform, assembles the images and
// their index, and writes into Out:
//
//	oci/                       the OCI image layout (index.json names the index by its tag)
//	baton-linux-amd64.tar      docker-archive tarball per platform (docker load / podman load)
//	baton-linux-amd64.spdx.json SPDX SBOM per platform
//	linux-amd64/baton          the compiled binary per platform
//	digest                     the index's digest
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Dir == "" || o.Out == "" {
		return nil, fmt.Errorf("image build: Dir and Out are required")
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.Repository == "" {
		o.Repository = DefaultRepository
	}
	if o.Licenses == "" {
		o.Licenses = noAssertion
	}
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	if o.Source.Commit == "" {
		s, err := ReadSource(ctx, o.Dir)
		if err != nil {
			return nil, fmt.Errorf("image build: %w", err)
		}
		o.Source = s
	}
	tag, err := name.NewTag(o.Image + ":" + o.Source.Version)
	if err != nil {
		return nil, fmt.Errorf("image build: image name %s:%s: %w", o.Image, o.Source.Version, err)
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	m := Metadata{Source: o.Source, Repository: o.Repository, Licenses: o.Licenses}
	fmt.Fprintf(progress, "image %s: commit %s, time %s\n", tag, o.Source.Commit, o.Source.Time.Format(time.RFC3339))

	res := &Result{Tag: tag, Layout: filepath.Join(o.Out, "oci")}
	var images []v1.Image
	for _, p := range o.Platforms {
		pr := PlatformResult{Platform: p}
		compiled, tarballPath, sbomPath := platformFiles(o.Out, p)
		pr.Tarball, pr.SBOM, pr.Binary = tarballPath, sbomPath, o.Binaries[p]
		if pr.Binary == "" {
			pr.Binary = compiled
			start := time.Now()
			fmt.Fprintf(progress, "compile %s ...\n", p)
			if err := Compile(ctx, CompileOptions{Dir: o.Dir, Platform: p, Source: o.Source, Toolchain: o.Toolchain, Out: pr.Binary}); err != nil {
				return nil, err
			}
			fmt.Fprintf(progress, "compile %s: %s\n", p, time.Since(start).Round(100*time.Millisecond))
		}
		start := time.Now()
		img, err := Assemble(pr.Binary, p, m)
		if err != nil {
			return nil, err
		}
		if pr.Digest, err = img.Digest(); err != nil {
			return nil, fmt.Errorf("image %s: %w", p, err)
		}
		fmt.Fprintf(progress, "image %s: %s (%s)\n", p, pr.Digest, time.Since(start).Round(100*time.Millisecond))
		pr.Image = img
		images = append(images, img)
		res.Platforms = append(res.Platforms, pr)
	}
	if res.Index, err = Index(images, m); err != nil {
		return nil, err
	}
	if res.Digest, err = res.Index.Digest(); err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	if err := writeLayout(res.Layout, res.Index, tag); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "index %s written to %s\n", res.Digest, res.Layout)
	for i := range res.Platforms {
		pr := &res.Platforms[i]
		if err := tarball.WriteToFile(pr.Tarball, tag, pr.Image); err != nil {
			return nil, fmt.Errorf("image %s: tarball: %w", pr.Platform, err)
		}
		sbom, err := SBOM(pr.Binary, tag.String()+"@"+pr.Digest.String(), pr.Platform, m)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(pr.SBOM, sbom, 0o644); err != nil {
			return nil, fmt.Errorf("image %s: sbom: %w", pr.Platform, err)
		}
		fmt.Fprintf(progress, "wrote %s and %s\n", pr.Tarball, pr.SBOM)
	}
	if err := os.WriteFile(filepath.Join(o.Out, "digest"), []byte(res.Digest.String()+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	return res, nil
}

// platformFiles are the paths of a platform's compiled binary, tarball and
// SBOM under out.
func platformFiles(out string, p Platform) (binary, tarballPath, sbom string) {
	base := filepath.Join(out, "baton-"+p.OS+"-"+p.Arch)
	return filepath.Join(out, p.OS+"-"+p.Arch, "baton"), base + ".tar", base + ".spdx.json"
}

// ReadResult reads back what Build wrote into out (the images lazily, from
// the layout). The binaries' paths are where Build compiles them.
func ReadResult(out string) (*Result, error) {
	res := &Result{Layout: filepath.Join(out, "oci")}
	p, err := layout.FromPath(res.Layout)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", res.Layout, err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", res.Layout, err)
	}
	top, err := ii.IndexManifest()
	if err != nil || len(top.Manifests) != 1 {
		return nil, fmt.Errorf("image layout %s: want one index in index.json (%v)", res.Layout, err)
	}
	if res.Tag, err = name.NewTag(top.Manifests[0].Annotations[containerdName]); err != nil {
		return nil, fmt.Errorf("image layout %s: %w", res.Layout, err)
	}
	if res.Index, err = ReadLayout(res.Layout); err != nil {
		return nil, err
	}
	if res.Digest, err = res.Index.Digest(); err != nil {
		return nil, err
	}
	m, err := res.Index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", res.Layout, err)
	}
	for _, d := range m.Manifests {
		if d.Platform == nil {
			return nil, fmt.Errorf("image layout %s: manifest %s names no platform", res.Layout, d.Digest)
		}
		img, err := res.Index.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("image layout %s: %w", res.Layout, err)
		}
		pr := PlatformResult{Platform: Platform{d.Platform.OS, d.Platform.Architecture}, Image: img, Digest: d.Digest}
		pr.Binary, pr.Tarball, pr.SBOM = platformFiles(out, pr.Platform)
		res.Platforms = append(res.Platforms, pr)
	}
	return res, nil
}

// containerdName is the layout annotation with the full image name.
const containerdName = "io.containerd.image.name"

// RefName is the layout annotation that names the index by its tag, as
// skopeo (oci:DIR:TAG) and podman read it.
const RefName = "org.opencontainers.image.ref.name"

func writeLayout(dir string, idx v1.ImageIndex, tag name.Tag) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		RefName:        tag.TagStr(),
		containerdName: tag.String(),
	})); err != nil {
		return fmt.Errorf("image layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout returns the index a Build wrote into the layout folder dir.
func ReadLayout(dir string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("image layout %s: %d entries in index.json, want the one index make image writes", dir, len(m.Manifests))
	}
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	return idx, nil
}
