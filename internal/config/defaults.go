package config

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/baton-gitops/baton/source"
)

// Defaults, the one place they are written down. A field left out of
// baton.yaml (or set to its zero value) takes the value below.
//
//	field                                   default
//	repositories[].branches                 the branches of the environments that use the repository
//	repositories[].interval                 1m    (source.DefaultInterval)
//	repositories[].timeout                  1m    (source.DefaultTimeout)
//	repositories[].auth.username            git   (source.DefaultUsername)
//	environments[].repository               the only repository, when there is exactly one
//	environments[].path                     .     (the branch's root folder)
//	environments[].namespace                none: namespaced objects must name one
//	environments[].timeout                  5m
//	environments[].drift                    correct
//	environments[].prune                    true
//	environments[].health.timeout           5m
//	environments[].health.soak              2m
//	environments[].health.loadBalancers     skip  (a LoadBalancer Service's address is not waited for)
//	environments[].health.restartThreshold  3     (health.DefaultRestartThreshold)
//	environments[].health.recentWindow      10m   (health.DefaultRecentWindow)
//	environments[].scope.namespaces         the environment's namespace, when it has one
//	environments[].scope.clusterKinds       none
//	environments[].scope.clusterWide        false
//	environments[].serviceAccount           agent.defaultServiceAccount
//	sync                                    none: an agent syncs nothing until told
//	pipeline.name                           default (pipeline: is the one pipeline of pipelines:)
//	pipelines[].edges                       every consecutive pair of pipelines[].order
//	pipelines[].edges[].policy              pull-request
//	pipelines[].paths.include               everything (exclude still applies)
//	pipelines[].author.name                 Baton
//	pipelines[].author.email                baton@localhost
//	pipelines[].forge.*                     forge.* (field by field)
//	forge.kind                              none
//	forge.url                               https://api.github.com when kind is github, https://gitlab.com when gitlab
//	forge.preview.enabled                   true: pull requests into synced environments' branches get previews
//	forge.preview.interval                  1m, how often open pull requests are listed (webhooks trigger at once)
//	forge.preview.maxCommentBytes           60000
//	forge.deployStatuses                    true: synced commits get the status baton/<environment>
//	webhook.secretFile                      none: the webhook receiver is off
//	listen.http                             :8080
//	listen.webhook                          none: the webhook is served on listen.http
//	repositories[].allowInsecureHTTP        false (also forge. and pipeline.prometheus.): credentials over http:// are refused, loopback excepted
//	agent.namespace                         baton-system
//	agent.cacheDir                          the user cache folder + /baton, resolved when the agent starts
//	agent.workers                           4 × GOMAXPROCS (the container's CPU limit), resolved when the agent starts
//	agent.healthWaits                       64 × GOMAXPROCS, resolved when the agent starts
//	agent.kubeAPIQPS, agent.kubeAPIBurst    300, 600 (each client's own limit)
//	agent.leaderElection.enabled            true
//	agent.leaderElection.leaseName          baton-agent
//	agent.leaderElection.leaseDuration      15s
//	agent.leaderElection.renewDeadline      10s
//	agent.leaderElection.retryPeriod        2s
//	agent.defaultServiceAccount             none: environments without one run as the agent
//	agent.requireServiceAccount             false
//	limits.maxBlobSize                      16Mi
//	limits.maxFileSize                      8Mi
//	limits.maxObjects                       10000
//	limits.maxAliasNodes                    10000
//	limits.renderMemory                     256Mi
//	limits.renderTimeout                    5m
//	peers[].namespace                       agent.namespace (for a context peer)
const (
	DefaultPath            = "."
	DefaultSyncTimeout     = 5 * time.Minute
	DefaultDrift           = "correct"
	DefaultHealthTimeout   = 5 * time.Minute
	DefaultSoak            = 2 * time.Minute
	DefaultLoadBalancers   = LoadBalancersSkip
	DefaultRestarts        = 3
	DefaultRecentWindow    = 10 * time.Minute
	DefaultPolicy          = PolicyPullRequest
	DefaultAuthorName      = "Baton"
	DefaultAuthorEmail     = "baton@localhost"
	DefaultForgeKind       = ForgeNone
	DefaultGitHubAPIURL    = "https://api.github.com"
	DefaultGitLabURL       = "https://gitlab.com"
	DefaultPreviewInterval = time.Minute
	DefaultPreviewMaxBytes = 60000
	DefaultHTTPAddress     = ":8080"
	DefaultNamespace       = "baton-system"
	DefaultLeaseName       = "baton-agent"
	DefaultLeaseDuration   = 15 * time.Second
	DefaultRenewDeadline   = 10 * time.Second
	DefaultRetryPeriod     = 2 * time.Second
	DefaultLeaderElection  = true
	DefaultMaxObjects      = 10_000
	DefaultMaxAliasNodes   = 10_000
	DefaultRenderTimeout   = 5 * time.Minute
)

// Quantity defaults (not constants in Go).
var (
	DefaultMaxBlobSize  = resource.MustParse("16Mi")
	DefaultMaxFileSize  = resource.MustParse("8Mi")
	DefaultRenderMemory = resource.MustParse("256Mi")
)

