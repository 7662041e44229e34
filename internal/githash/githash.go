// Package githash abbreviates commit hashes the one way Baton shows them:
// in logs, status, events, Environment conditions, commit subjects, pull
// request titles and CLI output alike, so that a hash seen in one place can
// be searched for in every other.
package githash

// ShortLen is the length of an abbreviated commit hash. Git's own default
// (7, growing with the repository) differs from repository to repository;
// 12 stays unambiguous in large ones and is what Go's pseudo-versions use.
const ShortLen = 12

// Short abbreviates a commit hash to ShortLen characters; a shorter string
// (already abbreviated, or empty) is returned as it is.
func Short(commit string) string {
	if len(commit) > ShortLen {
		return commit[:ShortLen]
	}
	return commit
}
