package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-gitops/baton/internal/agent"
)

func (c *cli) statusCommand() *cobra.Command {
	var server, format string
	cmd := &cobra.Command{
		Use:   "status [--server URL] [-o table|json|yaml]",
		Short: "show every environment's revision, health, drift and pending promotion",
		Long: "With --server, reads the agent's /api/status. Without, computes it from git and the\n" +
			"cluster (the environments of sync:, else all): branch head, synced revision, health with\n" +
			"its cause, drift and open promotion pull requests; the last sync's age is then unknown (-).",
		Example: "baton status --server http://baton.baton-system:8080\nbaton status -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := checkFormat(format, formatTable, formatJSON, formatYAML); err != nil {
				return err
			}
			var st agent.Status
			var err error
			if server != "" {
				st, err = fetchStatus(ctx, server)
			} else {
				st, err = c.computeStatus(ctx)
			}
			if err != nil {
				return err
			}
			switch format {
			case formatJSON:
				return writeJSON(c.stdout, st)
			case formatYAML:
				return writeYAML(c.stdout, st)
			}
			return statusTable(c, st, time.Now())
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "agent URL to read /api/status from (default: compute it)")
	outputFlag(cmd, &format, formatTable, formatTable, formatJSON, formatYAML)
	return cmd
}

// fetchStatus reads an agent's /api/status.
func fetchStatus(ctx context.Context, server string) (agent.Status, error) {
	url := strings.TrimSuffix(server, "/") + agent.PathStatus
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return agent.Status{}, fmt.Errorf("--server: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return agent.Status{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return agent.Status{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var st agent.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return agent.Status{}, fmt.Errorf("GET %s: %w", url, err)
	}
	return st, nil
}

func (c *cli) computeStatus(ctx context.Context) (agent.Status, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return agent.Status{}, err
	}
	rc, err := c.restConfig()
	if err != nil {
		return agent.Status{}, err
	}
	cacheDir, err := agent.CacheDir(cfg)
	if err != nil {
		return agent.Status{}, err
	}
	return agent.ComputeStatus(ctx, agent.ComputeOptions{Config: cfg, REST: rc, CacheDir: filepath.Join(cacheDir, "cli")})
}

// statusTable prints one row per environment.
func statusTable(c *cli, st agent.Status, now time.Time) error {
	var rows [][]string
	for _, e := range st.Environments {
		synced := "-"
		if e.Synced != nil {
			synced = short(e.Synced.Commit)
			if e.Head != nil && e.Head.Commit != e.Synced.Commit {
				synced += " (head " + short(e.Head.Commit) + ")"
			}
		}
		if e.Suspended {
			synced += " suspended"
		}
		healthCol := dash(e.Health.Status)
		if e.Health.Cause != "" {
			healthCol += " (" + e.Health.Cause + ")"
		}
		last := "-"
		if e.LastSync != nil {
			last = age(now, e.LastSync.Time)
			if e.LastSync.Result != agent.SyncSucceeded {
				last += " " + e.LastSync.Result
			}
		}
		drifted := "-"
		if len(e.Drifted) > 0 {
			drifted = fmt.Sprintf("%d: %s", len(e.Drifted), strings.Join(e.Drifted, ", "))
		} else if e.Synced != nil && e.Head != nil && e.Synced.Commit == e.Head.Commit {
			drifted = "0"
		}
		rows = append(rows, []string{e.Name, e.Branch, synced, healthCol, last, drifted, promotions(e.Promotions)})
	}
	if st.Role == agent.RoleStandby {
		fmt.Fprintf(c.stderr, "note: this agent stands by (leader: %s); its environment states may be stale\n", dash(st.Leader))
	}
	return table(c.stdout, []string{"ENVIRONMENT", "BRANCH", "SYNCED", "HEALTH", "LAST SYNC", "DRIFTED", "PROMOTION"}, rows)
}

// promotions summarises the edges out of an environment: "staging:
// pull-request https://...", "prod: blocked (soak)".
func promotions(ps []agent.PromotionInfo) string {
	var parts []string
	for _, p := range ps {
		s := p.To + ": " + dash(p.Outcome)
		if p.Reason != "" {
			s += " (" + p.Reason + ")"
		}
		if p.PullRequestURL != "" {
			s += " " + p.PullRequestURL
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func short(commit string) string {
	if len(commit) > 8 {
		return commit[:8]
	}
	return commit
}

// age formats how long ago t was: "45s", "12m", "3h", "2d".
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
