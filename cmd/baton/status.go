package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/internal/githash"
)

func (c *cli) statusCommand() *cobra.Command {
	var server, format string
	var compute bool
	cmd := &cobra.Command{
		Use:   "status [--server URL] [--compute] [-o table|json|yaml]",
		Short: "show the whole pipeline: every environment's revision, health, soak, drift and pending promotion",
		Long: "Shows every environment of the pipeline, in order, from where its agent reports it: the\n" +
			"Environment objects of the current cluster (--context, --namespace), or with --server one\n" +
			"agent's /api/status, and the peers of baton.yaml (agents in other clusters, by URL or by\n" +
			"kubeconfig context). Columns: synced revision (and the branch head when it is ahead),\n" +
			"health and its cause, last sync, soak progress, drift, the promotions out of it, and who\n" +
			"reports it. Suspensions are listed below the table with who and why.\n\n" +
			"--compute works out the environments no agent reports from git and the cluster instead\n" +
			"(then the last sync's time and blocked promotions are unknown).",
		Example: "baton status\n" +
			"baton status --context prod -o yaml\n" +
			"baton status --server http://baton.baton-system:8080",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatTable, formatJSON, formatYAML); err != nil {
				return err
			}
			cfg, err := c.optionalConfig(cmd)
			if err != nil {
				return err
			}
			if cfg == nil && compute {
				return usageError("--compute needs the configuration (--config)")
			}
			st, err := c.pipelineStatus(cmd.Context(), cfg, server, compute)
			if err != nil {
				return err
			}
			switch format {
			case formatJSON:
				err = writeJSON(c.stdout, st)
			case formatYAML:
				err = writeYAML(c.stdout, st)
			default:
				err = statusTable(c, st, time.Now())
			}
			if err == nil && len(st.Problems) > 0 && !anyReported(st) {
				err = fmt.Errorf("no environment's status could be read: %s", st.Problems[0])
			}
			return err
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "read one agent's /api/status at URL instead of the cluster's Environment objects")
	cmd.Flags().BoolVar(&compute, "compute", false, "compute the environments no agent reports from git and the cluster")
	outputFlag(cmd, &format, formatTable, formatTable, formatJSON, formatYAML)
	return cmd
}

// pipelineStatus is what status prints.
type pipelineStatus struct {
	// Environments are in pipeline order, then the configuration's other
	// environments, then those only an agent knows.
	Environments []statusRow `json:"environments"`
	// Problems are the sources that could not be read.
	Problems []string `json:"problems,omitempty"`
}

// statusRow is one environment and who reports it.
type statusRow struct {
	agent.EnvironmentStatus
	// ReportedBy is "cluster <context>/<namespace>", "agent <url>", "peer
	// <name>" or "computed"; empty when nobody reports the environment.
	ReportedBy string `json:"reportedBy,omitempty"`
	// Role is the reporting agent's role, when it says (a standby's view
	// may be stale).
	Role string `json:"role,omitempty"`
}

// report is what one source says.
type report struct {
	source string
	role   string
	envs   []agent.EnvironmentStatus
	err    error
}

