package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/baton-gitops/baton/promote"
)

// problems collects validation errors in document order.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, fieldErr(path, format, args...))
}

// validate checks a defaulted configuration and returns every problem.
func validate(c *Config) []error {
	var p problems
	repos := validateRepositories(c, &p)
	envs := validateEnvironments(c, repos, &p)
	validateNames(&p, "sync", c.Sync, envs)
	validatePipelines(c, envs, &p)
	validateForge("forge", c.Forge, &p)
	validatePreview(c.Forge, &p)
	if _, _, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
		p.add("listen.http", "%q is not a listen address such as \":8080\"", c.Listen.HTTP)
	}
	if w := c.Listen.Webhook; w != "" {
		if _, _, err := net.SplitHostPort(w); err != nil {
			p.add("listen.webhook", "%q is not a listen address such as \":8081\"", w)
		} else if w == c.Listen.HTTP {
			p.add("listen.webhook", "%q is listen.http's address; leave it out to serve the webhook there", w)
		}
	}
	validateCleartext(c, &p)
	validateAgent(c.Agent, &p)
	validateLimits(c.Limits, &p)
	validatePeers(c.Peers, &p)
	return p
}

func validatePeers(peers []Peer, p *problems) {
	names := map[string]bool{}
	for i, peer := range peers {
		at := fmt.Sprintf("peers[%d]", i)
		switch {
		case peer.Name == "":
			p.add(at+".name", "required")
		case names[peer.Name]:
			p.add(at+".name", "%q is used by another peer", peer.Name)
		}
		names[peer.Name] = true
		switch {
		case (peer.URL == "") == (peer.Context == ""):
			p.add(at, "set exactly one of url (the agent's HTTP address) and context (a kubeconfig context)")
		case peer.URL != "":
			if u, err := url.Parse(peer.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.add(at+".url", "%q: want http(s)://host[:port]", peer.URL)
			}
		}
		if peer.Namespace != "" && peer.URL != "" {
			p.add(at+".namespace", "only with context")
		} else if errs := validation.IsDNS1123Label(peer.Namespace); peer.Namespace != "" && len(errs) > 0 {
			p.add(at+".namespace", "%q is not a namespace name: %s", peer.Namespace, errs[0])
		}
	}
}

func validateLimits(l Limits, p *problems) {
	if l.MaxBlobSize.Sign() <= 0 {
		p.add("limits.maxBlobSize", "must be positive")
	}
	if l.MaxFileSize.Sign() <= 0 {
		p.add("limits.maxFileSize", "must be positive")
	}
	if l.MaxObjects < 0 {
		p.add("limits.maxObjects", "must be positive")
	}
	if l.MaxAliasNodes < 0 {
		p.add("limits.maxAliasNodes", "must be positive")
	}
	if l.RenderMemory.Cmp(resource.MustParse("16Mi")) < 0 {
		p.add("limits.renderMemory", "%s is too small: a render needs at least 16Mi", l.RenderMemory.String())
	}
	if l.RenderTimeout.Duration < 0 {
		p.add("limits.renderTimeout", "must not be negative")
	}
}

func validateRepositories(c *Config, p *problems) map[string]bool {
	names := map[string]bool{}
	if len(c.Repositories) == 0 {
		p.add("repositories", "at least one repository is required")
	}
	for i, r := range c.Repositories {
		at := fmt.Sprintf("repositories[%d]", i)
		switch {
		case r.Name == "":
			p.add(at+".name", "required")
		case names[r.Name]:
			p.add(at+".name", "%q is used by another repository", r.Name)
		}
		names[r.Name] = true
		if len(r.Branches) == 0 {
			// Worth saying only when no environment's reference is broken:
			// that error names the cause already.
			if allReferenceKnownRepositories(c) {
				p.add(at, "no environment uses repository %q", r.Name)
			}
			continue
		}
		// The source package names fields relative to the repository;
		// give them the full path.
		p.addFields(at, r.Validate())
	}
	return names
}

