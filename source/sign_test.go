package source

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// armoredPrivateKey exports a test key as a key file holds it, encrypted
// with passphrase when one is given.
func armoredPrivateKey(t *testing.T, k *gitserver.SigningKey, passphrase []byte) []byte {
	t.Helper()
	// A fresh copy: encrypting must not touch the caller's entity.
	var raw bytes.Buffer
	if err := k.Entity.SerializePrivate(&raw, nil); err != nil {
		t.Fatal(err)
	}
	list, err := openpgp.ReadKeyRing(&raw)
	if err != nil || len(list) != 1 {
		t.Fatalf("read back the key: %v (%d keys)", err, len(list))
	}
	e := list[0]
	if passphrase != nil {
		if err := e.EncryptPrivateKeys(passphrase, nil); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	return out.Bytes()
}

func TestSignedCommitVerifies(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	key := gitserver.NewSigningKey(t, "Promotion Bot", "bot@baton.invalid")
	passphrase := []byte("correct horse")
	signer, err := OpenPGPSigner(armoredPrivateKey(t, key, passphrase), passphrase)
	if err != nil {
		t.Fatal(err)
	}
	w := openRepo(t, httpsSettings(t, srv, "app", "env/prod"), Options{})
	prod := branchResult(t, mustPoll(t, w), "env/prod").Revision
	ctx := context.Background()
	commit, err := w.Commit(ctx, CommitRequest{Branch: "env/prod", Parent: prod.Commit,
		Files: map[string][]byte{"v": []byte("1")}, Author: promoter, Message: "signed by the bot\n", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Push(ctx, PushRequest{Branch: "env/prod", Commit: commit, ExpectedOld: prod.Commit}); err != nil {
		t.Fatal(err)
	}

	// A follower that requires signatures from the key syncs the commit.
	s := httpsSettings(t, srv, "app", "env/prod")
	s.Signatures = &SignatureSettings{KeyringFile: key.KeyringFile(t), Branches: []string{"env/prod"}}
	got := branchResult(t, mustPoll(t, openRepo(t, s, Options{})), "env/prod")
	if got.Err != nil || got.Revision == nil || got.Revision.Commit != commit {
		t.Fatalf("signed commit not verified: %+v", got)
	}
	if !strings.Contains(got.Revision.Signer, key.Fingerprint) {
		t.Errorf("signer = %q, want the key %s", got.Revision.Signer, key.Fingerprint)
	}

	// The real git agrees, when gpg is installed.
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Log("gpg not installed: git verify-commit skipped")
		return
	}
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "all")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		_ = kill.Run()
		_ = os.RemoveAll(home)
	})
	imp := exec.Command(gpg, "--batch", "--quiet", "--import")
	imp.Env = append(os.Environ(), "GNUPGHOME="+home)
	imp.Stdin = strings.NewReader(key.ArmoredPublicKey)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("gpg import: %v: %s", err, out)
	}
	gitserver.RunGit(t, repo.Path, []string{"GNUPGHOME=" + home}, "-c", "gpg.program="+gpg, "verify-commit", commit)
}

func TestOpenPGPSignerRejectsUnusableKeys(t *testing.T) {
	key := gitserver.NewSigningKey(t, "Promotion Bot", "bot@baton.invalid")
	for name, tc := range map[string]struct {
		key, passphrase []byte
		want            string
	}{
		"not a key":          {[]byte("hello"), nil, "read OpenPGP key"},
		"public key only":    {[]byte(key.ArmoredPublicKey), nil, "no private key"},
		"missing passphrase": {armoredPrivateKey(t, key, []byte("secret")), nil, "no passphrase"},
		"wrong passphrase":   {armoredPrivateKey(t, key, []byte("secret")), []byte("guess"), "decrypt"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := OpenPGPSigner(tc.key, tc.passphrase)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
