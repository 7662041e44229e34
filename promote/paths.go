package promote

import (
	"fmt"
	"path"
	"strings"
)

// matcher decides which paths are promotable. It is pure and safe for
// concurrent use.
type matcher struct {
	include, exclude [][]string // patterns split into segments
	overlays         []string   // overlay folders, never promotable
}

func newMatcher(p Pipeline) matcher {
	m := matcher{}
	for _, pat := range p.Paths.Include {
		m.include = append(m.include, splitGlob(pat))
	}
	for _, pat := range p.Paths.Exclude {
		m.exclude = append(m.exclude, splitGlob(pat))
	}
	for _, e := range p.Environments {
		m.overlays = append(m.overlays, path.Clean(e.Overlay))
	}
	return m
}

// promotable reports whether the file at p (slash-separated, relative to
// the root) is carried by a promotion.
func (m matcher) promotable(p string) bool {
	for _, o := range m.overlays {
		if p == o || strings.HasPrefix(p, o+"/") {
			return false
		}
	}
	segs := strings.Split(p, "/")
	if len(m.include) > 0 && !matchAny(m.include, segs) {
		return false
	}
	return !matchAny(m.exclude, segs)
}

// matchAny reports whether a pattern matches the path or a folder above it.
func matchAny(patterns [][]string, segs []string) bool {
	for _, pat := range patterns {
		for n := 1; n <= len(segs); n++ {
			if matchSegments(pat, segs[:n]) {
				return true
			}
		}
	}
	return false
}

// matchSegments matches a split glob against split path segments: "**"
// matches zero or more segments, other segments follow path.Match.
func matchSegments(pat, segs []string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(segs); i++ {
			if matchSegments(pat[1:], segs[i:]) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], segs[0])
	return err == nil && ok && matchSegments(pat[1:], segs[1:])
}

func splitGlob(pat string) []string {
	return strings.Split(strings.Trim(path.Clean(pat), "/"), "/")
}

// ValidGlob checks a promotable-paths pattern: relative to the repository
// root, "**" only as a whole segment, each segment a valid path.Match
// pattern. internal/config checks baton.yaml's pipeline.paths with it.
func ValidGlob(pat string) error {
	if strings.TrimSpace(pat) == "" {
		return fmt.Errorf("must not be empty")
	}
	if path.IsAbs(pat) || pat == ".." || strings.HasPrefix(path.Clean(pat), "../") {
		return fmt.Errorf("%q must be relative to the repository root", pat)
	}
	for _, s := range splitGlob(pat) {
		if s == "**" {
			continue
		}
		if strings.Contains(s, "**") {
			return fmt.Errorf("%q: ** must be a whole path segment", pat)
		}
		if _, err := path.Match(s, ""); err != nil {
			return fmt.Errorf("%q is not a valid pattern", pat)
		}
	}
	return nil
}
