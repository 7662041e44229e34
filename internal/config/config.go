// Package config reads baton.yaml: the repositories Baton follows, the
// environments it renders and applies, which of them this agent syncs, the
// promotion pipeline between them, the forge that holds pull requests, and
// the agent's own settings.
//
// Loading is strict: an unknown field, a value of the wrong type, a missing
// required value or a reference to an environment or repository that does
// not exist is an error naming the field path, e.g.
// "environments[2].branch: required". Defaults are listed in one place,
// defaults.go.
package config

import (
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/baton-gitops/baton/source"
)

// Config is the whole of baton.yaml. Field tags are JSON because the file is
// read with sigs.k8s.io/yaml, which converts YAML to JSON first.
type Config struct {
	// Repositories are the git repositories environments come from.
	Repositories []Repository `json:"repositories"`
	// Environments are the deployment targets, each an overlay on a branch.
	Environments []Environment `json:"environments"`
	// Sync names the environments this agent applies: those that live in
	// its cluster. Other environments may still appear in the pipeline.
	Sync []string `json:"sync,omitempty"`
	// Pipeline is how releases move from one environment to the next, for
	// a configuration of one application: it is one pipeline named
	// "default" (or its name). Set it or Pipelines, not both. Loading
	// moves it into Pipelines, so that code reads Pipelines only.
	Pipeline *Pipeline `json:"pipeline,omitempty"`
	// Pipelines are the promotion paths of several applications or teams
	// served by one agent, each with its own name, order, edges, gates,
	// promotable paths and forge repository. An environment belongs to at
	// most one pipeline.
	Pipelines []Pipeline `json:"pipelines,omitempty"`
	// Forge is where promotion pull requests are opened; a pipeline's
	// forge overrides it field by field.
	Forge Forge `json:"forge,omitempty"`
	// Webhook configures the push webhook receiver.
	Webhook Webhook `json:"webhook,omitempty"`
	// Listen holds the agent's listen addresses.
	Listen Listen `json:"listen,omitempty"`
	// Agent holds the in-cluster agent's own settings.
	Agent Agent `json:"agent,omitempty"`
	// Limits bound what one render of a commit may read and produce.
	Limits Limits `json:"limits,omitempty"`
	// Peers are the agents of the environments this agent does not sync
	// (other clusters), whose status `baton status` shows beside its own.
	Peers []Peer `json:"peers,omitempty"`
}