func (c *cli) pipelineStatus(ctx context.Context, cfg *config.Config, server string, compute bool) (pipelineStatus, error) {
	var reports []report
	if server != "" {
		st, err := fetchStatus(ctx, server)
		if err != nil {
			return pipelineStatus{}, err
		}
		reports = append(reports, report{source: "agent " + server, role: st.Role, envs: st.Environments})
	} else {
		rc, err := c.restConfig()
		if err != nil {
			return pipelineStatus{}, err
		}
		ns := c.agentNamespace(cfg)
		r := objectReport(ctx, rc, ns, "cluster "+c.contextName()+"/"+ns)
		if r.err != nil && !compute && cfg == nil {
			return pipelineStatus{}, r.err
		}
		reports = append(reports, r)
	}
	if cfg != nil {
		for _, p := range cfg.Peers {
			reports = append(reports, c.peerReport(ctx, cfg, p))
		}
	}
	out := pipelineStatus{Environments: []statusRow{}}
	byName := map[string]statusRow{}
	var unknownOrder []string
	for _, r := range reports {
		if r.err != nil {
			out.Problems = append(out.Problems, r.source+": "+r.err.Error())
			continue
		}
		for _, e := range r.envs {
			if _, seen := byName[e.Name]; seen {
				continue // the first source wins: the local cluster or --server
			}
			byName[e.Name] = statusRow{EnvironmentStatus: e, ReportedBy: r.source, Role: r.role}
			if cfg == nil || cfg.Environment(e.Name) == nil {
				unknownOrder = append(unknownOrder, e.Name)
			}
		}
	}
	var order []string
	if cfg != nil {
		order = append(order, cfg.Order()...)
		for _, e := range cfg.Environments {
			if !slices.Contains(order, e.Name) {
				order = append(order, e.Name)
			}
		}
	}
	order = append(order, unknownOrder...)
	var missing []string
	for _, name := range order {
		if _, ok := byName[name]; !ok {
			missing = append(missing, name)
		}
	}
	if compute && len(missing) > 0 {
		computed, err := c.computeStatus(ctx, cfg, missing)
		if err != nil {
			return pipelineStatus{}, err
		}
		for _, e := range computed.Environments {
			byName[e.Name] = statusRow{EnvironmentStatus: e, ReportedBy: "computed", Role: agent.RoleComputed}
		}
	}
	for _, name := range order {
		row, ok := byName[name]
		if !ok {
			row = statusRow{EnvironmentStatus: unreported(cfg, name)}
		}
		if row.Pipeline == "" && cfg != nil {
			row.Pipeline = cfg.PipelineName(name)
		}
		out.Environments = append(out.Environments, row)
	}
	return out, nil
}

// anyReported reports whether some source reported an environment.
func anyReported(st pipelineStatus) bool {
	for _, e := range st.Environments {
		if e.ReportedBy != "" {
			return true
		}
	}
	return false
}

// unreported is the configuration's view of an environment no agent
// reports.
func unreported(cfg *config.Config, name string) agent.EnvironmentStatus {
	e := agent.EnvironmentStatus{Name: name}
	if env := cfg.Environment(name); env != nil {
		e.Branch, e.Path, e.Soak = env.Branch, env.Path, env.Health.Soak
		for _, edge := range cfg.EdgesFrom(name) {
			e.Promotions = append(e.Promotions, agent.PromotionInfo{To: edge.To, Policy: edge.Policy})
		}
	}
	return e
}

// objectReport reads the Environment objects of a cluster's namespace.
func objectReport(ctx context.Context, rc *rest.Config, ns, source string) report {
	r := report{source: source}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		r.err = err
		return r
	}
	objs, err := envobject.NewClient(dyn, ns).List(ctx)
	if err != nil {
		r.err = err
		return r
	}
	for _, o := range objs {
		r.envs = append(r.envs, agent.StatusOfObject(o))
	}
	return r
}

