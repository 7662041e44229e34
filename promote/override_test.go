package promote_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/source"
)

// signer makes a source.OpenPGPSigner from a test key, as a key file
// would hold it.
func signer(t *testing.T, k *gitserver.SigningKey) source.Signer {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Entity.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	s, err := source.OpenPGPSigner(b.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifiedHead reads branch's head through a repository that requires
// signatures by key, and returns who signed it.
func (f *fixture) verifiedHead(branch string, key *gitserver.SigningKey) (commit, signer string) {
	f.t.Helper()
	r, err := source.NewRepository(source.RepositorySettings{
		URL:        gitea.CloneURL(f.name),
		Branches:   []string{branch},
		Auth:       source.AuthSettings{Username: gitea.User(), TokenFile: f.token},
		Timeout:    source.Duration{Duration: 30 * time.Second},
		Signatures: &source.SignatureSettings{KeyringFile: key.KeyringFile(f.t), Branches: []string{branch}},
	}, source.Options{CacheDir: f.t.TempDir()})
	if err != nil {
		f.t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Poll(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, b := range res.Branches {
		if b.Branch == branch {
			if b.Err != nil || b.Revision == nil {
				f.t.Fatalf("%s did not verify: %v", branch, b.Err)
			}
			return b.Revision.Commit, b.Revision.Signer
		}
	}
	f.t.Fatalf("no result for %s", branch)
	return "", ""
}

func TestPromotionCommitIsSigned(t *testing.T) {
	f := newFixture(t)
	key := gitserver.NewSigningKey(t, "Baton", "baton@example.invalid")
	f.commit("env/dev", "dev change", devChange())
	p := f.promoter(func(o *promote.Options) {
		o.Pipeline.Edges = []promote.Edge{{From: "dev", To: "staging", Policy: promote.PolicyAuto}, {From: "staging", To: "prod"}}
		o.Signer = signer(t, key)
	})
	out := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, out, promote.Promoted)
	head, who := f.verifiedHead("env/staging", key)
	if head != out.Commit || !strings.Contains(who, key.Fingerprint) {
		t.Fatalf("env/staging at %s signed by %q, want the promotion %s signed by %s", head, who, out.Commit, key.Fingerprint)
	}
}

func TestOverridePromotesBeforeTheSoak(t *testing.T) {
	f := newFixture(t)
	c := f.commit("env/dev", "dev change", devChange())
	p := f.promoter(func(o *promote.Options) {
		o.Pipeline.Edges = []promote.Edge{{From: "dev", To: "staging", Policy: promote.PolicyAuto}, {From: "staging", To: "prod"}}
	})
	st := f.healthy("env/dev") // the soak has just begun
	wantResult(t, mustEvaluate(t, p, devToStaging, st), promote.Blocked)

	override := &promote.Override{By: "Ada <ada@example.invalid>", Reason: "hotfix for INC-42"}
	// A freeze still blocks an override.
	frozen := st
	frozen.Frozen, frozen.FrozenReason, frozen.Override = true, "maintenance", override
	wantResult(t, mustEvaluate(t, p, devToStaging, frozen), promote.Frozen)

	// Without a reason, nothing is written.
	st.Override = &promote.Override{By: "Ada"}
	if _, err := p.Evaluate(t.Context(), devToStaging, st); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("override without a reason: %v", err)
	}
	st.Override = override
	out := mustEvaluate(t, p, devToStaging, st)
	wantResult(t, out, promote.Promoted)
	if got := f.log("-1", "--format=%(trailers:key="+promote.TrailerGatesOverridden+",valueonly)", out.Commit); got !=
		"Ada <ada@example.invalid>: hotfix for INC-42" {
		t.Errorf("override trailer %q", got)
	}
	if got := f.log("-1", "--format=%(trailers:key="+promote.TrailerPromotedFrom+",valueonly)", out.Commit); got != "dev@"+c {
		t.Errorf("promoted-from trailer %q", got)
	}
	// The freeze above ends with an unfrozen event; the promotion's comes last.
	if n := len(out.Events); n == 0 || out.Events[n-1].Kind != promote.EventPromoted ||
		!strings.Contains(out.Events[n-1].Message, "gates overridden by Ada <ada@example.invalid>: hotfix for INC-42") {
		t.Errorf("promotion event %+v does not say the gates were overridden", out.Events)
	}
	if got := f.branchHead("env/staging"); got != out.Commit {
		t.Errorf("env/staging at %s, want %s", got, out.Commit)
	}
}