func validateEnvironments(c *Config, repos map[string]bool, p *problems) map[string]bool {
	names := map[string]bool{}
	if len(c.Environments) == 0 {
		p.add("environments", "at least one environment is required")
	}
	for i, e := range c.Environments {
		at := fmt.Sprintf("environments[%d]", i)
		switch {
		case e.Name == "":
			p.add(at+".name", "required")
		case names[e.Name]:
			p.add(at+".name", "%q is used by another environment", e.Name)
		default:
			if errs := validation.IsDNS1123Label(e.Name); len(errs) > 0 {
				p.add(at+".name", "%q is not a DNS label: %s", e.Name, errs[0])
			}
		}
		names[e.Name] = true
		switch {
		case e.Repository == "":
			p.add(at+".repository", "required when there is more than one repository")
		case !repos[e.Repository]:
			p.add(at+".repository", "no repository is named %q", e.Repository)
		}
		if e.Branch == "" {
			p.add(at+".branch", "required")
		}
		if clean := path.Clean(e.Path); path.IsAbs(e.Path) || clean == ".." || strings.HasPrefix(clean, "../") {
			p.add(at+".path", "%q must be a folder inside the repository", e.Path)
		}
		if e.Namespace != "" {
			if errs := validation.IsDNS1123Label(e.Namespace); len(errs) > 0 {
				p.add(at+".namespace", "%q is not a namespace name: %s", e.Namespace, errs[0])
			}
		}
		if e.Timeout.Duration < 0 {
			p.add(at+".timeout", "must not be negative")
		}
		if e.Drift != "correct" && e.Drift != "detect-only" {
			p.add(at+".drift", "must be \"correct\" or \"detect-only\", not %q", e.Drift)
		}
		for j, r := range e.Ignore {
			rat := fmt.Sprintf("%s.ignore[%d]", at, j)
			if len(r.Paths) == 0 {
				p.add(rat+".paths", "at least one JSON pointer such as /spec/replicas is required")
			}
			for k, ptr := range r.Paths {
				if !strings.HasPrefix(ptr, "/") {
					p.add(fmt.Sprintf("%s.paths[%d]", rat, k), "%q is not a JSON pointer: it must start with /", ptr)
				}
			}
			for _, glob := range []struct{ field, value string }{{"namespace", r.Namespace}, {"name", r.Name}} {
				if _, err := path.Match(glob.value, ""); err != nil {
					p.add(rat+"."+glob.field, "%q is not a valid pattern", glob.value)
				}
			}
		}
		if e.Health.Timeout.Duration < 0 {
			p.add(at+".health.timeout", "must not be negative")
		}
		if e.Health.Soak.Duration < 0 {
			p.add(at+".health.soak", "must not be negative")
		}
		if lb := e.Health.LoadBalancers; lb != LoadBalancersSkip && lb != LoadBalancersWait {
			p.add(at+".health.loadBalancers", "must be %q or %q, not %q", LoadBalancersSkip, LoadBalancersWait, lb)
		}
		if n := e.Health.RestartThreshold; n != nil && (*n < 1 || *n > maxRestartThreshold) {
			p.add(at+".health.restartThreshold", "must be between 1 and %d, not %d", maxRestartThreshold, *n)
		}
		if w := e.Health.RecentWindow.Duration; w < 0 || w > maxRecentWindow {
			p.add(at+".health.recentWindow", "must be between 0 and %s, not %s", maxRecentWindow, w)
		}
		validateScope(at, e, c.Agent.Namespace, p)
		validateAccount(at, e, c.Agent, p)
	}
	return names
}