// Peer is another Baton agent, reached through its HTTP status or through
// the Environment objects it keeps in its cluster. Exactly one of URL and
// Context is set.
type Peer struct {
	// Name labels the peer in `baton status`. Required.
	Name string `json:"name"`
	// URL is the agent's HTTP address; /api/status is read from it.
	URL string `json:"url,omitempty"`
	// Context is a kubeconfig context whose cluster holds the agent's
	// Environment objects, in Namespace (default: agent.namespace).
	Context   string `json:"context,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// Repository is one git repository. Its settings are the source package's
// (url, auth, interval, timeout, caBundleFile, insecureSkipHostKeyCheck,
// signatures), with a name for environments to refer to.
//
// Signed commits are configured here, per repository, because one object
// store and one keyring verify all of a repository's branches:
// signatures.branches lists the environment branches that require a trusted
// signature (empty means all of them).
type Repository struct {
	// Name is how environments refer to the repository. Required.
	Name string `json:"name"`
	source.RepositorySettings
	// AllowInsecureHTTP accepts an http:// URL with credentials
	// (auth.passwordFile or auth.tokenFile), which then cross the network
	// in clear text. Without it such a URL is an error, unless its host is
	// the loopback interface.
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
}

// Environment is one deployment target: an overlay folder on a branch,
// applied to one cluster.
type Environment struct {
	// Name identifies the environment; a DNS label (it names the inventory
	// and labels every applied object). Required.
	Name string `json:"name"`
	// Repository names an entry of repositories. Optional when there is
	// exactly one repository.
	Repository string `json:"repository,omitempty"`
	// Branch is the environment's branch, e.g. env/dev. Required.
	Branch string `json:"branch"`
	// Path is the overlay folder within the branch. An environment of the
	// pipeline needs a folder below the root: overlays are never promoted.
	Path string `json:"path,omitempty"`
	// Namespace is given to namespaced objects that name none. Empty makes
	// such objects an error.
	Namespace string `json:"namespace,omitempty"`
	// Timeout bounds one sync pass (render, apply, prune).
	Timeout source.Duration `json:"timeout,omitempty"`
	// Drift is "correct" (re-apply objects edited by hand) or "detect-only"
	// (report them, change nothing).
	Drift string `json:"drift,omitempty"`
	// Suspend stops applying and promoting; the environment is still polled
	// and reported.
	Suspend bool `json:"suspend,omitempty"`
	// Prune deletes objects that left git. An object's baton.dev/prune
	// annotation overrides it.
	Prune *bool `json:"prune,omitempty"`
	// AllowEmpty lets an empty render prune everything; without it an empty
	// render (usually a broken overlay) is refused.
	AllowEmpty bool `json:"allowEmpty,omitempty"`
	// Ignore names fields that other actors own (an autoscaler's replicas),
	// which Baton neither sets nor compares.
	Ignore []IgnoreRule `json:"ignore,omitempty"`
	// Health tunes the wait after a sync and the soak before promotion.
	Health Health `json:"health,omitempty"`
	// Scope is what the environment may write; a revision with any object
	// outside it is refused before anything is applied or pruned.
	Scope Scope `json:"scope,omitempty"`
	// ServiceAccount is impersonated by every request made for the
	// environment (apply, prune, diff, reads, health watches), so that the
	// cluster's RBAC is the final fence: "name" (in the environment's
	// namespace) or "namespace/name". Empty means agent.defaultServiceAccount,
	// or the agent's own identity when that is empty too.
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// Scope is what an environment may write. Baton's own namespace and
// objects are off-limits whatever it says.
type Scope struct {
	// Namespaces the environment may write, as glob patterns ("shop-dev",
	// "team-a-*"). A Namespace object is in scope only if its name matches
	// too. Default: the environment's namespace alone, when it has one.
	Namespaces []string `json:"namespaces,omitempty"`
	// ClusterKinds are the cluster-scoped kinds it may write, as "Kind" for
	// the core group ("Namespace") or "Kind.group"
	// ("ClusterRole.rbac.authorization.k8s.io"). Default: none.
	ClusterKinds []string `json:"clusterKinds,omitempty"`
	// ClusterWide lets it write every namespace and every cluster-scoped
	// kind (Baton's own still excepted): the explicit opt-in of a platform
	// environment. It excludes Namespaces and ClusterKinds.
	ClusterWide bool `json:"clusterWide,omitempty"`
}

// Limits bound the untrusted input of one render, so that a hostile commit
// fails its environment and nothing else. See render.Limits.
type Limits struct {
	// MaxBlobSize bounds one object a git fetch may bring: a commit adding
	// a larger file fails its branch before the object is inflated (git's
	// packs compress a gigabyte of one byte to a megabyte).
	MaxBlobSize resource.Quantity `json:"maxBlobSize,omitempty"`
	// MaxFileSize bounds one file a render reads.
	MaxFileSize resource.Quantity `json:"maxFileSize,omitempty"`
	// MaxObjects bounds the objects one render produces, counted before
	// Kustomize runs (an exponential fan-out is refused unbuilt) and after.
	MaxObjects int `json:"maxObjects,omitempty"`
	// MaxAliasNodes bounds the YAML nodes the aliases of one file expand to.
	MaxAliasNodes int `json:"maxAliasNodes,omitempty"`
	// RenderMemory bounds the heap of one render, which runs in a process
	// of its own that is stopped past it. At most two renders run at once.
	RenderMemory resource.Quantity `json:"renderMemory,omitempty"`
	// RenderTimeout bounds one render; the render process is killed past it.
	RenderTimeout source.Duration `json:"renderTimeout,omitempty"`
}

// IgnoreRule selects objects and names fields in them; empty selectors match
// everything. It maps onto reconciler.IgnoreRule.
type IgnoreRule struct {
	// Group is the API group, exactly ("" for core objects and for any).
	Group string `json:"group,omitempty"`
	// Kind is the kind, exactly.
	Kind string `json:"kind,omitempty"`
	// Namespace and Name are path.Match globs.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// Paths are JSON pointers (RFC 6901) such as /spec/replicas. At least one.
	Paths []string `json:"paths"`
}

// Health tunes health checking after a sync.
type Health struct {
	// Timeout bounds the wait for the applied objects to become ready; past
	// it the environment is Degraded.
	Timeout source.Duration `json:"timeout,omitempty"`
	// Soak is how long the environment must stay healthy before its revision
	// may be promoted.
	Soak source.Duration `json:"soak,omitempty"`
	// LoadBalancers says whether a Service of type LoadBalancer is ready
	// only once it has an address: "skip" (the default) does not wait for
	// one, so a cluster without a load-balancer controller (kind, minikube
	// without a tunnel, bare metal without MetalLB) does not hold the
	// environment Progressing for ever and freeze its promotions; "wait"
	// waits for the address, on clusters that always give one.
	LoadBalancers string `json:"loadBalancers,omitempty"`
	// RestartThreshold is how many restarts of a crash-looping or
	// OOM-killed container make the failure certain, ending the wait
	// before its timeout. Lower fails faster but may condemn a container
	// that crashes while a dependency starts. 1 to 100; default 3 (a
	// pointer, so that an explicit 0 is an error rather than the default).
	RestartThreshold *int32 `json:"restartThreshold,omitempty"`
	// RecentWindow is how long after an OOM kill a workload that is ready
	// again still counts as Degraded. Up to 24h; default 10m.
	RecentWindow source.Duration `json:"recentWindow,omitempty"`
}

// Values of Health.LoadBalancers.
const (
	LoadBalancersSkip = "skip"
	LoadBalancersWait = "wait"
)

// DefaultPipelineName names the pipeline of the single-pipeline form
// (pipeline:) when it gives no name.
const DefaultPipelineName = "default"

// Pipeline is the promotion path between environments.
type Pipeline struct {
	// Name identifies the pipeline in status, metrics, Events and pull
	// requests; a DNS label. Required in pipelines:, DefaultPipelineName
	// for pipeline:.
	Name string `json:"name,omitempty"`
	// Order lists environments from first to last (dev, staging, prod).
	Order []string `json:"order,omitempty"`
	// Edges are the allowed promotions. When empty, every consecutive pair
	// of Order is an edge with the default policy.
	Edges []Edge `json:"edges,omitempty"`
	// Paths selects the files a promotion copies from one branch to the next.
	Paths Paths `json:"paths,omitempty"`
	// Author signs promotion and set-image commits.
	Author Author `json:"author,omitempty"`
	// Prometheus is queried by metric gates.
	Prometheus Prometheus `json:"prometheus,omitempty"`
	// SigningKeyFile is an ASCII-armored OpenPGP private key (`gpg
	// --export-secret-keys --armor`) that signs promotion and revert
	// commits; empty leaves them unsigned.
	SigningKeyFile string `json:"signingKeyFile,omitempty"`
	// SigningKeyPassphraseFile holds the passphrase of an encrypted
	// SigningKeyFile (a trailing newline is ignored); empty means the key
	// is not encrypted.
	SigningKeyPassphraseFile string `json:"signingKeyPassphraseFile,omitempty"`
	// Forge overrides the top-level forge for this pipeline's pull
	// requests: typically its repository ("team/app"), and its token when
	// the team's repository needs another. Unset fields are the top-level
	// forge's. Read it through Config.ForgeOf.
	Forge *Forge `json:"forge,omitempty"`

	// edgesFromOrder is set when Edges were derived from Order, so that
	// errors about them point at the field the user wrote.
	edgesFromOrder bool
	// at is the pipeline's field path in the file ("pipeline" or
	// "pipelines[1]"), for errors.
	at string
}

