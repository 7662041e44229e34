package demo

import (
	"context"
	"net/http"

	"github.com/baton-gitops/baton/internal/testenv/forge"
)

// Status is a commit status as Gitea shows it.
type Status struct {
	Context     string `json:"context"`
	State       string `json:"status"`
	Description string `json:"description"`
}

// CommitStatus returns the latest status of context on commit of the
// shop repository, or a zero Status when there is none yet.
func CommitStatus(ctx context.Context, g *forge.Forge, commit, context string) (Status, error) {
	var combined struct {
		Statuses []Status `json:"statuses"`
	}
	if err := g.API(ctx, http.MethodGet, "/repos/"+g.User()+"/shop/commits/"+commit+"/status", nil, &combined); err != nil {
		return Status{}, err
	}
	for _, s := range combined.Statuses {
		if s.Context == context {
			return s, nil
		}
	}
	return Status{}, nil
}
