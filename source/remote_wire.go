package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// wireRemote speaks the git protocol through a go-git transport. It drives
// the sessions itself rather than through go-git's Remote.Fetch, for two
// reasons: the advertisement that answered list is reused by the fetch that
// follows (an unchanged poll costs exactly one request, a changed one
// exactly two over HTTP), and the fetch asks only for the changed heads with
// the store's heads as haves, at depth 1.
type wireRemote struct {
	tr         transport.Transport
	ep         *transport.Endpoint
	auth       transport.AuthMethod
	hostKeyBad *atomic.Bool // set by the SSH host key callback

	// The session that answered list, kept for the next fetch.
	pending    transport.UploadPackSession
	pendingAdv *packp.AdvRefs
}

func (w *wireRemote) hostKeyFailed() bool { return w.hostKeyBad != nil && w.hostKeyBad.Load() }

func (w *wireRemote) close() {
	if w.pending != nil {
		_ = w.pending.Close()
		w.pending = nil
	}
}

func (w *wireRemote) openUpload(ctx context.Context) (transport.UploadPackSession, *packp.AdvRefs, error) {
	sess, err := w.tr.NewUploadPackSession(w.ep, w.auth)
	if err != nil {
		return nil, nil, err
	}
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		_ = sess.Close()
		return nil, nil, err
	}
	return sess, adv, nil
}

func (w *wireRemote) list(ctx context.Context) (map[string]plumbing.Hash, error) {
	w.close()
	sess, adv, err := w.openUpload(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return map[string]plumbing.Hash{}, nil
	}
	if err != nil {
		return nil, err
	}
	w.pending, w.pendingAdv = sess, adv
	return branchHeads(adv.References), nil
}

func branchHeads(refs map[string]plumbing.Hash) map[string]plumbing.Hash {
	out := make(map[string]plumbing.Hash, len(refs))
	for name, h := range refs {
		if strings.HasPrefix(name, headRefPrefix) {
			out[name] = h
		}
	}
	return out
}

func (w *wireRemote) fetch(ctx context.Context, dst *objectStore, req fetchRequest) error {
	sess, adv := w.pending, w.pendingAdv
	w.pending, w.pendingAdv = nil, nil
	if sess == nil {
		var err error
		if sess, adv, err = w.openUpload(ctx); err != nil {
			return err
		}
	}
	defer sess.Close()

	up := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	// Ask for a thin pack when the store has something to delta against.
	// This is not only about deltas: git's pack-objects leaves out the
	// objects of the "have" commits' trees only in thin mode when the fetch
	// is shallow, so a plain depth-1 fetch would resend the whole tree.
	// go-git hides thin-pack from the advertisement because its pack writer
	// cannot store a thin pack; storePack completes it first.
	thin := len(req.haves) > 0
	if thin {
		_ = up.Capabilities.Set(capability.ThinPack)
	}
	if adv.Capabilities.Supports(capability.NoProgress) {
		_ = up.Capabilities.Set(capability.NoProgress)
	}
	if !adv.Capabilities.Supports(capability.Shallow) {
		return errors.New("the server does not support shallow fetches")
	}
	_ = up.Capabilities.Set(capability.Shallow)
	up.Depth = packp.DepthCommits(1)
	if !req.since.IsZero() {
		if !adv.Capabilities.Supports(capability.DeepenSince) {
			return errors.New("the server does not support deepen-since")
		}
		_ = up.Capabilities.Set(capability.DeepenSince)
		up.Depth = packp.DepthSince(req.since)
	}
	up.Wants = req.wants
	up.Haves = req.haves
	dst.mu.Lock()
	shallows, err := dst.st.Shallow()
	dst.mu.Unlock()
	if err != nil {
		return err
	}
	up.Shallows = shallows

	resp, err := sess.UploadPack(ctx, up)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil
	}
	if err != nil {
		return err
	}
	defer resp.Close()
	var pack io.Reader = resp
	switch {
	case up.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case up.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	return storePack(dst, pack, thin, req.maxBlob, resp.Shallows, resp.Unshallows)
}

