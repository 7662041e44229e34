package preview

import (
	"fmt"
	"strings"
)

// highlightKeys are the fields reviewers look for first in a rollout,
// read from the YAML diff lines that change them.
var highlightKeys = []string{"image", "replicas", "cpu", "memory"}

// maxHighlights bounds the highlights of one object.
const maxHighlights = 6

// highlights reads the changed images, replicas and resources from a
// unified YAML diff: a removed "key: old" and an added "key: new" of the
// same key pair up in order as "key old → new"; an unpaired one is
// "key new" (added) or "key old → (none)" (removed). A pure reading of the
// text: the diff is all the reconciler returns, and its lines are YAML of
// one object, where these keys are not ambiguous enough to matter.
func highlights(diff string) []string {
	removed, added := map[string][]string{}, map[string][]string{}
	for _, line := range strings.Split(diff, "\n") {
		if len(line) < 2 || strings.HasPrefix(line, "---") || strings.HasPrefix(line, "+++") {
			continue
		}
		sign := line[0]
		if sign != '-' && sign != '+' {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(line[1:]), ":")
		key = strings.TrimSpace(strings.TrimPrefix(key, "- "))
		if !ok || !isHighlightKey(key) {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"'`)
		if value == "" {
			continue
		}
		if sign == '-' {
			removed[key] = append(removed[key], value)
		} else {
			added[key] = append(added[key], value)
		}
	}
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] && len(out) < maxHighlights {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, k := range highlightKeys {
		old, next := removed[k], added[k]
		for i := 0; i < max(len(old), len(next)); i++ {
			switch {
			case i < len(old) && i < len(next):
				add(fmt.Sprintf("%s %s → %s", k, old[i], next[i]))
			case i < len(next):
				add(fmt.Sprintf("%s %s", k, next[i]))
			default:
				add(fmt.Sprintf("%s %s → (none)", k, old[i]))
			}
		}
	}
	return out
}

func isHighlightKey(k string) bool {
	for _, h := range highlightKeys {
		if k == h {
			return true
		}
	}
	return false
}