// validateScope checks what an environment may write.
func validateScope(at string, e Environment, agentNS string, p *problems) {
	s := e.Scope
	if s.ClusterWide && len(s.ClusterKinds) > 0 {
		p.add(at+".scope.clusterKinds", "set with scope.clusterWide, which allows every cluster-scoped kind already: keep one of them")
	}
	for i, ns := range s.Namespaces {
		nat := fmt.Sprintf("%s.scope.namespaces[%d]", at, i)
		if strings.ContainsAny(ns, "*?[") {
			if _, err := path.Match(ns, ""); err != nil {
				p.add(nat, "%q is not a valid pattern", ns)
			}
		} else if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			p.add(nat, "%q is not a namespace name or pattern: %s", ns, errs[0])
		}
		if ns == agentNS && ns != e.Namespace { // else said of namespace, below
			p.add(nat, "%q is the agent's own namespace (agent.namespace): no environment may write it", ns)
		}
	}
	if e.Namespace != "" && len(s.Namespaces) > 0 && !matchesAny(s.Namespaces, e.Namespace) {
		p.add(at+".namespace", "%q is not in scope.namespaces %v: the environment could not write its own default namespace", e.Namespace, s.Namespaces)
	}
	if e.Namespace == agentNS {
		p.add(at+".namespace", "%q is the agent's own namespace (agent.namespace): no environment may write it", e.Namespace)
	}
	for i, k := range s.ClusterKinds {
		if err := validClusterKind(k); err != "" {
			p.add(fmt.Sprintf("%s.scope.clusterKinds[%d]", at, i), "%q %s", k, err)
		}
	}
}

func matchesAny(patterns []string, name string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// validClusterKind checks "Kind" or "Kind.group"; it returns what is wrong.
func validClusterKind(k string) string {
	kind, group, _ := strings.Cut(k, ".")
	if kind == "" || kind[0] < 'A' || kind[0] > 'Z' || strings.ContainsFunc(kind, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		return "is not a kind: write \"Kind\" for the core group or \"Kind.group\", e.g. \"ClusterRole.rbac.authorization.k8s.io\""
	}
	if group != "" {
		if errs := validation.IsDNS1123Subdomain(group); len(errs) > 0 {
			return fmt.Sprintf("has an invalid group %q: %s", group, errs[0])
		}
	}
	return ""
}

// validateAccount checks the ServiceAccount an environment runs as.
func validateAccount(at string, e Environment, a Agent, p *problems) {
	if e.ServiceAccount == "" {
		if a.RequireServiceAccount {
			p.add(at+".serviceAccount", "required: agent.requireServiceAccount is true (set it here or set agent.defaultServiceAccount)")
		}
		return
	}
	if msg := accountProblem(e.ServiceAccount); msg != "" {
		if e.ServiceAccount != a.DefaultServiceAccount { // said once, at the agent
			p.add(at+".serviceAccount", "%q %s", e.ServiceAccount, msg)
		}
		return
	}
	ns, _, _ := e.Account()
	switch {
	case ns == "":
		p.add(at+".serviceAccount", "%q names no namespace and the environment has none: write \"namespace/name\"", e.ServiceAccount)
	case ns == a.Namespace:
		p.add(at+".serviceAccount", "%q is in the agent's own namespace (agent.namespace), whose accounts hold the agent's rights: use an account in another namespace", e.ServiceAccount)
	}
}

// accountProblem checks "name" or "namespace/name"; it returns what is wrong.
func accountProblem(s string) string {
	ns, name, found := strings.Cut(s, "/")
	if !found {
		ns, name = "", s
	} else if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "has an invalid namespace: " + errs[0]
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || strings.Contains(name, "/") {
		return "is not \"name\" or \"namespace/name\" of a ServiceAccount"
	}
	return ""
}

func allReferenceKnownRepositories(c *Config) bool {
	for _, e := range c.Environments {
		if c.Repository(e.Repository) == nil {
			return false
		}
	}
	return true
}

// addFields adds the problems of err, whose messages are "<field>: <problem>"
// relative to at (several joined, as source and promote validation return
// them), under their full paths.
func (p *problems) addFields(at string, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		if field, msg, ok := strings.Cut(e.Error(), ": "); ok {
			p.add(at+"."+field, "%s", msg)
		} else {
			p.add(at, "%v", e)
		}
	}
}

