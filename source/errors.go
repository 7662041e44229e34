package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// The kinds of failure callers and metrics tell apart. Every error the
// package returns for a git operation is an *Error whose Kind is one of
// these (or nil for other failures); errors.Is(err, ErrAuthFailed) works
// through any wrapping.
var (
	// ErrAuthFailed: the remote refused the credentials, or they could not
	// be read (missing file, wrong SSH key passphrase).
	ErrAuthFailed = errors.New("authentication failed")
	// ErrHostKeyMismatch: the server's identity is not the trusted one: an
	// SSH host key that is unknown or differs from known_hosts, or a TLS
	// certificate that the CA bundle does not vouch for.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrUnreachable: the remote could not be reached or answered as no git
	// repository.
	ErrUnreachable = errors.New("remote unreachable")
	// ErrBranchMissing: the followed branch does not exist on the remote.
	ErrBranchMissing = errors.New("branch missing")
	// ErrSignatureInvalid: the head commit is unsigned or its signature does
	// not verify against the keyring.
	ErrSignatureInvalid = errors.New("signature invalid")
	// ErrTimeout: the operation did not finish within its timeout.
	ErrTimeout = errors.New("timeout")
	// ErrLeaseLost: a push found the remote branch at another commit than
	// the expected one; somebody else moved it first.
	ErrLeaseLost = errors.New("lease lost")
)

// Error is a failed git operation on a repository and (when it concerns
// one) a branch. Its message names the repository without credentials.
type Error struct {
	// Op is the operation: "ls-remote", "fetch", "verify", "commit", "push".
	Op string
	// Repository is the remote URL without credentials.
	Repository string
	// Branch is the branch concerned, or empty.
	Branch string
	// Kind is one of the Err* kinds above, or nil.
	Kind error
	// Err is the cause, with any credential removed from its text.
	Err error
}

func (e *Error) Error() string {
	subject := e.Repository
	if e.Branch != "" {
		subject += "@" + e.Branch
	}
	var b strings.Builder
	b.WriteString(e.Op + " " + subject)
	if e.Kind != nil {
		b.WriteString(": " + e.Kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the kind and the cause, so that errors.Is and errors.As
// see both.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// SignatureError details a head commit that failed verification.
type SignatureError struct {
	// Commit is the commit hash.
	Commit string
	// Signer names the key that signed it (key ID or fingerprint, with the
	// user identity when the keyring knows it), or is empty when unsigned.
	Signer string
	// Reason says what is wrong: "unsigned", "unknown key", "bad signature".
	Reason string
}

func (e *SignatureError) Error() string {
	if e.Signer == "" {
		return fmt.Sprintf("commit %s: %s", e.Commit, e.Reason)
	}
	return fmt.Sprintf("commit %s signed by %s: %s", e.Commit, e.Signer, e.Reason)
}

// KindName names the kind of err for metrics labels: "auth", "host_key",
// "unreachable", "branch_missing", "signature", "timeout", "lease_lost",
// "too_large", "other", or "" when err is nil.
func KindName(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrAuthFailed):
		return "auth"
	case errors.Is(err, ErrHostKeyMismatch):
		return "host_key"
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ErrBranchMissing):
		return "branch_missing"
	case errors.Is(err, ErrSignatureInvalid):
		return "signature"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrLeaseLost):
		return "lease_lost"
	case errors.Is(err, ErrBlobTooLarge):
		return "too_large"
	}
	return "other"
}

// classify picks the kind of a transport failure. hostKeyFailed is set by
// our SSH host key callback, which is more reliable than reading the
// message. ctx tells a timeout from other cancellations.
func classify(ctx context.Context, err error, hostKeyFailed bool) error {
	if hostKeyFailed {
		return ErrHostKeyMismatch
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	for _, e := range chain(err) {
		switch {
		case errors.Is(e, ErrAuthFailed), errors.Is(e, ErrHostKeyMismatch),
			errors.Is(e, ErrUnreachable), errors.Is(e, ErrTimeout):
			return kindOf(e)
		case errors.Is(e, ErrBlobTooLarge):
			return ErrBlobTooLarge
		case errors.Is(e, transport.ErrAuthenticationRequired),
			errors.Is(e, transport.ErrAuthorizationFailed),
			errors.Is(e, transport.ErrInvalidAuthMethod):
			return ErrAuthFailed
		case errors.Is(e, context.DeadlineExceeded), errors.Is(e, os.ErrDeadlineExceeded):
			return ErrTimeout
		}
		var netErr net.Error
		if errors.As(e, &netErr) && netErr.Timeout() {
			return ErrTimeout
		}
		var certErr *tls.CertificateVerificationError
		var unknownCA x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		if errors.As(e, &certErr) || errors.As(e, &unknownCA) || errors.As(e, &hostErr) {
			return ErrHostKeyMismatch
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to authenticate"), strings.Contains(msg, "no supported methods remain"):
		return ErrAuthFailed
	case strings.Contains(msg, "x509: "), strings.Contains(msg, "tls: failed to verify"):
		return ErrHostKeyMismatch
	}
	return ErrUnreachable
}

func kindOf(err error) error {
	for _, k := range []error{ErrAuthFailed, ErrHostKeyMismatch, ErrUnreachable, ErrTimeout} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// chain lists err and its causes. go-git's Unexpected and Permanent errors
// hold a cause without an Unwrap method, so they are opened here.
func chain(err error) []error {
	var out []error
	queue := []error{err}
	for len(queue) > 0 && len(out) < 32 {
		e := queue[0]
		queue = queue[1:]
		if e == nil {
			continue
		}
		out = append(out, e)
		switch x := e.(type) {
		case *plumbing.UnexpectedError:
			queue = append(queue, x.Err)
		case *plumbing.PermanentError:
			queue = append(queue, x.Err)
		case interface{ Unwrap() error }:
			queue = append(queue, x.Unwrap())
		case interface{ Unwrap() []error }:
			queue = append(queue, x.Unwrap()...)
		}
	}
	return out
}

// redactor removes secrets from error text. Go-git errors can quote server
// answers and URLs; a secret must never reach a log through them.
type redactor []string

func (r redactor) error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range r {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return errors.New(msg)
}
