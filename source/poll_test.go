package source

import (
	"context"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

func TestHTTPSPollWithTheRightToken(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "team/app", baseFiles)
	metrics := &recordingMetrics{}
	r := openRepo(t, httpsSettings(t, srv, "team/app"), Options{Metrics: metrics})

	res := mustPoll(t, r)
	if !res.Fetched {
		t.Error("first poll fetched nothing")
	}
	for _, b := range envBranches {
		br := branchResult(t, res, b)
		if br.Err != nil {
			t.Fatalf("%s: %v", b, br.Err)
		}
		if br.Revision == nil || br.Revision.Commit != repo.Head(t, b) {
			t.Fatalf("%s: revision %+v, want head %s", b, br.Revision, repo.Head(t, b))
		}
		if !br.Changed || br.Movement != Initial {
			t.Errorf("%s: changed=%v movement=%v, want a changed initial revision", b, br.Changed, br.Movement)
		}
	}
	got, err := branchResult(t, res, "env/dev").Revision.Snapshot.ReadFile("apps/web/deployment.yaml")
	if err != nil || string(got) != "kind: Deployment\n" {
		t.Fatalf("snapshot read: %q, %v", got, err)
	}
	ops := metrics.list()
	if len(ops) < 2 || ops[0] != (observation{"ls-remote", ""}) || ops[1] != (observation{"fetch", ""}) {
		t.Errorf("metrics = %+v, want a good ls-remote then a good fetch", ops)
	}
}

func TestHTTPSPollWithAWrongToken(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	s := httpsSettings(t, srv, "app")
	s.Auth.TokenFile = secretFile(t, "not-the-token-1234")
	r := openRepo(t, s, Options{})

	res, err := r.Poll(context.Background())
	e := requireKind(t, err, ErrAuthFailed)
	if e.Op != "ls-remote" || e.Repository != srv.HTTPURL("app") {
		t.Errorf("error names op %q repository %q", e.Op, e.Repository)
	}
	if strings.Contains(err.Error(), "not-the-token-1234") || strings.Contains(err.Error(), srv.Token) {
		t.Fatalf("error text carries a credential: %v", err)
	}
	for _, b := range res.Branches {
		if b.Revision != nil || b.Err == nil {
			t.Errorf("%s: revision %v err %v, want no revision and an error", b.Branch, b.Revision, b.Err)
		}
	}
	if c := srv.Counts("app"); c.Denied == 0 || c.UploadPack != 0 {
		t.Errorf("server counts %+v: want a denied request and no fetch", c)
	}
}

func TestHTTPSRefusesAnUntrustedCertificate(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	s := httpsSettings(t, srv, "app")
	s.CABundleFile = ""
	r := openRepo(t, s, Options{})
	_, err := r.Poll(context.Background())
	requireKind(t, err, ErrHostKeyMismatch)
}

func TestUnchangedPollIsOneAdvertisementAndNoFetch(t *testing.T) {
	srv := startServer(t)
	srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app"), Options{})
	mustPoll(t, r)

	srv.ResetCounts()
	res := mustPoll(t, r)
	if got := srv.Counts("app"); got != (gitserver.Counts{Advertise: 1}) {
		t.Fatalf("unchanged poll made %+v, want exactly one advertisement", got)
	}
	if res.Fetched {
		t.Error("unchanged poll reports a fetch")
	}
	for _, b := range res.Branches {
		if b.Changed || b.Revision == nil || b.Err != nil || b.Movement != Unchanged {
			t.Errorf("%s: changed=%v movement=%v err=%v", b.Branch, b.Changed, b.Movement, b.Err)
		}
	}
}

func TestNewCommitIsSeenWithinOnePoll(t *testing.T) {
	srv := startServer(t)
	repo := srv.CreateRepo(t, "app", baseFiles)
	r := openRepo(t, httpsSettings(t, srv, "app"), Options{})
	first := branchResult(t, mustPoll(t, r), "env/dev").Revision

	head := repo.Commit(t, "env/dev", gitserver.Change{
		Write:   map[string]string{"apps/web/deployment.yaml": "kind: Deployment\nreplicas: 3\n"},
		Delete:  []string{"README.md"},
		Message: "Scale web\n\nBaton-Promoted-From: env/dev@abc\nReviewed-by: Ada",
	})
	srv.ResetCounts()
	res := mustPoll(t, r)
	if got := srv.Counts("app"); got.Advertise != 1 || got.UploadPack != 1 {
		t.Errorf("changed poll made %+v, want one advertisement and one fetch", got)
	}
	dev := branchResult(t, res, "env/dev")
	if !dev.Changed || dev.Revision.Commit != head || dev.Movement != FastForward || dev.ForcePush != nil {
		t.Fatalf("env/dev: changed=%v commit=%s movement=%v", dev.Changed, dev.Revision.Commit, dev.Movement)
	}
	if dev.Revision.Parents[0] != first.Commit || dev.Revision.Subject() != "Scale web" {
		t.Errorf("revision facts: parents %v subject %q", dev.Revision.Parents, dev.Revision.Subject())
	}
	if v, _ := dev.Revision.Trailer("baton-promoted-from"); v != "env/dev@abc" {
		t.Errorf("trailer = %q", v)
	}
	snap := dev.Revision.Snapshot
	if b, _ := snap.ReadFile("apps/web/deployment.yaml"); string(b) != "kind: Deployment\nreplicas: 3\n" {
		t.Errorf("new content = %q", b)
	}
	if _, err := snap.Stat("README.md"); err == nil {
		t.Error("deleted file still in the snapshot")
	}
	// The first revision's snapshot still reads its own tree.
	if _, err := first.Snapshot.ReadFile("README.md"); err != nil {
		t.Errorf("old snapshot: %v", err)
	}
	for _, b := range []string{"env/staging", "env/prod"} {
		if br := branchResult(t, res, b); br.Changed {
			t.Errorf("%s changed without a commit", b)
		}
	}
}
