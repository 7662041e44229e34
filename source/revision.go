package source

import (
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Revision is one commit at the head of a followed branch: the facts the
// rest of Baton records and renders. It is plain data; Snapshot reads the
// commit's files.
type Revision struct {
	// Repository is the remote URL without credentials.
	Repository string
	// Branch is the followed branch, e.g. env/dev.
	Branch string
	// Commit is the commit hash (hex).
	Commit string
	// Tree is the hash of the commit's root tree.
	Tree string
	// Parents are the parent commit hashes.
	Parents []string
	// Author wrote the change; Committer made the commit.
	Author, Committer Signature
	// Time is the committer time.
	Time time.Time
	// Message is the full commit message.
	Message string
	// Trailers are the "Key: value" lines of the message's last paragraph.
	Trailers []Trailer
	// Signer names the key whose signature was verified, when the branch
	// requires signatures; empty otherwise.
	Signer string
	// Snapshot is the commit's tree as a read-only filesystem.
	Snapshot *Snapshot
}

// Signature is a person and a time, as in a commit's author line.
type Signature struct {
	Name  string
	Email string
	When  time.Time
}

// Trailer is one "Key: value" line at the end of a commit message, such as
// "Baton-Promoted-From: env/dev@1a2b3c".
type Trailer struct {
	Key   string
	Value string
}

// Trailer returns the value of the first trailer whose key matches key,
// ignoring case.
func (r *Revision) Trailer(key string) (string, bool) {
	for _, t := range r.Trailers {
		if strings.EqualFold(t.Key, key) {
			return t.Value, true
		}
	}
	return "", false
}

// Subject is the first line of the message.
func (r *Revision) Subject() string {
	s, _, _ := strings.Cut(r.Message, "\n")
	return s
}

// revertLine is the line by which a commit says what it reverts: git
// revert writes "This reverts commit <hash>." in the body (", reversing
// changes made to <parent>." follows for a merge), as do the forges' revert
// buttons; Baton's rollbacks write one such line per reverted commit. Only
// a full hash at the start of a line counts: an abbreviated hash or the
// phrase quoted inside a sentence names no commit for certain.
var revertLine = regexp.MustCompile(`(?m)^This reverts commit ([0-9a-f]{40})\b`)

// Reverts returns the commits the revision reverts, in the order its
// message names them, or nil when it is not a revert. A revert of a revert
// (git's "Revert "Revert ..."", or "Reapply ..." since git 2.43) reverts
// the first revert: it names that commit, not the original.
func (r *Revision) Reverts() []string {
	var out []string
	for _, m := range revertLine.FindAllStringSubmatch(r.Message, -1) {
		out = append(out, m[1])
	}
	return out
}

// newRevision builds a Revision from a decoded commit. The snapshot reads
// from store.
func newRevision(repo, branch string, c *object.Commit, store *objectStore, signer string) *Revision {
	parents := make([]string, len(c.ParentHashes))
	for i, p := range c.ParentHashes {
		parents[i] = p.String()
	}
	return &Revision{
		Repository: repo,
		Branch:     branch,
		Commit:     c.Hash.String(),
		Tree:       c.TreeHash.String(),
		Parents:    parents,
		Author:     Signature{Name: c.Author.Name, Email: c.Author.Email, When: c.Author.When},
		Committer:  Signature{Name: c.Committer.Name, Email: c.Committer.Email, When: c.Committer.When},
		Time:       c.Committer.When,
		Message:    c.Message,
		Trailers:   ParseTrailers(c.Message),
		Signer:     signer,
		Snapshot:   newSnapshot(store, c.Hash, c.TreeHash, c.Committer.When),
	}
}

// rebase returns a copy of the revision that reads from another store
// generation holding the same commit.
func (r *Revision) rebase(store *objectStore) *Revision {
	c := *r
	c.Snapshot = newSnapshot(store, plumbing.NewHash(r.Commit), plumbing.NewHash(r.Tree), r.Time)
	return &c
}

// ParseTrailers returns the trailers of a commit message: the lines of its
// last paragraph when every line there is "Key: value" (keys are letters,
// digits and dashes; a space follows the colon) or an indented continuation
// of the previous value. The subject paragraph never holds trailers.
func ParseTrailers(msg string) []Trailer {
	msg = strings.TrimRight(strings.ReplaceAll(msg, "\r\n", "\n"), " \t\n")
	i := strings.LastIndex(msg, "\n\n")
	if i < 0 {
		return nil
	}
	var out []Trailer
	for _, line := range strings.Split(msg[i+2:], "\n") {
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			if len(out) == 0 {
				return nil
			}
			out[len(out)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		// "Key: value" or "Key:"; a colon followed by text ("https://...")
		// is not a trailer.
		if !ok || !isTrailerKey(key) || (value != "" && value[0] != ' ' && value[0] != '\t') {
			return nil
		}
		out = append(out, Trailer{Key: key, Value: strings.TrimSpace(value)})
	}
	return out
}

func isTrailerKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