// validateNames checks a list of environment references: each known, none
// twice.
func validateNames(p *problems, field string, list []string, envs map[string]bool) {
	seen := map[string]bool{}
	for i, n := range list {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !envs[n]:
			p.add(at, "no environment is named %q", n)
		case seen[n]:
			p.add(at, "%q is listed twice", n)
		}
		seen[n] = true
	}
}

// Bounds of the health settings: past them a setting is a typo, not a
// choice (a container restarted 1000 times has long been failing; an OOM
// kill a day old says nothing about today).
const (
	maxRestartThreshold = 100
	maxRecentWindow     = 24 * time.Hour
)

// validatePipelines checks each pipeline, then what pipelines must not
// share: a name, an environment, a promotion branch.
func validatePipelines(c *Config, envs map[string]bool, p *problems) {
	if c.Pipeline != nil && len(c.Pipelines) > 0 {
		p.add("pipeline", "set pipeline (one pipeline) or pipelines (several), not both")
		return
	}
	names := map[string]bool{}
	owner := map[string]string{} // environment -> the pipeline listing it
	branches := map[string]string{}
	for i := range c.Pipelines {
		pl := &c.Pipelines[i]
		switch {
		case pl.Name == "":
			p.add(pl.at+".name", "required: name the application or team, e.g. shop")
		case names[pl.Name]:
			p.add(pl.at+".name", "%q is used by another pipeline", pl.Name)
		default:
			if errs := validation.IsDNS1123Label(pl.Name); len(errs) > 0 {
				p.add(pl.at+".name", "%q is not a DNS label: %s", pl.Name, errs[0])
			}
		}
		names[pl.Name] = true
		if pl.at != "pipeline" && len(pl.Order) == 0 {
			p.add(pl.at+".order", "required: list the pipeline's environments from first to last")
		}
		validatePipeline(c, pl, envs, p)
		for j, n := range pl.Order {
			if other, taken := owner[n]; taken && other != pl.Name && envs[n] {
				p.add(fmt.Sprintf("%s.order[%d]", pl.at, j), "%q is in pipeline %q already: an environment belongs to one pipeline", n, other)
			}
			owner[n] = pl.Name
		}
		// Promotion and revert branches are named after an edge's ends
		// (baton/promote-<from>-to-<to>): hyphens in environment names
		// could make two edges of one repository share a branch.
		for j, e := range pl.Edges {
			env := c.Environment(e.From)
			if env == nil {
				continue
			}
			key, name := env.Repository+"\x00"+e.From+"-to-"+e.To, e.From+" -> "+e.To
			if other, taken := branches[key]; taken && other != name {
				field := fmt.Sprintf("%s.edges[%d]", pl.at, j)
				if pl.edgesFromOrder {
					field = pl.at + ".order"
				}
				p.add(field, "%s would use the promotion branch baton/promote-%s-to-%s of %s: rename an environment",
					name, e.From, e.To, other)
			}
			branches[key] = name
		}
	}
}

