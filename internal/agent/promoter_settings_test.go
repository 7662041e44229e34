package agent

import (
	"slices"
	"testing"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/source"
)

// The promoter's store keeps the repository's signature policy on the
// environment branches it builds on, and never on Baton's own promotion
// and revert branches.
func TestPromoterSettingsKeepTheSignaturePolicyOfEnvironmentBranches(t *testing.T) {
	pl := promote.Pipeline{Environments: []promote.Environment{
		{Name: "dev", Branch: "env/dev"}, {Name: "staging", Branch: "env/staging"}, {Name: "prod", Branch: "env/prod"}}}
	repo := func(branches ...string) config.Repository {
		r := config.Repository{Name: "deploy"}
		r.URL = "https://git.example/deploy.git"
		if branches != nil {
			r.Signatures = &source.SignatureSettings{KeyringFile: "/k", Branches: branches}
		}
		return r
	}
	for name, tc := range map[string]struct {
		repo config.Repository
		want []string
	}{
		"every branch":   {repo([]string{}...), []string{"env/dev", "env/staging", "env/prod"}},
		"prod only":      {repo("env/prod"), []string{"env/prod"}},
		"no policy":      {repo(), nil},
		"other branches": {repo("main"), nil},
	} {
		var envBranches []string
		for _, e := range pl.Environments {
			envBranches = append(envBranches, e.Branch)
		}
		s := promoterSettings(tc.repo, pl.Branches(), envBranches)
		if !slices.Contains(s.Branches, promote.PromotionBranch(promote.Edge{From: "staging", To: "prod"})) {
			t.Errorf("%s: the store does not follow the promotion branch: %v", name, s.Branches)
		}
		var got []string
		if s.Signatures != nil {
			got = s.Signatures.Branches
			if s.Signatures.KeyringFile != "/k" {
				t.Errorf("%s: keyring %q", name, s.Signatures.KeyringFile)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: signature policy on %v, want %v", name, got, tc.want)
		}
	}
}
