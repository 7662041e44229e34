package main

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baton-gitops/baton/internal/config"
)

// restConfig finds the cluster as kubectl does: --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config, else the in-cluster service account;
// --context, --as, --request-timeout and the other connection flags apply.
func (c *cli) restConfig() (*rest.Config, error) {
	cfg, err := c.kube.ToRESTConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no cluster: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not running in a cluster; pass --kubeconfig or --context")
		}
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.UserAgent = "baton/" + version
	return cfg, nil
}

// agentNamespace is where the agent keeps its Environment objects and
// inventories: --namespace when given, else the configuration's
// agent.namespace, else baton-system. A kubeconfig context's own namespace
// is for applications, not for the agent, so it is not used.
func (c *cli) agentNamespace(cfg *config.Config) string {
	if c.kube.Namespace != nil && *c.kube.Namespace != "" {
		return *c.kube.Namespace
	}
	if cfg != nil && cfg.Agent.Namespace != "" {
		return cfg.Agent.Namespace
	}
	return defaultAgentNamespace
}
