package agent

import (
	"context"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

// DryRun renders env at rev and asks the cluster, through the reconciler's
// server-side dry run, what a sync of it would do: the request is
// SyncRequest's, so a preview sees the environment's scope, identity and
// ignore rules exactly as its syncs do. `baton diff` and the pull request
// previews both call it. The pass is bounded by the environment's
// timeout. A render failure is the renderer's error, which names the
// overlay, the file and the line: short enough for a commit status.
func DryRun(ctx context.Context, r *render.Renderer, rec *reconciler.Reconciler, env config.Environment, rev *source.Revision) (reconciler.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, env.Timeout.Duration)
	defer cancel()
	rendered, err := r.Render(ctx, rev.Snapshot, env.Path)
	if err != nil {
		return reconciler.Result{}, err
	}
	req := SyncRequest(env, rev.Commit, rendered.Objects)
	req.SourceOf = r.Sources(rev.Snapshot, env.Path)
	return rec.Diff(ctx, req)
}