// storePack spools the pack to a temporary file first, so that the store's
// lock (which Snapshot readers also take) is held for a local copy only,
// never for a download.
//
// The spooled pack is checked before go-git parses it: an object over
// maxBlob refuses the whole pack (see checkPack).
func storePack(dst *objectStore, pack io.Reader, thin bool, maxBlob int64, shallow, unshallow []plumbing.Hash) error {
	tmp, err := os.CreateTemp(dst.dir, "incoming-*.pack")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, pack)
	if err != nil {
		return fmt.Errorf("download pack: %w", err)
	}
	if n > 0 {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := checkPack(tmp, maxBlob); err != nil {
			return err
		}
	}
	dst.mu.Lock()
	defer dst.mu.Unlock()
	if n > 0 {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if thin {
			err = storeThinPackLocked(dst, tmp)
		} else {
			err = packfile.UpdateObjectStorage(dst.st, tmp)
		}
		if err != nil && !errors.Is(err, packfile.ErrEmptyPackfile) {
			return fmt.Errorf("store pack: %w", err)
		}
	}
	return dst.addShallowLocked(shallow, unshallow)
}

// storeThinPackLocked completes a thin pack: its objects are resolved in
// memory, reading delta bases from the store, and written back as one
// self-contained pack. Thin packs carry a fetch's changes only, so they are
// small.
func storeThinPackLocked(dst *objectStore, pack *os.File) error {
	mem := memory.NewStorage()
	parser, err := packfile.NewParserWithStorage(packfile.NewScanner(pack), &thinResolver{ObjectStorage: &mem.ObjectStorage, base: dst.st})
	if err != nil {
		return err
	}
	if _, err := parser.Parse(); err != nil {
		return err
	}
	hashes := make([]plumbing.Hash, 0, len(mem.ObjectStorage.Objects))
	for h := range mem.ObjectStorage.Objects {
		if !dst.hasLocked(h) {
			hashes = append(hashes, h)
		}
	}
	return writePack(dst.st, mem, hashes)
}

// thinResolver keeps a thin pack's objects in memory and finds the bases of
// its deltas in the store.
type thinResolver struct {
	*memory.ObjectStorage
	base storer.EncodedObjectStorer
}

func (t *thinResolver) EncodedObject(typ plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, err := t.ObjectStorage.EncodedObject(typ, h); err == nil {
		return o, nil
	}
	return t.base.EncodedObject(typ, h)
}

func (w *wireRemote) push(ctx context.Context, src *objectStore, cmd pushCommand) error {
	w.close()
	sess, err := w.tr.NewReceivePackSession(w.ep, w.auth)
	if err != nil {
		return err
	}
	defer sess.Close()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return err
	}
	ref := headRefPrefix + cmd.branch
	if cur := adv.References[ref]; cur != cmd.old {
		return leaseLost(cmd, cur)
	}
	// The pack is built in memory before sending, so that the store's lock
	// is not held while the network is slow. Pushes carry a few changed
	// files, not whole trees.
	var buf bytes.Buffer
	src.mu.Lock()
	_, err = packfile.NewEncoder(&buf, src.st, false).Encode(cmd.objects, 10)
	src.mu.Unlock()
	if err != nil {
		return fmt.Errorf("build pack: %w", err)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(adv.Capabilities)
	// The server applies the command only if the branch is still at old
	// when it takes the ref lock: this is the compare-and-swap.
	req.Commands = []*packp.Command{{Name: plumbing.ReferenceName(ref), Old: cmd.old, New: cmd.new}}
	req.Packfile = io.NopCloser(&buf)
	status, err := sess.ReceivePack(ctx, req)
	if err != nil {
		return err
	}
	if status == nil {
		return nil
	}
	if err := status.Error(); err != nil {
		// The ref moved between the advertisement and the update.
		if msg := err.Error(); strings.Contains(msg, "lock") || strings.Contains(msg, "stale") ||
			strings.Contains(msg, "expected") || strings.Contains(msg, "fetch first") {
			return fmt.Errorf("%w: %s", ErrLeaseLost, msg)
		}
		return err
	}
	return nil
}

func leaseLost(cmd pushCommand, cur plumbing.Hash) error {
	want, got := "absent", "absent"
	if !cmd.old.IsZero() {
		want = cmd.old.String()
	}
	if !cur.IsZero() {
		got = cur.String()
	}
	return fmt.Errorf("%w: branch is at %s, expected %s", ErrLeaseLost, got, want)
}
