package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Defaults for the zero values of RepositorySettings.
const (
	DefaultInterval = time.Minute
	DefaultTimeout  = time.Minute
	// DefaultUsername is the HTTPS user sent with a token when
	// auth.username is empty; GitHub, GitLab and Gitea accept any name with
	// a token.
	DefaultUsername = "git"
)

// RepositorySettings is one git repository to follow, as the configuration
// file spells it (YAML through sigs.k8s.io/yaml, hence the json tags).
type RepositorySettings struct {
	// URL is https://..., ssh://..., user@host:path or file:///path. It must
	// not carry a password: credentials come from Auth.
	URL string `json:"url"`
	// Branches are the branches to follow, e.g. env/dev. At least one.
	Branches []string `json:"branches"`
	// Auth holds the credentials; the zero value means anonymous HTTPS.
	Auth AuthSettings `json:"auth,omitempty"`
	// Interval between polls; zero means DefaultInterval.
	Interval Duration `json:"interval,omitempty"`
	// Timeout bounds one git operation (listing, fetching, pushing); zero
	// means DefaultTimeout.
	Timeout Duration `json:"timeout,omitempty"`
	// CABundleFile is a PEM file of extra CAs trusted for HTTPS, added to
	// the system pool. Empty means the system pool only.
	CABundleFile string `json:"caBundleFile,omitempty"`
	// InsecureSkipHostKeyCheck accepts any SSH host key. Dangerous: anyone
	// on the path can impersonate the server and feed it manifests. A
	// warning is logged at every fetch while it is set.
	InsecureSkipHostKeyCheck bool `json:"insecureSkipHostKeyCheck,omitempty"`
	// Signatures, when set, requires signed head commits on some branches.
	Signatures *SignatureSettings `json:"signatures,omitempty"`
}

// AuthSettings names files (mounted Secrets) that hold credentials. Files
// are read at every operation, so a rotated Secret is picked up without a
// restart. Trailing newlines are ignored.
type AuthSettings struct {
	// Username for HTTPS; empty means DefaultUsername.
	Username string `json:"username,omitempty"`
	// PasswordFile holds an HTTPS basic-auth password.
	PasswordFile string `json:"passwordFile,omitempty"`
	// TokenFile holds an HTTPS access token, sent as the basic-auth
	// password. Set PasswordFile or TokenFile, not both.
	TokenFile string `json:"tokenFile,omitempty"`
	// SSHKeyFile holds a private key (OpenSSH or PEM) for ssh URLs.
	SSHKeyFile string `json:"sshKeyFile,omitempty"`
	// SSHPassphraseFile holds the passphrase of SSHKeyFile, if it has one.
	SSHPassphraseFile string `json:"sshPassphraseFile,omitempty"`
	// KnownHostsFile lists the trusted SSH host keys (known_hosts format).
	// Required for ssh URLs unless InsecureSkipHostKeyCheck is set.
	KnownHostsFile string `json:"knownHostsFile,omitempty"`
}

// SignatureSettings turns on signed-commit verification.
type SignatureSettings struct {
	// KeyringFile is an ASCII-armored OpenPGP keyring of trusted signers.
	KeyringFile string `json:"keyringFile"`
	// Branches that require a trusted signature on their head; empty means
	// every followed branch.
	Branches []string `json:"branches,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("30s",
// "5m") in configuration files.
type Duration struct {
	time.Duration
}

// MarshalJSON writes the duration as a string such as "1m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.Duration.String())
}

// UnmarshalJSON reads a duration string such as "30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// withDefaults fills the zero values.
func (s RepositorySettings) withDefaults() RepositorySettings {
	if s.Interval.Duration == 0 {
		s.Interval.Duration = DefaultInterval
	}
	if s.Timeout.Duration == 0 {
		s.Timeout.Duration = DefaultTimeout
	}
	if s.Auth.Username == "" {
		s.Auth.Username = DefaultUsername
	}
	return s
}

// Validate checks the settings and names the faulty field. It does not
// touch the files the settings name; they are read at each operation.
func (s RepositorySettings) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	ep, err := parseURL(s.URL)
	if err != nil {
		add("url", "%v", err)
	}
	if len(s.Branches) == 0 {
		add("branches", "at least one branch is required")
	}
	seen := map[string]bool{}
	for i, b := range s.Branches {
		field := fmt.Sprintf("branches[%d]", i)
		if err := ValidBranch(b); err != nil {
			add(field, "%v", err)
		} else if seen[b] {
			add(field, "%q is listed twice", b)
		}
		seen[b] = true
	}
	if s.Interval.Duration < 0 {
		add("interval", "must not be negative")
	}
	if s.Timeout.Duration < 0 {
		add("timeout", "must not be negative")
	}
	a := s.Auth
	if a.PasswordFile != "" && a.TokenFile != "" {
		add("auth", "set passwordFile or tokenFile, not both")
	}
	if ep != nil {
		switch ep.kind {
		case kindSSH:
			if a.SSHKeyFile == "" {
				add("auth.sshKeyFile", "required for ssh URLs")
			}
			if a.KnownHostsFile == "" && !s.InsecureSkipHostKeyCheck {
				add("auth.knownHostsFile", "required for ssh URLs (or set insecureSkipHostKeyCheck)")
			}
			if a.PasswordFile != "" || a.TokenFile != "" {
				add("auth", "passwordFile and tokenFile apply to https URLs, not ssh")
			}
		case kindHTTP:
			if a.SSHKeyFile != "" || a.KnownHostsFile != "" {
				add("auth", "sshKeyFile and knownHostsFile apply to ssh URLs, not https")
			}
		}
		if s.CABundleFile != "" && ep.kind != kindHTTP {
			add("caBundleFile", "applies to https URLs only")
		}
	}
	if a.SSHPassphraseFile != "" && a.SSHKeyFile == "" {
		add("auth.sshPassphraseFile", "set without auth.sshKeyFile")
	}
	if sig := s.Signatures; sig != nil {
		if sig.KeyringFile == "" {
			add("signatures.keyringFile", "required when signatures is set")
		}
		for i, b := range sig.Branches {
			if !seen[b] {
				add(fmt.Sprintf("signatures.branches[%d]", i), "%q is not a followed branch", b)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("repository %s: %w", redactURL(s.URL), errors.Join(errs...))
	}
	return nil
}

// ValidBranch checks a branch name as Baton takes it everywhere (followed
// branches, pushes, pipeline environments): a name a git reference can
// have, given without refs/heads/ (which would otherwise name
// refs/heads/refs/heads/...).
func ValidBranch(b string) error {
	switch {
	case strings.HasPrefix(b, "refs/"):
		return fmt.Errorf("%q: give the branch name without refs/heads/", b)
	case b == "" || plumbing.NewBranchReferenceName(b).Validate() != nil:
		return fmt.Errorf("%q is not a valid branch name", b)
	}
	return nil
}

// requiresSignature reports whether branch must have a signed head.
func (s RepositorySettings) requiresSignature(branch string) bool {
	if s.Signatures == nil {
		return false
	}
	if len(s.Signatures.Branches) == 0 {
		return true
	}
	for _, b := range s.Signatures.Branches {
		if b == branch {
			return true
		}
	}
	return false
}
