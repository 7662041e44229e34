package agent

import (
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/health"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
)

// requestScope maps an environment's scope onto the reconciler's. Every
// environment gets one: its zero value allows no namespace and no
// cluster-scoped kind.
func requestScope(env config.Environment) *reconciler.Scope {
	s := &reconciler.Scope{Namespaces: env.Scope.Namespaces, ClusterWide: env.Scope.ClusterWide}
	for _, k := range env.Scope.ClusterKinds {
		s.ClusterKinds = append(s.ClusterKinds, schema.ParseGroupKind(k))
	}
	return s
}

// requestAccount is the ServiceAccount the environment's requests
// impersonate, or nil when it runs as the agent.
func requestAccount(env config.Environment) *reconciler.ServiceAccount {
	ns, name, ok := env.Account()
	if !ok {
		return nil
	}
	return &reconciler.ServiceAccount{Namespace: ns, Name: name}
}

// refusal names the rule or limit that refused a revision as a whole, or
// "" when err is another failure (see SyncRecord.Refused).
func refusal(err error) string {
	var refused *reconciler.RefusedError
	if errors.As(err, &refused) {
		if rules := refused.Rules(); len(rules) > 0 {
			return rules[0]
		}
	}
	var limit *render.LimitError
	if errors.As(err, &limit) {
		return limit.Limit
	}
	return ""
}

// RenderOptions are the renderer settings of the configuration's limits.
// workerPath, when set, renders in worker processes (see
// render.Options.WorkerPath).
func RenderOptions(cfg *config.Config, workerPath string) render.Options {
	l := cfg.Limits
	return render.Options{
		WorkerPath: workerPath,
		Limits: render.Limits{
			MaxFileSize:   l.MaxFileSize.Value(),
			MaxObjects:    l.MaxObjects,
			MaxAliasNodes: l.MaxAliasNodes,
			MaxMemory:     l.RenderMemory.Value(),
			MaxDuration:   l.RenderTimeout.Duration,
		},
	}
}

// checkers builds one health checker per identity: the agent's own, and
// each impersonated ServiceAccount, so that an environment's health watches
// see no more than its account may.
type checkers struct {
	rest *rest.Config
	opts health.CheckerOptions

	mu        sync.Mutex // guards byAccount
	own       *health.Checker
	byAccount map[reconciler.ServiceAccount]*health.Checker
}

// forEnvironment returns the checker of env's identity.
func (c *checkers) forEnvironment(env config.Environment) (*health.Checker, error) {
	sa := requestAccount(env)
	c.mu.Lock()
	defer c.mu.Unlock()
	if sa == nil {
		return c.own, nil
	}
	if ch, ok := c.byAccount[*sa]; ok {
		return ch, nil
	}
	ch, err := health.NewChecker(sa.Impersonate(c.rest), c.opts)
	if err != nil {
		return nil, fmt.Errorf("health checker for %s: %w", sa, err)
	}
	if c.byAccount == nil {
		c.byAccount = map[reconciler.ServiceAccount]*health.Checker{}
	}
	c.byAccount[*sa] = ch
	return ch, nil
}
