package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/reconciler/inventory"
	"github.com/baton-gitops/baton/source"
)

// historyEntry is one thing that happened to an environment.
type historyEntry struct {
	Time time.Time `json:"time"`
	// What: commit, set-image, promotion, revert, hold, sync, sync-failed,
	// degraded, recovered, promoted, frozen, held, suspend, resume,
	// sync-request, rollback, drifted, pruned.
	What     string `json:"what"`
	Revision string `json:"revision,omitempty"`
	Who      string `json:"who,omitempty"`
	Detail   string `json:"detail"`
	// Source is "git" or "event".
	Source string `json:"source"`
}

// eventKinds names the Events the agent and the CLI record.
var eventKinds = map[string]string{
	"Synced": "sync", "SyncFailed": "sync-failed", "Drifted": "drifted", "Pruned": "pruned",
	"HealthDegraded": "degraded", "Recovered": "recovered", "Promoted": "promoted",
	"PromotionFrozen": "frozen", "PromotionHeld": "held", "PromotionFailed": "promotion-failed",
	reasonSuspendRequested: "suspend", reasonResumeRequested: "resume", reasonSyncRequested: "sync-request",
	reasonRollbackRequested: "rollback",
}

func (c *cli) historyCommand() *cobra.Command {
	var envName, format string
	var since time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "history --env NAME [--since DURATION] [--limit N] [-o table|json|yaml]",
		Short: "what happened to an environment, newest first: commits, promotions, reverts, holds, syncs, freezes",
		Long: "Merges two records, newest first:\n" +
			"  - git: the environment branch's commits, told apart by Baton's trailers: promotions\n" +
			"    (Baton-Promoted-From), reverts (and the holds a reverted promotion sets), set-image\n" +
			"    bumps, merged pull requests, other commits;\n" +
			"  - Events on the environment's object in the cluster, when one is reachable: syncs, sync\n" +
			"    failures, health, drift, promotions out of it, freezes, holds, and who suspended,\n" +
			"    resumed, synced or rolled it back. The API server keeps Events for a while only (an\n" +
			"    hour by default); git keeps the rest.",
		Example: "baton history --env prod\nbaton history --env staging --since 72h -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatTable, formatJSON, formatYAML); err != nil {
				return err
			}
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			env, err := environment(cfg, envName)
			if err != nil {
				return err
			}
			entries, err := gitHistory(cmd.Context(), cfg, env, since)
			if err != nil {
				return err
			}
			if s, err := c.session(cmd); err == nil {
				evs, err := eventHistory(cmd.Context(), s, env.Name)
				if err != nil {
					fmt.Fprintf(c.stderr, "warning: events of %s: %v\n", env.Name, err)
				}
				entries = append(entries, evs...)
			} else {
				fmt.Fprintf(c.stderr, "note: no cluster (%v): git history only\n", err)
			}
			// Newest first; git before events at the same second, each in
			// its own order.
			sort.SliceStable(entries, func(i, j int) bool { return entries[i].Time.After(entries[j].Time) })
			if limit > 0 && len(entries) > limit {
				entries = entries[:limit]
			}
			switch format {
			case formatJSON:
				return writeJSON(c.stdout, entries)
			case formatYAML:
				return writeYAML(c.stdout, entries)
			}
			var rows [][]string
			for _, e := range entries {
				rows = append(rows, []string{e.Time.UTC().Format(time.RFC3339), e.What, dash(githash.Short(e.Revision)), dash(e.Who), e.Detail})
			}
			return table(c.stdout, []string{"TIME", "WHAT", "REVISION", "WHO", "DETAIL"}, rows)
		},
	}
	c.envFlag(cmd, &envName, "environment name (required)")
	cmd.Flags().DurationVar(&since, "since", 30*24*time.Hour, "how far back git history is read")
	cmd.Flags().IntVar(&limit, "limit", 0, "print at most N entries (0: all)")
	outputFlag(cmd, &format, formatTable, formatTable, formatJSON, formatYAML)
	return cmd
}

