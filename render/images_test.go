package render

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const overlayWithImages = `# prod overlay: promoted by baton
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base # the shared base
images:
  # the web frontend
  - name: ghcr.io/acme/web
    newTag: 1.3.0 # promoted from staging
  - name: ghcr.io/acme/worker
    newName: registry.acme.dev/worker
    digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
namePrefix: prod-
`

func TestSetImagesUpdatesInPlace(t *testing.T) {
	out, err := SetImages([]byte(overlayWithImages),
		Image{Name: "ghcr.io/acme/web", NewTag: "1.4.0"},
		Image{Name: "ghcr.io/acme/worker", NewTag: "2.0.1"},
	)
	require.NoError(t, err)
	assert.Equal(t, `# prod overlay: promoted by baton
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base # the shared base
images:
  # the web frontend
  - name: ghcr.io/acme/web
    newTag: 1.4.0 # promoted from staging
  - name: ghcr.io/acme/worker
    newTag: 2.0.1
namePrefix: prod-
`, string(out), "comments, key order and indentation kept; empty fields removed")
}

func TestSetImagesAppends(t *testing.T) {
	in := "resources:\n- ../../base\n# keep me\nnamePrefix: dev-\n"
	out, err := SetImages([]byte(in), Image{Name: "ghcr.io/acme/web", NewName: "registry.acme.dev/web", NewTag: "1.10"})
	require.NoError(t, err)
	assert.Equal(t, `resources:
- ../../base
# keep me
namePrefix: dev-
images:
- name: ghcr.io/acme/web
  newName: registry.acme.dev/web
  newTag: "1.10"
`, string(out), "compact list style kept; a tag that reads as a number is quoted")

	again, err := SetImages(out, Image{Name: "ghcr.io/acme/api", Digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"})
	require.NoError(t, err)
	got, err := Images(again)
	require.NoError(t, err)
	assert.Equal(t, []Image{
		{Name: "ghcr.io/acme/web", NewName: "registry.acme.dev/web", NewTag: "1.10"},
		{Name: "ghcr.io/acme/api", Digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
	}, got)
}

func TestSetImagesEdgeCases(t *testing.T) {
	out, err := SetImages(nil, Image{Name: "web", NewTag: "v1"})
	require.NoError(t, err)
	assert.Equal(t, "images:\n- name: web\n  newTag: v1\n", string(out))

	out, err = SetImages([]byte("images:\nnamePrefix: a-\n"), Image{Name: "web", NewTag: "v1"})
	require.NoError(t, err)
	assert.Equal(t, "images:\n- name: web\n  newTag: v1\nnamePrefix: a-\n", string(out))

	unchanged, err := SetImages([]byte(overlayWithImages))
	require.NoError(t, err)
	assert.Equal(t, overlayWithImages, string(unchanged), "no images: the file round-trips as it was")

	for _, tc := range []struct {
		in   string
		im   []Image
		want string
	}{
		{"", []Image{{NewTag: "v1"}}, `image name ""`},
		{"", []Image{{Name: "web:1.0@sha256:x"}}, "want a name without tag, digest or spaces"},
		{"", []Image{{Name: "web", NewTag: "v1 beta"}}, `newTag "v1 beta" is not a valid tag`},
		{"", []Image{{Name: "web", Digest: "1234"}}, `digest "1234" is not a valid digest`},
		{"", []Image{{Name: "web"}, {Name: "web"}}, "image web given twice"},
		{"images: web\n", []Image{{Name: "web"}}, "kustomization:1: images is not a list"},
		{"- a\n- b\n", []Image{{Name: "web"}}, "top level is not a mapping"},
		{"a: 1\nb: [\n", []Image{{Name: "web"}}, "kustomization:3: yaml syntax error"},
		{"a: 1\n---\nb: 2\n", []Image{{Name: "web"}}, "more than one YAML document"},
	} {
		_, err := SetImages([]byte(tc.in), tc.im...)
		assert.ErrorContains(t, err, tc.want, tc.in)
	}
}

func TestImagesReads(t *testing.T) {
	got, err := Images([]byte(overlayWithImages))
	require.NoError(t, err)
	assert.Equal(t, []Image{
		{Name: "ghcr.io/acme/web", NewTag: "1.3.0"},
		{Name: "ghcr.io/acme/worker", NewName: "registry.acme.dev/worker", Digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
	}, got)

	none, err := Images([]byte("resources: [a.yaml]\n"))
	require.NoError(t, err)
	assert.Empty(t, none)

	_, err = Images([]byte("images:\n  - newTag: v1\n"))
	assert.ErrorContains(t, err, "kustomization:2: images entry has no name")
}

// TestSetImagesThenRender: the edited file renders with the new image, as
// promotion relies on.
func TestSetImagesThenRender(t *testing.T) {
	files := withBase(map[string]string{"overlays/prod/kustomization.yaml": overlayWithImages})
	out, err := SetImages([]byte(overlayWithImages), Image{Name: "ghcr.io/acme/web", NewTag: "1.4.0"})
	require.NoError(t, err)
	files["overlays/prod/kustomization.yaml"] = string(out)

	res, err := newTestRenderer(t, Options{}).Render(context.Background(), mapSnapshot(files), "overlays/prod")
	require.NoError(t, err)
	require.Len(t, res.Objects, 1)
	c := res.Objects[0].Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	assert.Equal(t, "ghcr.io/acme/web:1.4.0", c["image"])
}
