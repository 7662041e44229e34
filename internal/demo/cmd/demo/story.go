package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/demo"
	"github.com/baton-gitops/baton/internal/testenv/forge"
)

// step bounds each wait of the story.
const step = 2 * time.Minute

// story tells the demo's story as a timeline: the same steps as the
// end-to-end test (internal/e2e), narrated instead of asserted.
type story struct {
	out        io.Writer
	start      time.Time
	clone      *demo.Clone
	gitea      *forge.Forge
	agents     map[string]*demo.Agent
	baton      string // the CLI binary
	config     string // a configuration for the CLI
	kubeconfig string
	cacheHome  string
}

// say prints one line of the timeline.
func (s *story) say(env, what, rev string) {
	now := time.Now()
	if len(rev) > 7 {
		rev = rev[:7]
	}
	fmt.Fprintf(s.out, "%s  +%5.1fs  %-8s %-60s %s\n", now.Format("15:04:05"), now.Sub(s.start).Seconds(), env, what, rev)
}

func (s *story) chapter(title string) { fmt.Fprintf(s.out, "\n-- %s\n", title) }

func (s *story) wait(ctx context.Context, what string, cond func() bool) error {
	return demo.Wait(ctx, step, what, cond)
}

// healthy waits for env synced and healthy at commit and says so.
func (s *story) healthy(ctx context.Context, env, commit, what string) error {
	a := s.agents[env]
	if err := s.wait(ctx, env+" synced and healthy", func() bool { return a.SyncedHealthy(commit) }); err != nil {
		return err
	}
	s.say(env, what, commit)
	return nil
}