// gitHistory classifies the commits of env's branch, newest first.
func gitHistory(ctx context.Context, cfg *config.Config, env *config.Environment, since time.Duration) ([]historyEntry, error) {
	repo, head, err := openBranch(ctx, cfg, env, env.Branch)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	log, err := repo.Log(ctx, source.LogRequest{Commit: head.Commit, Since: time.Now().Add(-since)})
	if err != nil {
		return nil, err
	}
	index := map[string]*source.Revision{}
	for _, r := range log {
		index[r.Commit] = r
	}
	// promotionOf names the promotion a commit brought: itself, or the
	// promotion commit of a merged pull request.
	promotionOf := func(r *source.Revision) (string, bool) {
		for _, c := range append([]*source.Revision{r}, mergedOf(r, index)...) {
			if v, ok := c.Trailer(promote.TrailerPromotedFrom); ok {
				return strings.TrimSpace(v), true
			}
		}
		return "", false
	}
	var out []historyEntry
	for _, r := range log {
		e := historyEntry{Time: r.Time, Revision: r.Commit, Who: r.Author.Name, Source: "git", What: "commit", Detail: r.Subject()}
		reverted := r.Reverts()
		for _, c := range mergedOf(r, index) {
			reverted = append(reverted, c.Reverts()...)
		}
		switch {
		case len(reverted) > 0:
			e.What = "revert"
			var held []string
			for _, c := range reverted {
				if x := index[c]; x != nil {
					if from, ok := promotionOf(x); ok {
						held = append(held, from)
					}
				}
			}
			if len(held) > 0 {
				e.What = "hold"
				e.Detail += " (reverts the promotion of " + strings.Join(held, ", ") + ": held, only newer content is promoted)"
			}
			if why, ok := r.Trailer(promote.TrailerRevertReason); ok {
				e.Detail += "; " + strings.TrimSpace(why)
			}
		default:
			if from, ok := promotionOf(r); ok {
				e.What, e.Detail = "promotion", "from "+from+": "+r.Subject()
				if v, ok := r.Trailer(promote.TrailerGatesOverridden); ok {
					e.Detail += " (gates overridden by " + v + ")"
				}
			} else if _, ok := r.Trailer("Baton-Set-Image"); ok {
				e.What = "set-image"
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// mergedOf returns the commits a merge brought in (its other parents).
func mergedOf(r *source.Revision, index map[string]*source.Revision) []*source.Revision {
	var out []*source.Revision
	for i, p := range r.Parents {
		if i > 0 && index[p] != nil {
			out = append(out, index[p])
		}
	}
	return out
}

// eventHistory lists the Events on env's Environment object and, for
// older agents or a cluster without the resource, on its inventory.
func eventHistory(ctx context.Context, s *session, env string) ([]historyEntry, error) {
	ns := s.objects.Namespace()
	var out []historyEntry
	for _, sel := range []string{
		"involvedObject.kind=" + envobject.Kind + ",involvedObject.name=" + env,
		"involvedObject.kind=ConfigMap,involvedObject.name=" + inventory.ConfigMapName(env),
	} {
		list, err := s.core.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return out, err
		}
		for _, ev := range list.Items {
			out = append(out, eventEntry(ev))
		}
	}
	return out, nil
}

func eventEntry(ev corev1.Event) historyEntry {
	t := ev.LastTimestamp.Time
	if t.IsZero() {
		t = ev.EventTime.Time
	}
	if t.IsZero() {
		t = ev.CreationTimestamp.Time
	}
	what := eventKinds[ev.Reason]
	if what == "" {
		what = strings.ToLower(ev.Reason)
	}
	e := historyEntry{Time: t, What: what, Revision: ev.Annotations["baton.dev/revision"], Who: ev.Annotations["baton.dev/author"],
		Detail: ev.Message, Source: "event"}
	if ev.Count > 1 {
		e.Detail += fmt.Sprintf(" (%d times)", ev.Count)
	}
	if ev.Source.Component == envobject.FieldManagerCLI {
		e.Who = ""
	}
	return e
}
