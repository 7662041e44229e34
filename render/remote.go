package render

import (
	"errors"
	"regexp"
	"strings"
)

// Refusals. Errors wrap one of these, so callers can tell a policy refusal
// from a broken kustomization with errors.Is.
var (
	// ErrRemoteRefused: a remote resource, component or file whose URL is not
	// under Options.AllowedRemotePrefixes.
	ErrRemoteRefused = errors.New("remote reference refused")
	// ErrRemoteUnsupported: an allowed remote reference. Fetching is not done
	// in process yet; vendor the content into the repository instead.
	ErrRemoteUnsupported = errors.New("remote reference allowed but fetching remote content is not supported")
	// ErrPluginRefused: an exec or container KRM function, or a non-builtin
	// generator, transformer or validator.
	ErrPluginRefused = errors.New("plugin refused")
	// ErrHelmRefused: Helm chart inflation (there is no helm binary).
	ErrHelmRefused = errors.New("helm chart inflation refused: there is no helm binary; render the chart into the repository instead")
	// ErrOpenAPIRefused: a custom OpenAPI schema, which Kustomize keeps in
	// process-wide state and would leak into every later build.
	ErrOpenAPIRefused = errors.New("openapi field refused: kustomize keeps custom schemas in process-wide state")
)

// scmUser matches the "user@" of scp-like git addresses (git@host:org/repo).
var scmUser = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// urlScheme matches "scheme://".
var urlScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)

// isRemote reports whether Kustomize would fetch ref over the network (or
// clone it from outside the snapshot) rather than read it from the tree. It
// is deliberately wider than Kustomize's own parser: any scheme, scp-like
// user@host addresses, the go-getter "git::" prefix, and the schemeless
// github.com/ form Kustomize accepts.
func isRemote(ref string) bool {
	r := strings.TrimSpace(ref)
	if len(r) >= 5 && strings.EqualFold(r[:5], "git::") {
		return true
	}
	if urlScheme.MatchString(r) || scmUser.MatchString(r) {
		return true
	}
	lower := strings.ToLower(r)
	return strings.HasPrefix(lower, "github.com/") || strings.HasPrefix(lower, "github.com:")
}

// remoteAllowed reports whether ref starts with one of the allowed prefixes
// and does not climb back out of it with "..".
func remoteAllowed(ref string, allowed []string) bool {
	for _, p := range allowed {
		rest, ok := strings.CutPrefix(ref, p)
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, "?")
		climbs := false
		for _, seg := range strings.Split(rest, "/") {
			if seg == ".." {
				climbs = true
			}
		}
		if !climbs {
			return true
		}
	}
	return false
}
