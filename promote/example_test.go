package promote_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/baton-gitops/baton/promote"
	giteaforge "github.com/baton-gitops/baton/promote/forge/gitea"
	"github.com/baton-gitops/baton/source"
)

// How the agent wires a promoter: its own repository following the
// pipeline's branches, a forge provider, and one Evaluate per edge after
// every sync or health change (on the leader only). The source state is
// plain data converted from the reconciler's and health checker's results.
func Example() {
	pipeline := promote.Pipeline{
		Environments: []promote.Environment{
			{Name: "dev", Branch: "env/dev", Overlay: "overlays/dev"},
			{Name: "staging", Branch: "env/staging", Overlay: "overlays/staging"},
			{Name: "prod", Branch: "env/prod", Overlay: "overlays/prod"},
		},
		Edges: []promote.Edge{
			{From: "dev", To: "staging", Policy: promote.PolicyAuto},
			{From: "staging", To: "prod", Soak: 10 * time.Minute},
		},
	}
	repo, err := source.NewRepository(source.RepositorySettings{
		URL:      "https://git.example.com/acme/deploy.git",
		Branches: pipeline.Branches(),
		Auth:     source.AuthSettings{TokenFile: "/var/run/secrets/baton/git-token"},
	}, source.Options{CacheDir: "/var/cache/baton/promote"})
	if err != nil {
		log.Fatal(err)
	}
	forge, err := giteaforge.New(giteaforge.Options{URL: "https://git.example.com", Owner: "acme", Repo: "deploy",
		TokenFile: "/var/run/secrets/baton/git-token"})
	if err != nil {
		log.Fatal(err)
	}
	p, err := promote.New(promote.Options{
		Pipeline: pipeline, Repo: repo, Forge: forge, CompareURL: forge.CompareURL(),
		Author: source.Signature{Name: "Baton", Email: "baton@acme.example"},
	})
	if err != nil {
		log.Fatal(err)
	}
	staging := promote.SourceState{ /* synced revision, health, from the agent */ }
	out, err := p.Evaluate(context.Background(), promote.Edge{From: "staging", To: "prod"}, staging)
	if err != nil {
		log.Print(err)
		return
	}
	for _, e := range out.Events {
		fmt.Println(e.Kind, e.Message)
	}
}
