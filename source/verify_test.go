package source

import (
	"errors"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

func TestSignedCommits(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	trusted := gitserver.NewSigningKey(t, "Release Bot", "release@baton.invalid")
	stranger := gitserver.NewSigningKey(t, "Mallory", "mallory@baton.invalid")
	s := httpsSettings(t, srv, "app", "env/dev", "env/prod")
	s.Signatures = &SignatureSettings{KeyringFile: trusted.KeyringFile(t), Branches: []string{"env/prod"}}
	r := openRepo(t, s, Options{})

	// The initial commit is unsigned: env/prod has no good revision, while
	// env/dev (no signature required) does.
	res := mustPoll(t, r)
	prod := branchResult(t, res, "env/prod")
	requireKind(t, prod.Err, ErrSignatureInvalid)
	if prod.Revision != nil {
		t.Fatalf("unsigned head became a revision: %+v", prod.Revision)
	}
	var sigErr *SignatureError
	if !errors.As(prod.Err, &sigErr) || sigErr.Reason != "unsigned" || sigErr.Commit != repo.Head(t, "env/prod") {
		t.Fatalf("signature error %#v", sigErr)
	}
	if !strings.Contains(prod.Err.Error(), sigErr.Commit) {
		t.Errorf("message does not name the commit: %v", prod.Err)
	}
	if branchResult(t, res, "env/dev").Err != nil {
		t.Fatal("env/dev requires no signature")
	}

	signed := repo.Commit(t, "env/prod", gitserver.Change{Write: map[string]string{"v": "1"}, Sign: trusted})
	prod = branchResult(t, mustPoll(t, r), "env/prod")
	if prod.Err != nil || prod.Revision == nil || prod.Revision.Commit != signed {
		t.Fatalf("signed head: %+v", prod)
	}
	if !strings.Contains(prod.Revision.Signer, "Release Bot <release@baton.invalid>") ||
		!strings.Contains(prod.Revision.Signer, trusted.Fingerprint) {
		t.Errorf("signer = %q", prod.Revision.Signer)
	}

	// A head signed by an unknown key is not synced; the error names the
	// key that signed it.
	forged := repo.Commit(t, "env/prod", gitserver.Change{Write: map[string]string{"v": "evil"}, Sign: stranger})
	prod = branchResult(t, mustPoll(t, r), "env/prod")
	requireKind(t, prod.Err, ErrSignatureInvalid)
	if prod.Revision.Commit != signed || prod.Changed {
		t.Fatalf("untrusted head replaced the good revision: %s", prod.Revision.Commit)
	}
	if !errors.As(prod.Err, &sigErr) || sigErr.Commit != forged || !strings.Contains(sigErr.Signer, stranger.Fingerprint) {
		t.Fatalf("signature error %#v, want commit %s signed by %s", sigErr, forged, stranger.Fingerprint)
	}
	// The error stays while the head is untrusted, without refetching.
	srv.ResetCounts()
	prod = branchResult(t, mustPoll(t, r), "env/prod")
	requireKind(t, prod.Err, ErrSignatureInvalid)
	if c := srv.Counts("app"); c.UploadPack != 0 {
		t.Errorf("re-verification fetched: %+v", c)
	}

	// An unsigned commit after a signed one is refused too.
	repo.Commit(t, "env/prod", gitserver.Change{Write: map[string]string{"v": "2"}})
	prod = branchResult(t, mustPoll(t, r), "env/prod")
	if !errors.As(prod.Err, &sigErr) || sigErr.Reason != "unsigned" || prod.Revision.Commit != signed {
		t.Fatalf("unsigned after signed: %+v", prod)
	}
}

func TestMissingKeyringIsASignatureError(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	s := httpsSettings(t, srv, "app", "env/dev")
	s.Signatures = &SignatureSettings{KeyringFile: t.TempDir() + "/absent.asc"}
	r := openRepo(t, s, Options{})
	dev := branchResult(t, mustPoll(t, r), "env/dev")
	requireKind(t, dev.Err, ErrSignatureInvalid)
	if !strings.Contains(dev.Err.Error(), "signatures.keyringFile") {
		t.Errorf("error does not name the setting: %v", dev.Err)
	}
}
