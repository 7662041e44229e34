// Package source follows environment branches of git repositories with
// go-git, in process (no git binary), and turns each branch head into a
// Revision whose tree can be read as a filesystem without a checkout. It
// also writes commits and pushes them with a lease, for promotions.
//
// # Following branches
//
// A Repository holds one remote and one on-disk object store shared by all
// its followed branches. Poll asks the remote for the branch heads first
// and fetches only the heads that moved, at depth 1, asking the remote to
// leave out what the store already has: an unchanged poll costs one
// reference advertisement and nothing else. A Poller repeats polls at an
// interval and on demand; the WebhookHandler turns verified push events
// from GitHub, GitLab, Gitea or a generic HMAC sender into such demands.
//
// What is guaranteed:
//   - A failed poll (auth, host key, unreachable remote, timeout), a
//     deleted branch and a head that fails signature verification never
//     replace the last good revision: results always carry it, with the
//     error beside it.
//   - A force-pushed branch is followed (git is the truth) and reported in
//     BranchResult.ForcePush with the old and new heads.
//   - Errors are *Error values of a kind callers can test with errors.Is
//     (ErrAuthFailed, ErrHostKeyMismatch, ErrUnreachable, ErrBranchMissing,
//     ErrSignatureInvalid, ErrTimeout, ErrLeaseLost). Their text names the
//     repository without credentials, and the branch; secrets read from the
//     credential files are removed from any text that reaches an error.
//   - Disk use is bounded: the store is compacted into a fresh generation
//     holding only what its references need once it has too many packs;
//     older generations are deleted when no Snapshot refers to them.
//   - Snapshots are immutable and safe for concurrent reads.
//
// What is not: SSH commit signatures are reported as unsupported (go-git v5
// verifies OpenPGP only); a file:// remote is read and written with go-git
// directly, with a compare-and-swap that is exact against other go-git
// writers and best-effort against the git CLI.
//
// # Writing
//
// Commit builds a commit from a base commit and a set of written files,
// replaced folders and deletions, in the local store; Push moves a remote
// branch to it only if the branch is still at the expected commit, and
// fails with ErrLeaseLost otherwise.
package source
