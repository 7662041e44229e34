package gitserver

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// SigningKey is an OpenPGP key generated in Go for signing test commits.
//
// When the gpg binary exists, commits are signed by the real git CLI
// (`git commit -S`) through gpg with the key imported into a private
// GNUPGHOME, which is what users do. Without gpg, go-git's commit signing
// (CommitOptions.SignKey) makes the same kind of signature.
type SigningKey struct {
	// Entity holds the private key.
	Entity *openpgp.Entity
	// ArmoredPublicKey is the public key, ASCII-armored: a keyring of one.
	ArmoredPublicKey string
	// Fingerprint is the primary key's fingerprint in upper-case hex.
	Fingerprint string
	// Name and Email are the key's user identity.
	Name, Email string

	once      sync.Once // prepares gnupgHome
	gnupgHome string
	gpgErr    error
}

// NewSigningKey generates an ed25519 (v4, as gpg 2.2 reads) signing key.
func NewSigningKey(t testing.TB, name, email string) *SigningKey {
	t.Helper()
	cfg := &packet.Config{
		Algorithm:   packet.PubKeyAlgoEdDSA,
		Curve:       packet.Curve25519,
		DefaultHash: crypto.SHA256,
	}
	e, err := openpgp.NewEntity(name, "", email, cfg)
	if err != nil {
		t.Fatalf("gitserver: generate OpenPGP key: %v", err)
	}
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatalf("gitserver: armor: %v", err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatalf("gitserver: serialize public key: %v", err)
	}
	_ = w.Close()
	return &SigningKey{
		Entity:           e,
		ArmoredPublicKey: pub.String(),
		Fingerprint:      strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)),
		Name:             name,
		Email:            email,
	}
}

// KeyringFile writes the armored public key to a file and returns its path.
func (k *SigningKey) KeyringFile(t testing.TB) string {
	t.Helper()
	return writeFile(t, "keyring.asc", []byte(k.ArmoredPublicKey), 0o644)
}

// commit commits the staged changes in the clone at work, signed.
func (k *SigningKey) commit(t testing.TB, work, msg string) {
	t.Helper()
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		k.commitWithGoGit(t, work, msg)
		return
	}
	home := k.gpgHome(t, gpg)
	RunGit(t, work, []string{"GNUPGHOME=" + home},
		"-c", "gpg.program="+gpg, "-c", "user.signingkey="+k.Fingerprint,
		"commit", "-q", "--allow-empty", "-S", "-m", msg)
}

// gpgHome imports the private key into a GNUPGHOME of its own, once. The
// folder is short (gpg-agent's socket path has a length limit) and removed,
// after stopping the agent that gpg starts, when the test ends.
func (k *SigningKey) gpgHome(t testing.TB, gpg string) string {
	t.Helper()
	k.once.Do(func() {
		home, err := os.MkdirTemp("", "gpg")
		if err != nil {
			k.gpgErr = err
			return
		}
		k.gnupgHome = home
		t.Cleanup(func() {
			kill := exec.Command("gpgconf", "--kill", "all")
			kill.Env = append(os.Environ(), "GNUPGHOME="+home)
			_ = kill.Run()
			_ = os.RemoveAll(home)
		})
		var sec bytes.Buffer
		w, err := armor.Encode(&sec, openpgp.PrivateKeyType, nil)
		if err != nil {
			k.gpgErr = err
			return
		}
		if err := k.Entity.SerializePrivate(w, nil); err != nil {
			k.gpgErr = err
			return
		}
		_ = w.Close()
		cmd := exec.Command(gpg, "--batch", "--quiet", "--import")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		cmd.Stdin = &sec
		if out, err := cmd.CombinedOutput(); err != nil {
			k.gpgErr = &gitError{err: err, stderr: string(out)}
		}
	})
	if k.gpgErr != nil {
		t.Fatalf("gitserver: gpg import: %v", k.gpgErr)
	}
	return k.gnupgHome
}

// commitWithGoGit signs with go-git when gpg is missing. The changes are
// already staged by `git add -A`, and go-git reads the same index.
func (k *SigningKey) commitWithGoGit(t testing.TB, work, msg string) {
	t.Helper()
	repo, err := git.PlainOpen(work)
	if err != nil {
		t.Fatalf("gitserver: open %s: %v", work, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatalf("gitserver: worktree: %v", err)
	}
	sig := &object.Signature{Name: "Baton Test", Email: "test@baton.invalid", When: time.Now()}
	if _, err := wt.Commit(msg, &git.CommitOptions{
		Author: sig, Committer: sig, SignKey: k.Entity, AllowEmptyCommits: true,
	}); err != nil {
		t.Fatalf("gitserver: signed commit: %v", err)
	}
}
