package demo

import (
	"fmt"
	"strings"
)

// ConfigOptions describe where the demo's parts run. Every field is
// required unless it says otherwise.
type ConfigOptions struct {
	// Sync are the environments applied: one per agent; the CLI's
	// configuration lists all three.
	Sync []string
	// RepoURL is the shop repository's clone URL (without credentials).
	RepoURL string
	// User and TokenFile authenticate to the forge, for git and its API.
	User, TokenFile string
	// ForgeURL is the forge's root URL; Repository its owner/name.
	ForgeURL, Repository string
	// Namespaces maps each environment to its namespace in the cluster.
	Namespaces map[string]string
	// AgentNamespace holds the agent's inventory and Lease.
	AgentNamespace string
	// Listen is the agent's HTTP address; empty means 127.0.0.1:0 is left
	// to the caller (a listener passed to the agent).
	Listen string
	// Soak is how long an environment stays healthy before it is promoted,
	// shortened for the demo. Empty means 2s.
	Soak string
}

// Config is baton.yaml for one agent of the demo: the three environments of
// the shop, dev → staging automatic, staging → prod by pull request on the
// forge, branches polled every second.
func Config(o ConfigOptions) string {
	if o.Soak == "" {
		o.Soak = "2s"
	}
	var envs strings.Builder
	for _, env := range Environments {
		fmt.Fprintf(&envs, `  - name: %s
    branch: %s
    path: overlays/%s
    namespace: %s
    ignore:
      - {group: apps, kind: Deployment, name: api, paths: [/spec/replicas]} # scaled by its HPA
    health: {timeout: 2m, soak: %s}
`, env, Branch(env), env, o.Namespaces[env], o.Soak)
	}
	listen := ""
	if o.Listen != "" {
		listen = fmt.Sprintf("listen: {http: %q}\n", o.Listen)
	}
	return fmt.Sprintf(`repositories:
  - name: shop
    url: %s
    auth: {username: %s, tokenFile: %s}
    interval: 1s
    timeout: 30s
environments:
%ssync: [%s]
pipeline:
  order: [dev, staging, prod]
  edges:
    - {from: dev, to: staging, policy: auto}
    - {from: staging, to: prod, policy: pull-request}
  paths:
    include: ["base/**"]
  author: {name: Baton, email: baton@shop.example}
forge:
  kind: gitea
  url: %s
  tokenFile: %s
  repository: %s
  preview: {interval: 2s}
%sagent:
  namespace: %s
  leaderElection: {leaseName: baton-%s}
`, o.RepoURL, o.User, o.TokenFile, envs.String(), strings.Join(o.Sync, ", "), o.ForgeURL, o.TokenFile,
		o.Repository, listen, o.AgentNamespace, strings.Join(o.Sync, "-"))
}
