package gitserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ClientKey is an SSH key pair on disk for a test client.
type ClientKey struct {
	// PrivateKeyFile is the OpenSSH private key (mode 0600, as ssh demands).
	PrivateKeyFile string
	// PublicKeyFile is the authorized_keys-format public key.
	PublicKeyFile string
	// Passphrase protects PrivateKeyFile when not empty.
	Passphrase string
	// Public is the parsed public key.
	Public ssh.PublicKey
}

// NewClientKey generates an ed25519 key pair on disk, encrypted with
// passphrase when it is not empty. The server does not accept it until
// AuthorizeKey is called with it.
func NewClientKey(t testing.TB, passphrase string) ClientKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("gitserver: generate client key: %v", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "baton-test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "baton-test", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("gitserver: marshal client key: %v", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("gitserver: client public key: %v", err)
	}
	dir := t.TempDir()
	k := ClientKey{
		PrivateKeyFile: dir + "/id_ed25519",
		PublicKeyFile:  dir + "/id_ed25519.pub",
		Passphrase:     passphrase,
		Public:         sshPub,
	}
	writeAt(t, k.PrivateKeyFile, pem.EncodeToMemory(block), 0o600)
	writeAt(t, k.PublicKeyFile, ssh.MarshalAuthorizedKey(sshPub), 0o644)
	return k
}

// AuthorizedClientKey generates a key pair (see NewClientKey) that the
// server accepts.
func (s *Server) AuthorizedClientKey(t testing.TB, passphrase string) ClientKey {
	t.Helper()
	k := NewClientKey(t, passphrase)
	s.AuthorizeKey(k.Public)
	return k
}

// AuthorizeKey makes the SSH server accept the public key for Server.User.
func (s *Server) AuthorizeKey(pub ssh.PublicKey) { s.ssh.authorize(pub) }

// KnownHostsLine is the known_hosts line of the SSH server's host key.
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{s.ssh.addr}, s.ssh.hostKey.PublicKey())
}

// KnownHostsFile writes a known_hosts file with KnownHostsLine and returns
// its path.
func (s *Server) KnownHostsFile(t testing.TB) string {
	t.Helper()
	return writeFile(t, "known_hosts", []byte(s.KnownHostsLine()+"\n"), 0o644)
}

// WrongKnownHostsFile writes a known_hosts file that names the SSH server's
// address with another ed25519 key, so that a client sees a host key
// mismatch, and returns its path.
func (s *Server) WrongKnownHostsFile(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("gitserver: generate key: %v", err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("gitserver: public key: %v", err)
	}
	line := knownhosts.Line([]string{s.ssh.addr}, other)
	return writeFile(t, "known_hosts", []byte(line+"\n"), 0o644)
}

func newHostKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("gitserver: generate host key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("gitserver: host key signer: %v", err)
	}
	return signer
}
