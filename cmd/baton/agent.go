package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/events"
	"github.com/baton-gitops/baton/internal/metrics"
)

func (c *cli) agentCommand() *cobra.Command {
	var logFormat, logLevel, identity string
	cmd := &cobra.Command{
		Use:   "agent [--log-format json|text] [--log-level debug|info|warn|error] [--identity NAME]",
		Short: "run the in-cluster agent: sync the environments of sync:, promote along the pipeline",
		Long: "Polls the environments' branches (and acts on push webhooks), renders, applies, prunes,\n" +
			"waits for health and promotes, for every environment listed under sync:. Replicas elect a\n" +
			"leader through a Lease; only the leader applies and promotes. SIGTERM stops it cleanly:\n" +
			"an apply in flight is abandoned safely and the Lease released. Serves /healthz, /readyz,\n" +
			"/metrics, /webhook and /api/status on listen.http.",
		Example: "baton agent --config /etc/baton/baton.yaml",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError("--log-level %q: want debug, info, warn or error", logLevel)
			}
			hopts := &slog.HandlerOptions{Level: level}
			var logger *slog.Logger
			switch logFormat {
			case "json":
				logger = slog.New(slog.NewJSONHandler(c.stderr, hopts))
			case "text":
				logger = slog.New(slog.NewTextHandler(c.stderr, hopts))
			default:
				return usageError("--log-format %q: want json or text", logFormat)
			}
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			rc, err := c.restConfig()
			if err != nil {
				return err
			}
			rc.QPS, rc.Burst = agent.KubeAPILimits(cfg.Agent) // the Events' client
			// The process's one registry, and the recorders the agent and
			// the git layer report to.
			m, _ := metrics.New(metrics.Options{})
			// Kubernetes Events first, then the same records to metrics.
			ev, err := events.New(rc, events.Options{
				Namespace: cfg.Agent.Namespace,
				Host:      identity,
				Logger:    logger,
				Next:      m,
			})
			if err != nil {
				return err
			}
			defer ev.Close()
			// Renders run in child processes of this binary (see main).
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the baton binary for render workers: %w", err)
			}
			a, err := agent.New(agent.Options{
				RenderWorker:  self,
				Config:        cfg,
				REST:          rc,
				Logger:        logger,
				Identity:      identity,
				Recorder:      ev,
				SourceMetrics: m,
				Metrics:       m.Handler(),
			})
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "lowest level logged: debug, info, warn or error")
	cmd.Flags().StringVar(&identity, "identity", "", "name in the leader-election Lease (default: host name and a random suffix)")
	return cmd
}