func (s *story) run(ctx context.Context) error {
	fmt.Fprintf(s.out, "%-8s  %-7s  %-8s %-60s %s\n", "TIME", "SINCE", "ENV", "WHAT HAPPENED", "REVISION")
	s.chapter("1. initial sync of the shop in dev, staging and prod")
	initial, err := s.clone.Head(ctx)
	if err != nil {
		return err
	}
	for _, env := range demo.Environments {
		if err := s.healthy(ctx, env, initial, "synced and healthy: web and api 1.0.0"); err != nil {
			return err
		}
	}

	s.chapter("2. CI releases api 1.1.0 to dev; Baton promotes it to staging after the soak")
	s.say("dev", "$ baton set-image --env dev api=registry.example/api:1.1.0", "")
	out, err := s.cli(ctx, "set-image", "--env", "dev", "api=registry.example/api:1.1.0")
	if err != nil {
		return err
	}
	good, err := s.head(ctx, "dev")
	if err != nil {
		return err
	}
	s.say("dev", strings.TrimSpace(out), good)
	if err := s.healthy(ctx, "dev", good, "rolled out api 1.1.0: healthy, soaking 2s"); err != nil {
		return err
	}
	// The agent reports "pushed" only until its next evaluation finds the
	// edge up to date: the durable sign is env/staging's head moving while
	// dev's promotion record is about this release.
	var promoted string
	if err := s.wait(ctx, "the promotion to staging", func() bool {
		p := s.agents["dev"].Environment().Promotions
		if len(p) != 1 || p[0].Revision != good || (p[0].Outcome != agent.PromotionPushed && p[0].Outcome != agent.PromotionUpToDate) {
			return false
		}
		head, err := s.head(ctx, "staging")
		if err == nil && head != initial {
			promoted = head
		}
		return promoted != ""
	}); err != nil {
		return err
	}
	s.say("staging", "promotion commit pushed to env/staging (Baton-Promoted-From: dev@"+good[:7]+")", promoted)
	if err := s.healthy(ctx, "staging", promoted, "rolled out api 1.1.0: healthy, soaking 2s"); err != nil {
		return err
	}

	s.chapter("3. a pull request to prod; a reviewer merges it")
	var pr agent.PromotionInfo
	if err := s.wait(ctx, "the pull request to prod", func() bool {
		p := s.agents["staging"].Environment().Promotions
		if len(p) == 1 && p[0].Revision == promoted && p[0].PullRequestURL != "" {
			pr = p[0]
		}
		return pr.PullRequestURL != ""
	}); err != nil {
		return err
	}
	s.say("prod", "pull request opened: "+pr.PullRequestURL, pr.Commit)
	var preview demo.Status
	if err := s.wait(ctx, "the pull request's preview", func() bool {
		preview, _ = demo.CommitStatus(ctx, s.gitea, pr.Commit, "baton/preview/prod")
		return preview.State == "success" || preview.State == "failure"
	}); err != nil {
		return err
	}
	s.say("prod", "preview commented on the pull request: "+preview.Description, pr.Commit)
	number := pr.PullRequestURL[strings.LastIndex(pr.PullRequestURL, "/")+1:]
	if err := s.gitea.API(ctx, http.MethodPost, "/repos/"+s.gitea.User()+"/shop/pulls/"+number+"/merge",
		map[string]any{"Do": "merge"}, nil); err != nil {
		return fmt.Errorf("merge %s: %w", pr.PullRequestURL, err)
	}
	merged, err := s.head(ctx, "prod")
	if err != nil {
		return err
	}
	s.say("prod", "pull request merged through the forge's API", merged)
	if err := s.healthy(ctx, "prod", merged, "rolled out api 1.1.0: healthy"); err != nil {
		return err
	}
	var deployed demo.Status
	if err := s.wait(ctx, "the merge commit's deploy status", func() bool {
		deployed, _ = demo.CommitStatus(ctx, s.gitea, merged, "baton/prod")
		return deployed.State == "success"
	}); err != nil {
		return err
	}
	s.say("prod", "commit status baton/prod on the merge commit: "+deployed.Description, merged)
	commitTime, err := s.clone.Git(ctx, "show", "-s", "--format=%cI", good)
	if err != nil {
		return err
	}
	committed, _ := time.Parse(time.RFC3339, commitTime)
	lead := s.agents["prod"].Environment().Health.Since.Sub(committed)

	s.chapter("4. a bad release: api 1.2.0 runs out of memory")
	bad, err := s.clone.BadRelease(ctx)
	if err != nil {
		return err
	}
	s.say("dev", "git push: api 1.2.0: new product search", bad)
	dev := s.agents["dev"]
	if err := s.wait(ctx, "dev degraded", func() bool {
		e := dev.Environment()
		return e.Synced != nil && e.Synced.Commit == bad && e.Health.Status == "Degraded"
	}); err != nil {
		return err
	}
	h := dev.Environment().Health
	s.say("dev", "Degraded, cause "+h.Cause+": "+clip(h.Message, 40), bad)
	if err := s.wait(ctx, "promotions out of dev frozen", func() bool {
		p := dev.Environment().Promotions
		return len(p) == 1 && p[0].Revision == bad && p[0].Outcome == agent.PromotionFrozen
	}); err != nil {
		return err
	}
	s.say("dev", "promotions to staging frozen: staging keeps api 1.1.0", bad)

	s.chapter("5. git revert of the bad commit on env/dev")
	reverted, err := s.clone.Revert(ctx, bad)
	if err != nil {
		return err
	}
	s.say("dev", "git revert "+bad[:7]+" && git push", reverted)
	if err := s.healthy(ctx, "dev", reverted, "rolled back to api 1.1.0: healthy"); err != nil {
		return err
	}
	if err := s.wait(ctx, "the freeze cleared", func() bool {
		p := dev.Environment().Promotions
		return len(p) == 1 && p[0].Revision == reverted && p[0].Outcome != agent.PromotionFrozen
	}); err != nil {
		return err
	}
	s.say("dev", "freeze cleared (promotion: "+dev.Environment().Promotions[0].Outcome+")", reverted)

	s.chapter("6. baton status")
	// baton status reads the Environment objects, which the agents write
	// a moment after their own status changes: wait for the revert there.
	var statusErr error
	if err := s.wait(ctx, "baton status to show the revert", func() bool {
		out, statusErr = s.cli(ctx, "status", "--kubeconfig", s.kubeconfig)
		return statusErr == nil && strings.Contains(out, reverted[:8])
	}); err != nil {
		return errors.Join(err, statusErr)
	}
	fmt.Fprint(s.out, out)
	fmt.Fprintf(s.out, "\nLead time of api 1.1.0 from commit to healthy in prod: %s\n", lead.Round(100*time.Millisecond))
	fmt.Fprintf(s.out, "Story told in %s (soak shortened to 2s for the demo).\n", time.Since(s.start).Round(100*time.Millisecond))
	fmt.Fprintf(s.out, "Pull request: %s\n", pr.PullRequestURL)
	return nil
}

// cli runs the baton CLI with the demo's configuration.
func (s *story) cli(ctx context.Context, args ...string) (string, error) {
	args = append([]string{args[0], "--config", s.config}, args[1:]...)
	cmd := exec.CommandContext(ctx, s.baton, args...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+s.cacheHome)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("baton %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// head is the commit of an environment's branch on the forge.
func (s *story) head(ctx context.Context, env string) (string, error) {
	out, err := s.clone.Git(ctx, "ls-remote", s.clone.Remote, "refs/heads/"+demo.Branch(env))
	if err != nil {
		return "", err
	}
	commit, _, _ := strings.Cut(out, "\t")
	if commit == "" {
		return "", fmt.Errorf("shop has no branch %s", demo.Branch(env))
	}
	// Later steps read the commit from the clone.
	if _, err := s.clone.Git(ctx, "fetch", "-q", s.clone.Remote, "refs/heads/*:refs/remotes/forge/*"); err != nil {
		return "", err
	}
	return commit, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
