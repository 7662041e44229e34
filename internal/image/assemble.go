package image

import (
	"fmt"
	"os"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OCI annotation and label keys the image carries.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelLicenses = "org.opencontainers.image.licenses"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
)

// Metadata describes the image in its labels.
type Metadata struct {
	Source Source
	// Repository is the source repository's URL (org.opencontainers.image.source).
	Repository string
	// Licenses is an SPDX licence expression (org.opencontainers.image.licenses).
	Licenses string
}

// labels are the OCI labels of every image and the annotations of the
// index and its manifests.
func (m Metadata) labels() map[string]string {
	return map[string]string{
		LabelTitle:    "baton",
		LabelSource:   m.Repository,
		LabelRevision: m.Source.Commit,
		LabelVersion:  m.Source.Version,
		LabelLicenses: m.Licenses,
		LabelCreated:  m.Source.Time.Format("2006-01-02T15:04:05Z"),
	}
}

// Assemble makes the image of one platform from its compiled binary: the
// base layer, then the binary's layer, with the entrypoint, user and
// labels. Only the binary and the platform differ between platforms: the
// base layer is the same blob in both.
func Assemble(binary string, p Platform, m Metadata) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("assemble %s: %w", p, err)
	}
	base, err := baseEntries()
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: m.Source.Time}
	baseLayer, err := layer(base, m.Source.Time)
	if err != nil {
		return nil, fmt.Errorf("assemble %s: base layer: %w", p, err)
	}
	binLayer, err := layer([]entry{{path: BinaryPath, mode: 0o755, data: bin}}, m.Source.Time)
	if err != nil {
		return nil, fmt.Errorf("assemble %s: binary layer: %w", p, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: baseLayer, History: v1.History{Created: created,
			CreatedBy: "baton image: user " + UserName + " (" + strconv.Itoa(UID) + "), CA certificates"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created,
			CreatedBy: "baton image: " + BinaryPath + " " + m.Source.Version}},
	)
	if err != nil {
		return nil, fmt.Errorf("assemble %s: %w", p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("assemble %s: %w", p, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Arch, p.variant()
	cf.Created = created
	cf.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		User:       strconv.Itoa(UID) + ":" + strconv.Itoa(GID),
		WorkingDir: Home,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + Home},
		Labels:     m.labels(),
		// listen.http's default; the Deployment's probes and Service use it.
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("assemble %s: %w", p, err)
	}
	return mutate.Annotations(img, m.labels()).(v1.Image), nil
}

// Index puts the platforms' images in one OCI image index, in the order
// given.
func Index(images []v1.Image, m Metadata) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: cf.Platform()}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, m.labels()).(v1.ImageIndex), nil
}
