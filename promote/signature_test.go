package promote_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/source"
)

// An unsigned commit pushed to a branch that requires signatures is never
// built upon: on an auto edge and on a pull-request edge the promotion is
// blocked with the reason, nothing is pushed, and promotions resume on the
// next signed head. Real git server over HTTPS, real OpenPGP signatures.
func TestPromotionsAreNeverBuiltOnAHeadThatFailsTheSignaturePolicy(t *testing.T) {
	srv := gitserver.Start(t, gitserver.Options{TLS: true})
	repo := srv.CreateRepo(t, "deploy", initialFiles())
	release := gitserver.NewSigningKey(t, "Release Manager", "release@example.invalid")
	batonKey := gitserver.NewSigningKey(t, "Baton", "baton@example.invalid")
	keyring := filepath.Join(t.TempDir(), "keyring.asc")
	if err := os.WriteFile(keyring, []byte(release.ArmoredPublicKey+"\n"+batonKey.ArmoredPublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"env/staging", "env/prod"} {
		repo.Commit(t, b, gitserver.Change{Write: map[string]string{"NOTES.md": "reviewed " + b + "\n"}, Sign: release, Message: "review " + b})
	}
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(srv.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := srv.WriteCABundle(t)
	open := func(branches []string, sig *source.SignatureSettings) *source.Repository {
		r, err := source.NewRepository(source.RepositorySettings{URL: srv.HTTPURL("deploy"), Branches: branches,
			Auth: source.AuthSettings{Username: srv.User, TokenFile: token}, CABundleFile: ca,
			Timeout: source.Duration{Duration: 30 * time.Second}, Signatures: sig}, source.Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	// What the environments are synced at, as their agents see it.
	agents := open(pipeline.Branches(), nil)
	state := func(branch string) promote.SourceState {
		t.Helper()
		res, err := agents.Poll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range res.Branches {
			if b.Branch == branch {
				now := time.Now().Add(-time.Hour)
				return promote.SourceState{Revision: b.Revision, SyncedAt: now, Healthy: true, HealthySince: now}
			}
		}
		t.Fatalf("no %s", branch)
		return promote.SourceState{}
	}
	signer, err := source.OpenPGPSigner(armoredPrivateKey(t, batonKey.Entity), nil)
	if err != nil {
		t.Fatal(err)
	}
	pl := pipeline
	pl.Edges = []promote.Edge{{From: "dev", To: "staging", Policy: promote.PolicyAuto}, {From: "staging", To: "prod"}}
	p, err := promote.New(promote.Options{Pipeline: pl, Author: bot, Signer: signer, Logger: testLogger(t),
		Repo: open(pipeline.Branches(), &source.SignatureSettings{KeyringFile: keyring, Branches: []string{"env/staging", "env/prod"}})})
	if err != nil {
		t.Fatal(err)
	}

	// A signed target head: the promotion builds on it, signed by Baton.
	signedStaging := repo.Head(t, "env/staging")
	repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"apps/config.yaml": "greeting: one\n"}})
	out := mustEvaluate(t, p, devToStaging, state("env/dev"))
	wantResult(t, out, promote.Promoted)
	if parent := repo.Parent(t, out.Commit); parent != signedStaging {
		t.Fatalf("promotion built on %s, want the signed head %s", parent, signedStaging)
	}

	// Somebody pushes an unsigned commit to env/staging. However often
	// dev moves, no promotion is built on it.
	unsigned := repo.Commit(t, "env/staging", gitserver.Change{Write: map[string]string{"apps/extra.yaml": "sneaked: in\n"}, Message: "unsigned change"})
	for i, greeting := range []string{"two", "three"} {
		repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"apps/config.yaml": "greeting: " + greeting + "\n"}})
		out := mustEvaluate(t, p, devToStaging, state("env/dev"))
		wantResult(t, out, promote.Blocked)
		if out.Blocker.Gate != promote.GateSignature || !strings.Contains(out.Blocker.Detail, unsigned) ||
			!strings.Contains(out.Blocker.Detail, "unsigned") || !strings.Contains(out.Blocker.Detail, "env/staging") {
			t.Errorf("evaluation %d: blocker %+v: want the target-signature gate naming env/staging, %s and why", i, out.Blocker, unsigned)
		}
		if head := repo.Head(t, "env/staging"); head != unsigned {
			t.Fatalf("env/staging moved to %s on top of the unsigned commit", head)
		}
	}

	// The same on a pull-request edge: no promotion branch is pushed.
	unsignedProd := repo.Commit(t, "env/prod", gitserver.Change{Write: map[string]string{"apps/extra.yaml": "sneaked: in\n"}, Message: "unsigned change"})
	out = mustEvaluate(t, p, stagingToProd, state("env/staging"))
	wantResult(t, out, promote.Blocked)
	if out.Blocker.Gate != promote.GateSignature || !strings.Contains(out.Blocker.Detail, unsignedProd) {
		t.Errorf("blocker %+v", out.Blocker)
	}
	if out, err := gitserver.TryGit(repo.Path, nil, "rev-parse", "--verify", "-q", "refs/heads/"+promote.PromotionBranch(stagingToProd)); err == nil {
		t.Fatalf("promotion branch pushed at %s on an unsigned target", out)
	}

	// A signed commit on top (the release manager reviewed it): promotions
	// resume on that head.
	reviewed := repo.Commit(t, "env/staging", gitserver.Change{Write: map[string]string{"NOTES.md": "reviewed again\n"}, Sign: release, Message: "review"})
	out = mustEvaluate(t, p, devToStaging, state("env/dev"))
	wantResult(t, out, promote.Promoted)
	if parent := repo.Parent(t, out.Commit); parent != reviewed {
		t.Errorf("promotion built on %s, want the signed head %s", parent, reviewed)
	}
}

func armoredPrivateKey(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