func validatePipeline(c *Config, pl *Pipeline, envs map[string]bool, p *problems) {
	at := pl.at
	forge := c.ForgeOf(pl)
	validateNames(p, at+".order", pl.Order, envs)
	if len(pl.Edges) > 0 && len(pl.Order) == 0 {
		p.add(at+".order", "required when %s.edges is set: list the environments from first to last", at)
	}
	// One promoter writes every branch of the pipeline through one
	// repository. The promote package's rules for an environment of a
	// pipeline apply here, so that what passes here does not fail when the
	// agent starts: an overlay folder of its own below the root (never
	// promoted) and a branch of its own.
	first := ""
	branches := map[string]string{}
	for i, n := range pl.Order {
		k := slices.IndexFunc(c.Environments, func(e Environment) bool { return e.Name == n })
		if k < 0 {
			continue
		}
		e := &c.Environments[k]
		if err := promote.ValidOverlay(path.Clean(e.Path)); err != nil {
			p.add(fmt.Sprintf("environments[%d].path", k), "%v: %q is in %s.order", err, n, at)
		}
		if other, ok := branches[e.Branch]; ok && e.Branch != "" {
			p.add(fmt.Sprintf("%s.order[%d]", at, i), "%q follows branch %q, as %q does: a pipeline's environments each need a branch of their own", n, e.Branch, other)
		}
		branches[e.Branch] = n
		if c.Repository(e.Repository) == nil {
			continue
		}
		if first == "" {
			first = e.Repository
		} else if e.Repository != first {
			p.add(fmt.Sprintf("%s.order[%d]", at, i), "%q is in repository %q, the pipeline's first environment in %q: a pipeline's environments share one repository", n, e.Repository, first)
		}
	}
	position := map[string]int{}
	for i, n := range pl.Order {
		position[n] = i
	}
	edges := map[[2]string]bool{}
	needsPrometheus := false
	for i, e := range pl.Edges {
		eat := fmt.Sprintf("%s.edges[%d]", at, i)
		if pl.edgesFromOrder {
			// Derived from order, already checked: only the policy's need
			// for a forge remains to be said.
			if envs[e.From] && envs[e.To] && forge.Kind == ForgeNone {
				p.add(at+".order", "%s -> %s would open a pull request (the default policy) but forge.kind is \"none\": configure a forge, or list %s.edges with policy \"auto\"", e.From, e.To, at)
			}
			continue
		}
		for _, end := range []struct{ field, name string }{{"from", e.From}, {"to", e.To}} {
			switch {
			case end.name == "":
				p.add(eat+"."+end.field, "required")
			case !envs[end.name]:
				p.add(eat+"."+end.field, "no environment is named %q", end.name)
			case len(pl.Order) > 0:
				if _, ok := position[end.name]; !ok {
					p.add(eat+"."+end.field, "%q is not in %s.order", end.name, at)
				}
			}
		}
		switch {
		case e.From != "" && e.From == e.To:
			p.add(eat, "promotes %q to itself", e.From)
		case edges[[2]string{e.From, e.To}]:
			p.add(eat, "the edge %s -> %s is listed twice", e.From, e.To)
		case len(pl.Order) > 0:
			if f, ok := position[e.From]; ok {
				if t, ok := position[e.To]; ok && t < f {
					p.add(eat, "%s -> %s goes against %s.order", e.From, e.To, at)
				}
			}
		}
		edges[[2]string{e.From, e.To}] = true
		switch e.Policy {
		case PolicyAuto:
		case PolicyPullRequest:
			if forge.Kind == ForgeNone {
				p.add(eat+".policy", "\"pull-request\" needs a forge, and forge.kind is \"none\"")
			}
		default:
			p.add(eat+".policy", "must be \"auto\" or \"pull-request\", not %q", e.Policy)
		}
		gates := map[string]bool{}
		for j, g := range e.Gates.Metrics {
			gat := fmt.Sprintf("%s.gates.metrics[%d]", eat, j)
			needsPrometheus = true
			if g.Name != "" && gates[g.Name] {
				p.add(gat+".name", "%q is used by another gate of this edge", g.Name)
			}
			gates[g.Name] = true
			p.addFields(gat, g.QueryGate().Validate())
		}
	}
	if needsPrometheus && pl.Prometheus.URL == "" {
		p.add(at+".prometheus.url", "required when a gate has metrics")
	}
	for _, list := range []struct {
		field    string
		patterns []string
	}{{at + ".paths.include", pl.Paths.Include}, {at + ".paths.exclude", pl.Paths.Exclude}} {
		for i, pat := range list.patterns {
			if err := promote.ValidGlob(pat); err != nil {
				p.add(fmt.Sprintf("%s[%d]", list.field, i), "%v", err)
			}
		}
	}
	if !strings.Contains(pl.Author.Email, "@") {
		p.add(at+".author.email", "%q is not an email address", pl.Author.Email)
	}
	if pl.SigningKeyPassphraseFile != "" && pl.SigningKeyFile == "" {
		p.add(at+".signingKeyPassphraseFile", "set without %s.signingKeyFile", at)
	}
	if pl.Forge != nil {
		validateForge(at+".forge", forge, p)
	}
}