// applyDefaults fills every zero value that has a default (see the table
// above). Values that need validating first (references) are filled only
// when unambiguous; validate reports the rest.
func applyDefaults(c *Config) {
	if len(c.Repositories) == 1 {
		for i := range c.Environments {
			if c.Environments[i].Repository == "" {
				c.Environments[i].Repository = c.Repositories[0].Name
			}
		}
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		for _, e := range c.Environments {
			if e.Repository == r.Name && e.Branch != "" && !contains(r.Branches, e.Branch) {
				r.Branches = append(r.Branches, e.Branch)
			}
		}
		setDuration(&r.Interval, source.DefaultInterval)
		setDuration(&r.Timeout, source.DefaultTimeout)
		if r.Auth.Username == "" {
			r.Auth.Username = source.DefaultUsername
		}
	}
	for i := range c.Environments {
		e := &c.Environments[i]
		setString(&e.Path, DefaultPath)
		setDuration(&e.Timeout, DefaultSyncTimeout)
		setString(&e.Drift, DefaultDrift)
		if e.Prune == nil {
			e.Prune = ptr(true)
		}
		setDuration(&e.Health.Timeout, DefaultHealthTimeout)
		setDuration(&e.Health.Soak, DefaultSoak)
		setString(&e.Health.LoadBalancers, DefaultLoadBalancers)
		if e.Health.RestartThreshold == nil {
			e.Health.RestartThreshold = ptr(int32(DefaultRestarts))
		}
		setDuration(&e.Health.RecentWindow, DefaultRecentWindow)
		if len(e.Scope.Namespaces) == 0 && !e.Scope.ClusterWide && e.Namespace != "" {
			e.Scope.Namespaces = []string{e.Namespace}
		}
		setString(&e.ServiceAccount, c.Agent.DefaultServiceAccount)
	}
	l := &c.Limits
	if l.MaxBlobSize.IsZero() {
		l.MaxBlobSize = DefaultMaxBlobSize.DeepCopy()
	}
	if l.MaxFileSize.IsZero() {
		l.MaxFileSize = DefaultMaxFileSize.DeepCopy()
	}
	if l.MaxObjects == 0 {
		l.MaxObjects = DefaultMaxObjects
	}
	if l.MaxAliasNodes == 0 {
		l.MaxAliasNodes = DefaultMaxAliasNodes
	}
	if l.RenderMemory.IsZero() {
		l.RenderMemory = DefaultRenderMemory.DeepCopy()
	}
	setDuration(&l.RenderTimeout, DefaultRenderTimeout)
	normalizePipelines(c)
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if len(p.Edges) == 0 {
			for i := 1; i < len(p.Order); i++ {
				p.Edges = append(p.Edges, Edge{From: p.Order[i-1], To: p.Order[i]})
				p.edgesFromOrder = true
			}
		}
		for i := range p.Edges {
			setString(&p.Edges[i].Policy, DefaultPolicy)
		}
		setString(&p.Author.Name, DefaultAuthorName)
		setString(&p.Author.Email, DefaultAuthorEmail)
	}
	setString(&c.Forge.Kind, DefaultForgeKind)
	switch c.Forge.Kind {
	case ForgeGitHub:
		setString(&c.Forge.URL, DefaultGitHubAPIURL)
	case ForgeGitLab:
		setString(&c.Forge.URL, DefaultGitLabURL)
	}
	setDuration(&c.Forge.Preview.Interval, DefaultPreviewInterval)
	if c.Forge.Preview.MaxCommentBytes == 0 {
		c.Forge.Preview.MaxCommentBytes = DefaultPreviewMaxBytes
	}
	setString(&c.Listen.HTTP, DefaultHTTPAddress)
	a := &c.Agent
	setString(&a.Namespace, DefaultNamespace)
	le := &a.LeaderElection
	if le.Enabled == nil {
		le.Enabled = ptr(DefaultLeaderElection)
	}
	setString(&le.LeaseName, DefaultLeaseName)
	setDuration(&le.LeaseDuration, DefaultLeaseDuration)
	setDuration(&le.RenewDeadline, DefaultRenewDeadline)
	setDuration(&le.RetryPeriod, DefaultRetryPeriod)
}

// normalizePipelines moves the single-pipeline form into Pipelines, as
// the pipeline named DefaultPipelineName unless it names itself, and
// records each pipeline's field path for errors. Both forms at once are
// left for validate to refuse.
func normalizePipelines(c *Config) {
	for i := range c.Pipelines {
		c.Pipelines[i].at = fmt.Sprintf("pipelines[%d]", i)
	}
	if c.Pipeline == nil || len(c.Pipelines) > 0 {
		return
	}
	p := *c.Pipeline
	p.at = "pipeline"
	setString(&p.Name, DefaultPipelineName)
	c.Pipelines = []Pipeline{p}
	c.Pipeline = nil
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setDuration(d *source.Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

func ptr[T any](v T) *T { return &v }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
