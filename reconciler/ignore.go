package reconciler

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// validateIgnoreRules checks globs and pointers once per pass, so that a bad
// rule is reported as such instead of silently matching nothing.
func validateIgnoreRules(rules []IgnoreRule) error {
	for i, r := range rules {
		for _, glob := range []string{r.Namespace, r.Name} {
			if _, err := path.Match(glob, ""); err != nil {
				return fmt.Errorf("ignore rule %d (%s): bad pattern %q: %w", i, r.describe(), glob, err)
			}
		}
		if len(r.Paths) == 0 {
			return fmt.Errorf("ignore rule %d (%s): no paths", i, r.describe())
		}
		for _, p := range r.Paths {
			if _, err := parsePointer(p); err != nil {
				return fmt.Errorf("ignore rule %d (%s): %w", i, r.describe(), err)
			}
			if protectedPointer(p) {
				return fmt.Errorf("ignore rule %d (%s): %s identifies the object and cannot be ignored", i, r.describe(), p)
			}
		}
	}
	return nil
}

// protectedPointer reports pointers that would remove an object's identity.
func protectedPointer(p string) bool {
	switch p {
	case "/apiVersion", "/kind", "/metadata", "/metadata/name", "/metadata/namespace":
		return true
	}
	return false
}

func (r IgnoreRule) describe() string {
	gk := r.Kind
	if gk == "" {
		gk = "*"
	}
	if r.Group != "" {
		gk += "." + r.Group
	}
	ns, name := r.Namespace, r.Name
	if ns == "" {
		ns = "*"
	}
	if name == "" {
		name = "*"
	}
	return gk + "/" + ns + "/" + name
}

// matches reports whether the rule applies to the object. Patterns were
// validated, so match errors cannot happen here.
func (r IgnoreRule) matches(ref ObjectRef) bool {
	if r.Group != "" && r.Group != ref.Group {
		return false
	}
	if r.Kind != "" && r.Kind != ref.Kind {
		return false
	}
	if r.Namespace != "" {
		if ok, _ := path.Match(r.Namespace, ref.Namespace); !ok {
			return false
		}
	}
	if r.Name != "" {
		if ok, _ := path.Match(r.Name, ref.Name); !ok {
			return false
		}
	}
	return true
}

// ignoredPaths collects the pointers of every rule that matches ref.
func ignoredPaths(rules []IgnoreRule, ref ObjectRef) []string {
	var out []string
	for _, r := range rules {
		if r.matches(ref) {
			out = append(out, r.Paths...)
		}
	}
	return out
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("bad JSON pointer %q: must start with /", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		// Order matters: ~1 first would turn "~01" into "/" instead of "~1".
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// removePointer deletes the field a pointer names from a JSON-shaped object
// (maps and lists as unstructured holds them). A missing field is not an
// error: ignore rules describe fields that may or may not be set. It reports
// whether something was removed.
func removePointer(obj map[string]any, pointer string) (bool, error) {
	tokens, err := parsePointer(pointer)
	if err != nil {
		return false, err
	}
	var cur any = obj
	// replace swaps the current node in its parent; a list element is
	// removed by giving the parent a shorter list.
	replace := func(any) {}
	for i, tok := range tokens {
		last := i == len(tokens)-1
		switch node := cur.(type) {
		case map[string]any:
			next, ok := node[tok]
			if !ok {
				return false, nil
			}
			if last {
				delete(node, tok)
				return true, nil
			}
			cur = next
			replace = func(v any) { node[tok] = v }
		case []any:
			idx, err := strconv.Atoi(tok)
			if err != nil || idx < 0 || idx >= len(node) {
				return false, nil
			}
			if last {
				replace(append(node[:idx:idx], node[idx+1:]...))
				return true, nil
			}
			cur = node[idx]
			replace = func(v any) { node[idx] = v }
		default:
			return false, nil
		}
	}
	return false, nil
}