// Promotion policies (Edge.Policy).
const (
	// PolicyAuto pushes the promotion commit to the target branch.
	PolicyAuto = "auto"
	// PolicyPullRequest opens a pull request for a person to merge.
	PolicyPullRequest = "pull-request"
)

// Edge is one allowed promotion.
type Edge struct {
	// From and To are environment names. Required.
	From string `json:"from"`
	To   string `json:"to"`
	// Policy is "auto" or "pull-request".
	Policy string `json:"policy,omitempty"`
	// Gates must all pass before the promotion happens.
	Gates Gates `json:"gates,omitempty"`
	// RevertOnUnhealthy makes the agent that syncs To revert a promotion of
	// this edge that leaves To degraded: a revert commit pushed to To's
	// branch on an auto edge, a revert pull request otherwise. The reverted
	// content is then held. Default false: reverting is usually a person's
	// decision.
	RevertOnUnhealthy bool `json:"revertOnUnhealthy,omitempty"`
}

// Gates are the conditions of a promotion beyond the source environment
// being healthy for its soak time, which always applies.
type Gates struct {
	// Metrics are PromQL queries whose value must satisfy a comparison.
	Metrics []MetricGate `json:"metrics,omitempty"`
}

// MetricGate passes when the PromQL query returns a single value v with
// "v Op Threshold" true.
type MetricGate struct {
	// Name labels the gate in status, commits and metrics. Required.
	Name string `json:"name"`
	// Query is the PromQL expression. Required.
	Query string `json:"query"`
	// Op is one of <, <=, >, >=, ==, !=. Required.
	Op string `json:"op"`
	// Threshold is the right-hand side of the comparison.
	Threshold float64 `json:"threshold"`
}

