package config

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
	for _, e := range c.Pipeline.Edges {
		if e.From == env {
			out = append(out, e)
		}
	}
	return out
}

// RevertEdgesInto lists the edges into env that revert a promotion leaving
// env unhealthy (revertOnUnhealthy), in configuration order.
func (c *Config) RevertEdgesInto(env string) []Edge {
	var out []Edge
	for _, e := range c.Pipeline.Edges {
		if e.To == env && e.RevertOnUnhealthy {
			out = append(out, e)
		}
	}
	return out
}

// Edge returns the pipeline edge from -> to, or nil.
func (c *Config) Edge(from, to string) *Edge {
	for i := range c.Pipeline.Edges {
		if e := &c.Pipeline.Edges[i]; e.From == from && e.To == to {
			return e
		}
	}
	return nil
}

// PruneEnabled reports the environment's prune policy (true unless set
// false).
func (e Environment) PruneEnabled() bool { return e.Prune == nil || *e.Prune }

// IsEnabled reports whether leader election is on (true unless
// set false).
func (l LeaderElection) IsEnabled() bool { return l.Enabled == nil || *l.Enabled }
