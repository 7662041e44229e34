package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/metrics"
)

// AgentOptions start one in-process agent.
type AgentOptions struct {
	// Config is the agent's baton.yaml text (see Config). Required.
	Config string
	// REST reaches the cluster. Required.
	REST *rest.Config
	// CacheDir holds the agent's git store; required (one per agent, as in
	// separate pods).
	CacheDir string
	// Addr is the HTTP listen address; empty means 127.0.0.1 on a free port.
	Addr string
	// Logger receives the agent's log; nil discards.
	Logger *slog.Logger
}

// Agent is a running in-process agent with its own metrics registry.
type Agent struct {
	*agent.Agent
	// Env is the environment it applies.
	Env string
	// URL is its HTTP root (/api/status, /metrics).
	URL string
	// Registry holds its metrics.
	Registry *prometheus.Registry

	cancel context.CancelFunc
	done   chan error
}

// StartAgent builds an agent from its configuration and runs it until Stop.
func StartAgent(ctx context.Context, o AgentOptions) (*Agent, error) {
	cfg, err := config.Parse([]byte(o.Config))
	if err != nil {
		return nil, fmt.Errorf("demo agent configuration: %w", err)
	}
	if len(cfg.Sync) != 1 {
		return nil, fmt.Errorf("demo agent configuration: sync names %d environments, want 1", len(cfg.Sync))
	}
	cfg.Agent.CacheDir = o.CacheDir
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", cfg.Sync[0], err)
	}
	m, reg := metrics.New(metrics.Options{})
	a, err := agent.New(agent.Options{Config: cfg, REST: o.REST, Logger: o.Logger, Recorder: m, SourceMetrics: m,
		Metrics: m.Handler(), Listener: ln, Identity: "demo-" + cfg.Sync[0],
		BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second})
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("agent %s: %w", cfg.Sync[0], err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &Agent{Agent: a, Env: cfg.Sync[0], URL: "http://" + ln.Addr().String(), Registry: reg, cancel: cancel,
		done: make(chan error, 1)}
	go func() { r.done <- a.Run(runCtx) }()
	return r, nil
}

// Stop ends the agent and waits for it, at most timeout.
func (a *Agent) Stop(timeout time.Duration) error {
	a.cancel()
	select {
	case err := <-a.done:
		return err
	case <-time.After(timeout):
		return errors.New("agent " + a.Env + " did not stop in " + timeout.String())
	}
}

// Environment returns the status of the environment the agent applies.
func (a *Agent) Environment() agent.EnvironmentStatus {
	for _, e := range a.Status().Environments {
		if e.Name == a.Env {
			return e
		}
	}
	return agent.EnvironmentStatus{Name: a.Env}
}

// SyncedHealthy reports whether the environment is synced at commit and
// healthy with that revision.
func (a *Agent) SyncedHealthy(commit string) bool {
	e := a.Environment()
	return e.Synced != nil && e.Synced.Commit == commit && e.Health.Status == "Healthy" && e.Health.Revision == commit
}

// Wait polls cond every 50ms until it holds, ctx ends or within passes.
func Wait(ctx context.Context, within time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting %s for %s: %w", within, what, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}