func validateForge(at string, f Forge, p *problems) {
	switch f.Kind {
	case ForgeNone:
		return
	case ForgeGitea, ForgeGitHub, ForgeGitLab:
	default:
		p.add(at+".kind", "must be \"none\", \"gitea\", \"github\" or \"gitlab\", not %q", f.Kind)
		return
	}
	if f.URL == "" {
		p.add(at+".url", "required for a %s forge", f.Kind)
	} else if !strings.HasPrefix(f.URL, "https://") && !strings.HasPrefix(f.URL, "http://") {
		p.add(at+".url", "%q must start with https:// or http://", f.URL)
	}
	if f.TokenFile == "" {
		p.add(at+".tokenFile", "required for a %s forge", f.Kind)
	}
	if f.Kind == ForgeGitLab {
		parts := strings.Split(f.Repository, "/")
		if len(parts) < 2 || slices.Contains(parts, "") {
			p.add(at+".repository", "must be the project's full path \"group/name\" (subgroups allowed), not %q", f.Repository)
		}
	} else if owner, name, ok := strings.Cut(f.Repository, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		p.add(at+".repository", "must be \"owner/name\", not %q", f.Repository)
	}
}

// validatePreview checks forge.preview, which only the top-level forge
// sets.
func validatePreview(f Forge, p *problems) {
	if f.Preview.Interval.Duration < 0 {
		p.add("forge.preview.interval", "must not be negative")
	}
	if f.Preview.MaxCommentBytes < 4096 {
		p.add("forge.preview.maxCommentBytes", "%d is too small: at least 4096", f.Preview.MaxCommentBytes)
	}
}

// maxWorkers bounds agent.workers and agent.healthWaits: past it a value
// is a typo, not a choice.
const maxWorkers = 4096

func validateAgent(a Agent, p *problems) {
	for _, f := range []struct {
		field string
		n     int
	}{{"agent.workers", a.Workers}, {"agent.healthWaits", a.HealthWaits}} {
		if f.n < 0 || f.n > maxWorkers {
			p.add(f.field, "must be between 1 and %d (0 for the default), not %d", maxWorkers, f.n)
		}
	}
	if a.KubeAPIBurst < 0 {
		p.add("agent.kubeAPIBurst", "must not be negative")
	}
	if errs := validation.IsDNS1123Label(a.Namespace); len(errs) > 0 {
		p.add("agent.namespace", "%q is not a namespace name: %s", a.Namespace, errs[0])
	}
	le := a.LeaderElection
	if errs := validation.IsDNS1123Subdomain(le.LeaseName); len(errs) > 0 {
		p.add("agent.leaderElection.leaseName", "%q is not a valid name: %s", le.LeaseName, errs[0])
	}
	// client-go refuses these combinations at start-up; say so here, where
	// the fields are named.
	if le.LeaseDuration.Duration <= le.RenewDeadline.Duration {
		p.add("agent.leaderElection.leaseDuration", "%s must be longer than renewDeadline (%s)", le.LeaseDuration.Duration, le.RenewDeadline.Duration)
	}
	if float64(le.RenewDeadline.Duration) <= 1.2*float64(le.RetryPeriod.Duration) {
		p.add("agent.leaderElection.renewDeadline", "%s must be longer than 1.2 × retryPeriod (%s)", le.RenewDeadline.Duration, le.RetryPeriod.Duration)
	}
	if le.RetryPeriod.Duration < 0 {
		p.add("agent.leaderElection.retryPeriod", "must not be negative")
	}
	if a.DefaultServiceAccount != "" {
		if msg := accountProblem(a.DefaultServiceAccount); msg != "" {
			p.add("agent.defaultServiceAccount", "%q %s", a.DefaultServiceAccount, msg)
		}
	}
}