// peerReport reads one peer: its /api/status, or its Environment objects
// through a kubeconfig context.
func (c *cli) peerReport(ctx context.Context, cfg *config.Config, p config.Peer) report {
	source := "peer " + p.Name
	if p.URL != "" {
		st, err := fetchStatus(ctx, p.URL)
		return report{source: source, role: st.Role, envs: st.Environments, err: err}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.kube.KubeConfig != nil && *c.kube.KubeConfig != "" {
		rules.ExplicitPath = *c.kube.KubeConfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: p.Context}
	if c.kube.Timeout != nil {
		overrides.Timeout = *c.kube.Timeout
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return report{source: source, err: fmt.Errorf("context %s: %w", p.Context, err)}
	}
	ns := p.Namespace
	if ns == "" {
		ns = cfg.Agent.Namespace
	}
	return objectReport(ctx, rc, ns, source)
}

// contextName is the kubeconfig context in use.
func (c *cli) contextName() string {
	if c.kube.Context != nil && *c.kube.Context != "" {
		return *c.kube.Context
	}
	raw, err := c.kube.ToRawKubeConfigLoader().RawConfig()
	if err != nil || raw.CurrentContext == "" {
		return "in-cluster"
	}
	return raw.CurrentContext
}

func (c *cli) computeStatus(ctx context.Context, cfg *config.Config, names []string) (agent.Status, error) {
	rc, err := c.restConfig()
	if err != nil {
		return agent.Status{}, err
	}
	cacheDir, err := agent.CacheDir(cfg)
	if err != nil {
		return agent.Status{}, err
	}
	return agent.ComputeStatus(ctx, agent.ComputeOptions{Config: cfg, REST: rc, Environments: names,
		CacheDir: filepath.Join(cacheDir, "cli")})
}

// statusTable prints one row per environment, then the suspensions and
// the sources that could not be read.
func statusTable(c *cli, st pipelineStatus, now time.Time) error {
	var rows [][]string
	var notes []string
	// Several applications on one agent: say which pipeline each
	// environment is in.
	showPipeline := false
	for _, row := range st.Environments {
		if p := row.Pipeline; p != "" && p != config.DefaultPipelineName {
			showPipeline = true
		}
	}
	for _, row := range st.Environments {
		e := row.EnvironmentStatus
		synced := "-"
		if e.Synced != nil {
			synced = githash.Short(e.Synced.Commit)
			if e.Head != nil && e.Head.Commit != e.Synced.Commit {
				synced += " (head " + githash.Short(e.Head.Commit) + ")"
			}
		}
		if e.Suspended {
			synced += " suspended"
			note := e.Name + " suspended"
			if e.SuspendedBy != "" {
				note += " by " + e.SuspendedBy
			}
			if e.SuspendReason != "" {
				note += ": " + e.SuspendReason
			}
			if !e.SuspendedSince.IsZero() {
				note += " (" + age(now, e.SuspendedSince) + " ago)"
			}
			notes = append(notes, note)
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
		if row.Role == agent.RoleStandby {
			notes = append(notes, fmt.Sprintf("%s is reported by a standby agent (%s): it may be stale", e.Name, row.ReportedBy))
		}
		r := []string{e.Name, synced, healthCol, last, soakProgress(e, now), drifted,
			promotions(e.Promotions), dash(row.ReportedBy)}
		if showPipeline {
			r = append([]string{dash(e.Pipeline)}, r...)
		}
		rows = append(rows, r)
	}
	header := []string{"ENVIRONMENT", "SYNCED", "HEALTH", "LAST SYNC", "SOAK", "DRIFTED", "PROMOTION", "REPORTED BY"}
	if showPipeline {
		header = append([]string{"PIPELINE"}, header...)
	}
	if err := table(c.stdout, header, rows); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(c.stdout, n)
	}
	if anyReported(st) {
		for _, p := range st.Problems {
			fmt.Fprintln(c.stderr, "warning: "+p)
		}
	}
	return nil
}

// soakProgress is how much of its soak a healthy environment has served:
// "45s/2m0s", "done", or "-" when it is not healthy at its synced revision.
func soakProgress(e agent.EnvironmentStatus, now time.Time) string {
	if e.Synced == nil || e.Health.Status != "Healthy" || e.Health.Revision != e.Synced.Commit || e.Health.Since.IsZero() {
		return "-"
	}
	held := now.Sub(e.Health.Since)
	if e.Soak.Duration <= 0 || held >= e.Soak.Duration {
		return "done"
	}
	return held.Truncate(time.Second).String() + "/" + e.Soak.Duration.String()
}

// promotions summarises the edges out of an environment: "staging:
// pull-request https://...", "prod: blocked (soak)".
func promotions(ps []agent.PromotionInfo) string {
	var parts []string
	for _, p := range ps {
		s := p.To + ": " + dash(p.Outcome)
		if p.Reason != "" && p.Reason != p.Outcome {
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
