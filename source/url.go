package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

type urlKind int

const (
	kindHTTP urlKind = iota
	kindSSH
	kindFile
)

// endpoint is a parsed repository URL.
type endpoint struct {
	kind urlKind
	ep   *transport.Endpoint
	// path is the local folder for file:// URLs.
	path string
}

// parseURL accepts https://, http://, ssh://, scp-like user@host:path and
// file:// URLs without passwords.
func parseURL(raw string) (*endpoint, error) {
	if raw == "" {
		return nil, errors.New("required")
	}
	if strings.HasPrefix(raw, "file://") {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", redactURL(raw), err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("%q: file URLs must not name a host", raw)
		}
		if !filepath.IsAbs(filepath.FromSlash(u.Path)) {
			return nil, fmt.Errorf("%q: file URLs need an absolute path", raw)
		}
		ep, err := transport.NewEndpoint(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", raw, err)
		}
		return &endpoint{kind: kindFile, ep: ep, path: filepath.FromSlash(u.Path)}, nil
	}
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", redactURL(raw), err)
		}
		if _, has := u.User.Password(); has {
			return nil, fmt.Errorf("%q: the URL carries a password; use auth.passwordFile or auth.tokenFile", redactURL(raw))
		}
		if u.Host == "" {
			return nil, fmt.Errorf("%q: no host", raw)
		}
		switch u.Scheme {
		case "https", "http":
			if u.User != nil {
				return nil, fmt.Errorf("%q: put the user name in auth.username, not in the URL", raw)
			}
		case "ssh":
		default:
			return nil, fmt.Errorf("%q: unsupported scheme %q (use https, ssh or file)", raw, u.Scheme)
		}
	} else if !strings.Contains(raw, ":") || !strings.Contains(raw, "@") {
		return nil, fmt.Errorf("%q: not a URL (use https://, ssh://, user@host:path or file://)", raw)
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", redactURL(raw), err)
	}
	kind := kindHTTP
	if ep.Protocol == "ssh" {
		kind = kindSSH
		if ep.User == "" {
			ep.User = "git"
		}
	}
	return &endpoint{kind: kind, ep: ep}, nil
}

// redactURL removes any password from a URL so that it can be shown.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "redacted")
			return u.String()
		}
		return raw
	}
	if err != nil && strings.Contains(raw, "://") && strings.Contains(raw, "@") {
		scheme, rest, _ := strings.Cut(raw, "://")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			return scheme + "://redacted@" + rest[at+1:]
		}
	}
	return raw
}

// NormalizeURL reduces a repository URL to lower-case "host/path" without
// scheme, user, port or .git suffix, so that the HTTPS and SSH URLs of one
// repository compare equal. It returns "" for text that is not a URL.
func NormalizeURL(raw string) string {
	raw = strings.TrimSpace(raw)
	var host, p string
	switch {
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			return ""
		}
		host, p = u.Hostname(), u.Path
	case strings.Contains(raw, ":"):
		// scp-like user@host:path
		hostPart, pathPart, _ := strings.Cut(raw, ":")
		if i := strings.LastIndex(hostPart, "@"); i >= 0 {
			hostPart = hostPart[i+1:]
		}
		host, p = hostPart, pathPart
	default:
		return ""
	}
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	if host == "" && p == "" {
		return ""
	}
	return strings.ToLower(host + "/" + p)
}

// cacheKey names a repository's folder in the cache: a hash, so that any
// URL makes a safe folder name and no credential ends up on disk.
func cacheKey(raw string) string {
	sum := sha256.Sum256([]byte(NormalizeURL(raw) + "\x00" + raw))
	return hex.EncodeToString(sum[:12])
}