// Paths selects files by slash-separated glob patterns relative to the
// repository root ("apps/**", "envs/*/images.yaml").
type Paths struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// Author is a commit author.
type Author struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Prometheus is the server metric gates query.
type Prometheus struct {
	// URL is the server's base URL. Required when any gate has metrics.
	URL string `json:"url,omitempty"`
	// BearerTokenFile holds a token sent with every query, if set.
	BearerTokenFile string `json:"bearerTokenFile,omitempty"`
	// AllowInsecureHTTP accepts an http:// URL with a bearerTokenFile; see
	// Repository.AllowInsecureHTTP.
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
}

// Forge kinds (Forge.Kind).
const (
	ForgeNone   = "none"
	ForgeGitea  = "gitea"
	ForgeGitHub = "github"
	ForgeGitLab = "gitlab"
)

// Forge is where pull requests are opened, previews posted and commit
// statuses set.
type Forge struct {
	// Kind is "none", "gitea", "github" or "gitlab". With "none",
	// pull-request edges are an error.
	Kind string `json:"kind,omitempty"`
	// URL is the API base URL (GitHub: https://api.github.com; Gitea and
	// GitLab: the server's root URL).
	URL string `json:"url,omitempty"`
	// TokenFile holds an access token allowed to open pull requests,
	// comment on them and set commit statuses.
	TokenFile string `json:"tokenFile,omitempty"`
	// Repository is "owner/name" on the forge; on GitLab the project's
	// full path, "group/subgroup/name".
	Repository string `json:"repository,omitempty"`
	// Preview comments on every open pull request into the branch of an
	// environment this agent syncs what merging it would change there.
	Preview Preview `json:"preview,omitempty"`
	// DeployStatuses sets the commit status baton/<environment> on every
	// commit an environment syncs: pending, then success once healthy or
	// failure with the cause.
	DeployStatuses *bool `json:"deployStatuses,omitempty"`
	// AllowInsecureHTTP accepts an http:// URL, over which the token
	// crosses the network in clear text; see Repository.AllowInsecureHTTP.
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
}

// Preview configures pull request previews.
type Preview struct {
	// Enabled turns previews on.
	Enabled *bool `json:"enabled,omitempty"`
	// Interval is how often open pull requests are listed, the fallback
	// when no pull request webhook arrives.
	Interval source.Duration `json:"interval,omitempty"`
	// MaxCommentBytes bounds a preview comment; diffs past it are left
	// out with a note.
	MaxCommentBytes int `json:"maxCommentBytes,omitempty"`
}

