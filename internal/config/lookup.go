package config

import (
	"strings"

	"github.com/baton-gitops/baton/promote"
)

// Environment returns the environment called name, or nil.
func (c *Config) Environment(name string) *Environment {
	for i := range c.Environments {
		if c.Environments[i].Name == name {
			return &c.Environments[i]
		}
	}
	return nil
}

// Repository returns the repository called name, or nil.
func (c *Config) Repository(name string) *Repository {
	for i := range c.Repositories {
		if c.Repositories[i].Name == name {
			return &c.Repositories[i]
		}
	}
	return nil
}

// EdgesFrom returns the pipeline edges whose source is env, in file order.
func (c *Config) EdgesFrom(env string) []Edge {
	var out []Edge
	for _, p := range c.Pipelines {
		for _, e := range p.Edges {
			if e.From == env {
				out = append(out, e)
			}
		}
	}
	return out
}

// RevertEdgesInto lists the edges into env that revert a promotion leaving
// env unhealthy (revertOnUnhealthy), in configuration order.
func (c *Config) RevertEdgesInto(env string) []Edge {
	var out []Edge
	for _, p := range c.Pipelines {
		for _, e := range p.Edges {
			if e.To == env && e.RevertOnUnhealthy {
				out = append(out, e)
			}
		}
	}
	return out
}

// Edge returns the pipeline edge from -> to, or nil. Environments belong
// to one pipeline at most, so an edge is known by its ends alone.
func (c *Config) Edge(from, to string) *Edge {
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		for j := range p.Edges {
			if e := &p.Edges[j]; e.From == from && e.To == to {
				return e
			}
		}
	}
	return nil
}

// PipelineOf returns the pipeline whose order lists env, or nil.
func (c *Config) PipelineOf(env string) *Pipeline {
	for i := range c.Pipelines {
		for _, n := range c.Pipelines[i].Order {
			if n == env {
				return &c.Pipelines[i]
			}
		}
	}
	return nil
}

// PipelineName returns the name of env's pipeline, or "" when env is in
// none.
func (c *Config) PipelineName(env string) string {
	if p := c.PipelineOf(env); p != nil {
		return p.Name
	}
	return ""
}

// Author is who signs commits Baton writes for env (promotions, `baton
// set-image`): its pipeline's author; for an environment in no pipeline,
// the first pipeline's (the single-pipeline form's), else the defaults.
func (c *Config) Author(env string) Author {
	if p := c.PipelineOf(env); p != nil {
		return p.Author
	}
	if len(c.Pipelines) > 0 {
		return c.Pipelines[0].Author
	}
	return Author{Name: DefaultAuthorName, Email: DefaultAuthorEmail}
}

// ForgeOf is the forge of p's pull requests: the top-level forge with the
// fields p.Forge sets replaced.
func (c *Config) ForgeOf(p *Pipeline) Forge {
	f := c.Forge
	if p == nil || p.Forge == nil {
		return f
	}
	o := *p.Forge
	if o.Kind != "" && o.Kind != f.Kind {
		// Another kind of forge: nothing of the top-level one's address
		// applies; previews and deploy statuses are the agent's choice.
		f = Forge{Preview: f.Preview, DeployStatuses: f.DeployStatuses}
	}
	if o.Kind != "" {
		f.Kind = o.Kind
	}
	if o.URL != "" {
		f.URL = o.URL
	}
	if o.TokenFile != "" {
		f.TokenFile = o.TokenFile
	}
	if o.Repository != "" {
		f.Repository = o.Repository
	}
	if o.AllowInsecureHTTP {
		f.AllowInsecureHTTP = true
	}
	if f.URL == "" {
		switch f.Kind {
		case ForgeGitHub:
			f.URL = DefaultGitHubAPIURL
		case ForgeGitLab:
			f.URL = DefaultGitLabURL
		}
	}
	return f
}

// Order lists every pipeline's environments, pipeline after pipeline, each
// in promotion order.
func (c *Config) Order() []string {
	var out []string
	for _, p := range c.Pipelines {
		out = append(out, p.Order...)
	}
	return out
}

// PruneEnabled reports the environment's prune policy (true unless set
// false).
func (e Environment) PruneEnabled() bool { return e.Prune == nil || *e.Prune }

// IsEnabled reports whether leader election is on (true unless
// set false).
func (l LeaderElection) IsEnabled() bool { return l.Enabled == nil || *l.Enabled }

// Path is where the pipeline is in the file, for messages: "pipeline" for
// the single-pipeline form, "pipelines[N]" otherwise.
func (p *Pipeline) Path() string {
	if p.at == "" {
		return "pipeline"
	}
	return p.at
}

// Account returns the ServiceAccount the environment's requests are made
// as (serviceAccount, defaulted from agent.defaultServiceAccount), with a
// bare name resolved in the environment's namespace; ok is false when the
// environment runs as the agent's own identity.
func (e Environment) Account() (namespace, name string, ok bool) {
	if e.ServiceAccount == "" {
		return "", "", false
	}
	if ns, n, found := strings.Cut(e.ServiceAccount, "/"); found {
		return ns, n, true
	}
	return e.Namespace, e.ServiceAccount, true
}

// QueryGate is the gate as the promote package evaluates (and validates) it.
func (g MetricGate) QueryGate() promote.QueryGate {
	return promote.QueryGate{Name: g.Name, Query: g.Query, Op: promote.Comparison(g.Op), Threshold: g.Threshold}
}
