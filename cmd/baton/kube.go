package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig finds the cluster: --kubeconfig when given, else the
// in-cluster service account, else $KUBECONFIG, else ~/.kube/config.
func (c *cli) restConfig() (*rest.Config, error) {
	if c.kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", c.kubeconfig, err)
		}
		return cfg, nil
	}
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		rules.Precedence = filepath.SplitList(env)
	} else if home, err := os.UserHomeDir(); err == nil {
		rules.ExplicitPath = filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(rules.ExplicitPath); err != nil {
			return nil, errors.New("no cluster: not in a cluster, $KUBECONFIG is unset and ~/.kube/config does not exist; pass --kubeconfig")
		}
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}
