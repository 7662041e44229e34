package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushOptions configure Push.
type PushOptions struct {
	// Keychain finds the registry's credentials. Default
	// authn.DefaultKeychain: ~/.docker/config.json (or $DOCKER_CONFIG), with
	// its credential helpers, as docker and podman log in.
	Keychain authn.Keychain
	// Transport, when set, carries the requests (tests; a custom CA).
	Transport http.RoundTripper
	// Progress receives a line as each quarter of the bytes is uploaded.
	Progress io.Writer
}

// Push uploads the index, its images and their layers to ref (a tag) and
// returns the digest reference it can be pulled and pinned by. Blobs the
// registry already holds are not uploaded again.
func Push(ctx context.Context, idx v1.ImageIndex, ref string, o PushOptions) (name.Digest, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	digest, err := idx.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	updates := make(chan v1.Update, 16)
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(o.Keychain), remote.WithProgress(updates)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		reportUploads(updates, o.Progress, tag.String())
	}()
	err = remote.WriteIndex(tag, idx, opts...)
	<-done // WriteIndex closes the channel
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return tag.Context().Digest(digest.String()), nil
}

// reportUploads prints the upload's progress at each quarter, and every
// 10 seconds at most otherwise, until updates is closed.
func reportUploads(updates <-chan v1.Update, w io.Writer, ref string) {
	if w == nil {
		w = io.Discard
	}
	quarter, last := int64(-1), time.Now()
	for u := range updates {
		if u.Error != nil || u.Total == 0 {
			continue
		}
		q := u.Complete * 4 / u.Total
		if q != quarter || time.Since(last) > 10*time.Second {
			quarter, last = q, time.Now()
			fmt.Fprintf(w, "push %s: %d of %d bytes\n", ref, u.Complete, u.Total)
		}
	}
}