// IsEnabled reports whether previews are on.
func (p Preview) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// DeployStatusesEnabled reports whether deploy statuses are set.
func (f Forge) DeployStatusesEnabled() bool { return f.DeployStatuses == nil || *f.DeployStatuses }

// Webhook configures the push webhook receiver.
type Webhook struct {
	// SecretFile holds the shared secret webhooks are signed with. Empty
	// turns the receiver off: unsigned webhooks are never accepted.
	SecretFile string `json:"secretFile,omitempty"`
}

// Listen holds listen addresses.
type Listen struct {
	// HTTP serves /healthz, /readyz, /metrics, /api/status, and the
	// webhook unless Webhook is set.
	HTTP string `json:"http,omitempty"`
	// Webhook, when set, serves the webhook receiver alone, apart from
	// status and metrics, so that a network policy or an ingress can open
	// it to the forge without opening the rest.
	Webhook string `json:"webhook,omitempty"`
}

// Agent holds the in-cluster agent's settings.
type Agent struct {
	// Namespace holds the inventories and the leader-election Lease: the
	// agent's own namespace.
	Namespace string `json:"namespace,omitempty"`
	// CacheDir holds the git object stores (an emptyDir in the cluster).
	// Empty means the user cache folder (os.UserCacheDir) plus "baton".
	CacheDir string `json:"cacheDir,omitempty"`
	// Workers bounds the renders and applies that run at once, across all
	// environments: they take turns (round-robin), and work a webhook or
	// `baton sync` asked for goes first. 0 means 4 × GOMAXPROCS, which Go
	// sets from the container's CPU limit (a pass mostly waits for the API
	// server).
	Workers int `json:"workers,omitempty"`
	// HealthWaits bounds the waits for readiness after a sync that run at
	// once (each holds watches). 0 means 64 × GOMAXPROCS.
	HealthWaits int `json:"healthWaits,omitempty"`
	// KubeAPIQPS and KubeAPIBurst are the client-side rate limit of each
	// of the agent's Kubernetes clients (applies, health watches, Events,
	// Leases): requests a second, and bursts. 0 means 300 and 600; a
	// negative KubeAPIQPS turns the client-side limit off (the API
	// server's priority and fairness still applies).
	KubeAPIQPS   float32 `json:"kubeAPIQPS,omitempty"`
	KubeAPIBurst int     `json:"kubeAPIBurst,omitempty"`
	// LeaderElection keeps two replicas from applying at once.
	LeaderElection LeaderElection `json:"leaderElection,omitempty"`
	// DefaultServiceAccount is the serviceAccount of environments that name
	// none: "name" (in each environment's namespace) or "namespace/name".
	DefaultServiceAccount string `json:"defaultServiceAccount,omitempty"`
	// RequireServiceAccount refuses environments that would run as the
	// agent's own identity (lockdown): each must have a serviceAccount, its
	// own or the default.
	RequireServiceAccount bool `json:"requireServiceAccount,omitempty"`
}

// LeaderElection configures the Lease the replicas compete for. Durations
// follow client-go's leaderelection: LeaseDuration > RenewDeadline >
// RetryPeriod.
type LeaderElection struct {
	// Enabled turns election on. Turn it off only with a single replica.
	Enabled *bool `json:"enabled,omitempty"`
	// LeaseName names the Lease in Agent.Namespace.
	LeaseName string `json:"leaseName,omitempty"`
	// LeaseDuration is how long standbys wait after the last renewal before
	// taking over: the longest pause when a leader dies.
	LeaseDuration source.Duration `json:"leaseDuration,omitempty"`
	// RenewDeadline is how long the leader keeps trying to renew before it
	// stops applying.
	RenewDeadline source.Duration `json:"renewDeadline,omitempty"`
	// RetryPeriod is the pause between attempts to acquire or renew.
	RetryPeriod source.Duration `json:"retryPeriod,omitempty"`
}
