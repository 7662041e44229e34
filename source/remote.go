package source

import (
	"context"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// remote is one connection's worth of access to the repository's remote:
// the wire protocol through go-git's transports (https, ssh) or a folder on
// disk (file://). A remote is used by one operation and then closed.
type remote interface {
	// list returns the remote's branch heads, "refs/heads/<name>" → commit.
	// It is the cheap step of a poll: one reference advertisement.
	list(ctx context.Context) (map[string]plumbing.Hash, error)
	// fetch adds to dst what it lacks to hold the wanted commits and their
	// trees (not their history, unless since is set: then also the commits
	// newer than since).
	fetch(ctx context.Context, dst *objectStore, req fetchRequest) error
	// push moves the branch from old to new on the remote, sending the
	// objects from src, and fails with ErrLeaseLost when the branch is not
	// at old (zero: does not exist).
	push(ctx context.Context, src *objectStore, req pushCommand) error
	// hostKeyFailed reports whether the server's identity check failed.
	hostKeyFailed() bool
	close()
}

type fetchRequest struct {
	wants []plumbing.Hash
	// haves are commits dst holds with complete trees: the remote leaves
	// out what they contain.
	haves []plumbing.Hash
	// since, when not zero, deepens the history down to this time, so that
	// a moved head can be checked for descent from the previous one.
	since time.Time
	// maxBlob bounds one object of the fetch (see Options.MaxBlobSize);
	// negative means no bound.
	maxBlob int64
}

type pushCommand struct {
	branch   string
	old, new plumbing.Hash
	// objects are those of new that the remote may lack.
	objects []plumbing.Hash
}
