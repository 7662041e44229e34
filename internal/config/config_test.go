package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/health"
)

func TestLoadExample(t *testing.T) {
	cfg, err := Load("testdata/baton.yaml")
	if err != nil {
		t.Fatal(err)
	}
	repo := cfg.Repository("deploy")
	if repo == nil {
		t.Fatal("repository deploy missing")
	}
	if got, want := strings.Join(repo.Branches, ","), "env/dev,env/staging,env/prod"; got != want {
		t.Errorf("branches = %s, want %s (derived from the environments)", got, want)
	}
	if repo.Auth.TokenFile != "/etc/baton/git/token" || repo.Signatures == nil || repo.Signatures.Branches[0] != "env/prod" {
		t.Errorf("repository settings not read: %+v", repo.RepositorySettings)
	}
	if h := cfg.Environment("dev").Health; h.LoadBalancers != LoadBalancersSkip || *h.RestartThreshold != 3 || h.RecentWindow.Duration != 10*time.Minute {
		t.Errorf("dev health = %+v", h)
	}
	if h := cfg.Environment("prod").Health; h.LoadBalancers != LoadBalancersWait || *h.RestartThreshold != 5 || h.RecentWindow.Duration != 30*time.Minute {
		t.Errorf("prod health = %+v", h)
	}
	staging := cfg.Environment("staging")
	if staging == nil || staging.Repository != "deploy" || staging.Path != "overlays/staging" {
		t.Fatalf("staging = %+v", staging)
	}
	// Defaults filled in, explicit values kept.
	if staging.Timeout.Duration != DefaultSyncTimeout || staging.Drift != "correct" || !staging.PruneEnabled() ||
		staging.Health.Timeout.Duration != DefaultHealthTimeout || staging.Health.Soak.Duration != 10*time.Minute {
		t.Errorf("staging defaults = %+v", staging)
	}
	prod := cfg.Environment("prod")
	if prod.Drift != "detect-only" || prod.Health.Soak.Duration != 30*time.Minute {
		t.Errorf("prod = %+v", prod)
	}
	dev := cfg.Environment("dev")
	if len(dev.Ignore) != 1 || dev.Ignore[0].Paths[0] != "/spec/replicas" || dev.Ignore[0].Kind != "Deployment" {
		t.Errorf("dev ignore = %+v", dev.Ignore)
	}
	if got := strings.Join(cfg.Sync, ","); got != "dev,staging,billing-dev" {
		t.Errorf("sync = %s", got)
	}
	edge := cfg.Edge("staging", "prod")
	if edge == nil || edge.Policy != PolicyPullRequest || !edge.RevertOnUnhealthy || len(edge.Gates.Metrics) != 1 ||
		edge.Gates.Metrics[0].Op != "<" || edge.Gates.Metrics[0].Threshold != 0.5 {
		t.Errorf("staging->prod = %+v", edge)
	}
	if e := cfg.EdgesFrom("dev"); len(e) != 1 || e[0].To != "staging" || e[0].Policy != PolicyAuto {
		t.Errorf("edges from dev = %+v", e)
	}
	if cfg.Forge.Kind != ForgeGitea || cfg.Forge.Repository != "acme/deploy" {
		t.Errorf("forge = %+v", cfg.Forge)
	}
	// Two applications, each its own pipeline.
	if len(cfg.Pipelines) != 2 || cfg.Pipelines[0].Name != "shop" || cfg.Pipelines[1].Name != "billing" || cfg.Pipeline != nil {
		t.Fatalf("pipelines = %+v", cfg.Pipelines)
	}
	if cfg.PipelineName("staging") != "shop" || cfg.PipelineName("billing-prod") != "billing" {
		t.Errorf("pipeline of staging = %q, of billing-prod = %q", cfg.PipelineName("staging"), cfg.PipelineName("billing-prod"))
	}
	if e := cfg.Edge("billing-dev", "billing-prod"); e == nil || e.Policy != PolicyPullRequest {
		t.Errorf("billing edge derived from order = %+v", e)
	}
	if f := cfg.ForgeOf(cfg.PipelineOf("billing-dev")); f.Kind != ForgeGitea || f.URL != "https://git.example.com" ||
		f.TokenFile != "/etc/baton/forge/token" || f.Repository != "acme/billing-deploy" {
		t.Errorf("billing's forge = %+v: the top-level one with its own repository", f)
	}
	if f := cfg.ForgeOf(cfg.PipelineOf("dev")); f != cfg.Forge {
		t.Errorf("shop's forge = %+v, want the top-level one", f)
	}
	if a := cfg.Author("billing-dev"); a.Name != DefaultAuthorName || a.Email != DefaultAuthorEmail {
		t.Errorf("billing's author = %+v", a)
	}
	if got := strings.Join(cfg.Order(), ","); got != "dev,staging,prod,billing-dev,billing-prod" {
		t.Errorf("order = %s", got)
	}
	le := cfg.Agent.LeaderElection
	if !le.IsEnabled() || le.LeaseDuration.Duration != 15*time.Second || le.RetryPeriod.Duration != 2*time.Second {
		t.Errorf("leader election = %+v", le)
	}
	if cfg.Webhook.SecretFile == "" || cfg.Listen.HTTP != ":8080" || cfg.Agent.CacheDir != "/var/cache/baton" {
		t.Errorf("webhook/listen/agent = %+v %+v %+v", cfg.Webhook, cfg.Listen, cfg.Agent)
	}
}

// minimal is the smallest valid configuration; the defaults fill the rest.
const minimal = `
repositories:
  - name: deploy
    url: https://git.example.com/acme/deploy.git
environments:
  - name: dev
    branch: env/dev
  - name: prod
    branch: env/prod
`

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	dev := cfg.Environment("dev")
	if dev.Repository != "deploy" || dev.Path != "." || dev.Namespace != "" || dev.Drift != DefaultDrift ||
		!dev.PruneEnabled() || dev.Timeout.Duration != DefaultSyncTimeout ||
		dev.Health.Timeout.Duration != DefaultHealthTimeout || dev.Health.Soak.Duration != DefaultSoak {
		t.Errorf("dev = %+v", dev)
	}
	// Health defaults that work on clusters without a load-balancer
	// controller, and the health package's own defaults.
	if h := dev.Health; h.LoadBalancers != LoadBalancersSkip || h.RestartThreshold == nil ||
		*h.RestartThreshold != health.DefaultRestartThreshold || h.RecentWindow.Duration != health.DefaultRecentWindow {
		t.Errorf("dev health defaults = %+v", h)
	}
	r := cfg.Repositories[0]
	if r.Interval.Duration != time.Minute || r.Timeout.Duration != time.Minute || r.Auth.Username != "git" {
		t.Errorf("repository defaults = %+v", r.RepositorySettings)
	}
	if a := cfg.Author("dev"); len(cfg.Sync) != 0 || len(cfg.Pipelines) != 0 || cfg.Forge.Kind != ForgeNone ||
		a.Name != DefaultAuthorName || a.Email != DefaultAuthorEmail {
		t.Errorf("top-level defaults = %+v", cfg)
	}
	a := cfg.Agent
	if a.Namespace != DefaultNamespace || a.CacheDir != "" || !a.LeaderElection.IsEnabled() ||
		a.LeaderElection.LeaseName != DefaultLeaseName || a.LeaderElection.RenewDeadline.Duration != DefaultRenewDeadline ||
		cfg.Listen.HTTP != DefaultHTTPAddress {
		t.Errorf("agent defaults = %+v", a)
	}
}

func TestEdgesFromOrder(t *testing.T) {
	// A pipeline's environments need overlay folders (cleaned, as the
	// agent passes them to promote).
	withPaths := strings.NewReplacer("branch: env/dev\n", "branch: env/dev\n    path: overlays/dev\n",
		"branch: env/prod\n", "branch: env/prod\n    path: ./overlays/prod/\n").Replace(minimal)
	cfg, err := Parse([]byte(withPaths + `
pipeline:
  order: [dev, prod]
forge: {kind: github, tokenFile: /t, repository: acme/deploy}
`))
	if err != nil {
		t.Fatal(err)
	}
	// The single form is one pipeline named "default".
	if len(cfg.Pipelines) != 1 || cfg.Pipelines[0].Name != DefaultPipelineName || cfg.PipelineName("prod") != DefaultPipelineName {
		t.Fatalf("pipelines = %+v", cfg.Pipelines)
	}
	if e := cfg.Pipelines[0].Edges; len(e) != 1 || e[0].From != "dev" || e[0].To != "prod" || e[0].Policy != PolicyPullRequest {
		t.Errorf("edges = %+v", e)
	}
	if cfg.Forge.URL != DefaultGitHubAPIURL {
		t.Errorf("github url = %q", cfg.Forge.URL)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "baton.yaml")
	if err := os.WriteFile(path, []byte(minimal+"sync: [qa]\nlisten: {htp: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + ": listen.htp: unknown field"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "listen.htp" {
		t.Errorf("errors.As FieldError = %+v", fe)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// Plain http:// is accepted without credentials, with the explicit flag,
// and to the loopback interface.
func TestCleartextAllowed(t *testing.T) {
	env := "environments:\n  - name: dev\n    branch: env/dev\n    path: overlays/dev\n"
	for name, doc := range map[string]string{
		"no credentials": "repositories:\n  - name: deploy\n    url: http://git.example.com/d.git\n" + env +
			"pipeline:\n  prometheus: {url: 'http://prometheus:9090'}\n",
		"allowed": "repositories:\n  - name: deploy\n    url: http://git.example.com/d.git\n    auth: {passwordFile: /p}\n    allowInsecureHTTP: true\n" + env +
			"forge: {kind: github, url: 'http://ghe.internal/api/v3', tokenFile: /t, repository: a/b, allowInsecureHTTP: true}\n" +
			"pipeline:\n  prometheus: {url: 'http://prometheus:9090', bearerTokenFile: /t, allowInsecureHTTP: true}\n",
		"loopback": "repositories:\n  - name: deploy\n    url: http://127.0.0.1:3000/d.git\n    auth: {tokenFile: /t}\n" + env +
			"forge: {kind: gitea, url: 'http://localhost:3000', tokenFile: /t, repository: a/b}\n" +
			"pipeline:\n  prometheus: {url: 'http://[::1]:9090', bearerTokenFile: /t}\n",
	} {
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestInvalid(t *testing.T) {
	repo := "repositories:\n  - name: deploy\n    url: https://git.example.com/acme/deploy.git\n"
	env := "environments:\n  - name: dev\n    branch: env/dev\n    path: overlays/dev\n"
	tests := []struct {
		name, doc, want string
	}{
		{"yaml syntax", "repositories: [", "(document): yaml: line 1: did not find expected node content"},
		{"duplicate key", repo + env + "sync: [dev]\nsync: [dev]\n", `(document): yaml: unmarshal errors: line 9: key "sync" already set in map`},
		{"not a mapping", "- a\n- b\n", "(document): must be an object, got a list"},
		{"empty", "", "repositories: at least one repository is required\nenvironments: at least one environment is required"},
		{"unknown top-level field", repo + env + "syncs: [dev]\n", "syncs: unknown field"},
		{"unknown nested field", repo + env + "    health: {soak: 1m, wait: 2m}\n", "environments[0].health.wait: unknown field"},
		{"peer without an address", repo + env + "peers:\n  - name: prod\n", "peers[0]: set exactly one of url (the agent's HTTP address) and context (a kubeconfig context)"},
		{"peer with a bad url and a namespace", repo + env + "peers:\n  - {name: prod, url: 'ftp://x', namespace: baton}\n  - {name: prod, context: eu}\n",
			"peers[0].url: \"ftp://x\": want http(s)://host[:port]\npeers[0].namespace: only with context\npeers[1].name: \"prod\" is used by another peer"},
		{"wrong case", repo + env + "    Branch: env/x\n", `environments[0].Branch: unknown field (did you mean "branch"?)`},
		{"unknown field in repository settings", repo + "    auth: {token: x}\n" + env, "repositories[0].auth.token: unknown field"},
		{"wrong type string", repo + "environments:\n  - name: dev\n    branch: 12\n", "environments[0].branch: must be a string, got the number 12"},
		{"wrong type bool", repo + env + "    prune: sometimes\n", `environments[0].prune: must be true or false, got the string "sometimes"`},
		{"wrong type list", repo + env + "sync: dev\n", `sync: must be a list, got the string "dev"`},
		{"wrong type object", repo + env + "    health: 5m\n", `environments[0].health: must be an object, got the string "5m"`},
		{"wrong type number", repo + env + "pipeline:\n  edges:\n    - {from: dev, to: dev, gates: {metrics: [{name: a, query: up, op: '<', threshold: low}]}}\n",
			`pipeline.edges[0].gates.metrics[0].threshold: must be a number, got the string "low"`},
		{"duration not a string", repo + env + "    timeout: 30\n", `environments[0].timeout: must be a duration such as "30s" or "5m", got the number 30`},
		{"bad duration", repo + env + "    health: {soak: soon}\n", `environments[0].health.soak: "soon" is not a duration such as "30s" or "5m"`},
		{"missing branch", repo + "environments:\n  - name: dev\n  - name: qa\n    branch: env/qa\n  - name: prod\n", "environments[0].branch: required\nenvironments[2].branch: required"},
		{"missing name", repo + "environments:\n  - branch: env/dev\n", "environments[0].name: required"},
		{"bad environment name", repo + "environments:\n  - name: Dev_1\n    branch: env/dev\n", `environments[0].name: "Dev_1" is not a DNS label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		{"duplicate environment", repo + env + "  - name: dev\n    branch: env/dev2\n", `environments[1].name: "dev" is used by another environment`},
		{"unknown repository", repo + "environments:\n  - name: dev\n    repository: infra\n    branch: env/dev\n", `environments[0].repository: no repository is named "infra"`},
		{"repository required with two", repo + "  - name: infra\n    url: https://git.example.com/acme/infra.git\n" +
			"environments:\n  - name: dev\n    branch: env/dev\n  - name: ops\n    repository: infra\n    branch: main\n",
			"environments[0].repository: required when there is more than one repository"},
		{"unused repository", repo + "  - name: infra\n    url: https://git.example.com/acme/infra.git\n" +
			"environments:\n  - name: dev\n    repository: deploy\n    branch: env/dev\n",
			`repositories[1]: no environment uses repository "infra"`},
		{"repository settings", "repositories:\n  - name: deploy\n    url: ssh://git@git.example.com/acme/deploy.git\n" + env,
			"repositories[0].auth.sshKeyFile: required for ssh URLs\nrepositories[0].auth.knownHostsFile: required for ssh URLs (or set insecureSkipHostKeyCheck)"},
		{"signature branch not followed", repo + "    signatures: {keyringFile: /k, branches: [env/prod]}\n" + env,
			`repositories[0].signatures.branches[0]: "env/prod" is not a followed branch`},
		{"path escapes", repo + "environments:\n  - name: dev\n    branch: env/dev\n    path: ../other\n", `environments[0].path: "../other" must be a folder inside the repository`},
		{"bad drift", repo + env + "    drift: fix\n", `environments[0].drift: must be "correct" or "detect-only", not "fix"`},
		{"negative soak", repo + env + "    health: {soak: -1m}\n", "environments[0].health.soak: must not be negative"},
		{"bad load balancers", repo + env + "    health: {loadBalancers: ignore}\n", `environments[0].health.loadBalancers: must be "skip" or "wait", not "ignore"`},
		{"restart threshold zero", repo + env + "    health: {restartThreshold: 0}\n", "environments[0].health.restartThreshold: must be between 1 and 100, not 0"},
		{"restart threshold too high", repo + env + "    health: {restartThreshold: 1000}\n", "environments[0].health.restartThreshold: must be between 1 and 100, not 1000"},
		{"restart threshold not a number", repo + env + "    health: {restartThreshold: three}\n", `environments[0].health.restartThreshold: must be a whole number, got the string "three"`},
		{"restart threshold fraction", repo + env + "    health: {restartThreshold: 2.5}\n", "environments[0].health.restartThreshold: must be a whole number, got 2.5"},
		{"negative recent window", repo + env + "    health: {recentWindow: -1m}\n", "environments[0].health.recentWindow: must be between 0 and 24h0m0s, not -1m0s"},
		{"recent window too long", repo + env + "    health: {recentWindow: 48h}\n", "environments[0].health.recentWindow: must be between 0 and 24h0m0s, not 48h0m0s"},
		{"ignore without paths", repo + env + "    ignore: [{kind: Deployment}]\n", "environments[0].ignore[0].paths: at least one JSON pointer such as /spec/replicas is required"},
		{"ignore bad pointer", repo + env + "    ignore: [{paths: [spec.replicas]}]\n", `environments[0].ignore[0].paths[0]: "spec.replicas" is not a JSON pointer: it must start with /`},
		{"sync unknown environment", repo + env + "sync: [dev, qa]\n", `sync[1]: no environment is named "qa"`},
		{"sync twice", repo + env + "sync: [dev, dev]\n", `sync[1]: "dev" is listed twice`},
		{"order unknown environment", repo + env + "pipeline: {order: [dev, prod]}\n", `pipeline.order[1]: no environment is named "prod"`},
		{"edge unknown environment", repo + env + "pipeline:\n  order: [dev]\n  edges: [{from: dev, to: prod, policy: auto}]\n", `pipeline.edges[0].to: no environment is named "prod"`},
		{"edge against order", repo + env + "  - name: prod\n    branch: env/prod\n    path: overlays/prod\npipeline:\n  order: [dev, prod]\n  edges: [{from: prod, to: dev, policy: auto}]\n",
			"pipeline.edges[0]: prod -> dev goes against pipeline.order"},
		{"edge to itself", repo + env + "pipeline:\n  order: [dev]\n  edges: [{from: dev, to: dev, policy: auto}]\n", `pipeline.edges[0]: promotes "dev" to itself`},
		{"edges without order", repo + env + "  - name: prod\n    branch: env/prod\n    path: overlays/prod\npipeline:\n  edges: [{from: dev, to: prod, policy: auto}]\n",
			"pipeline.order: required when pipeline.edges is set: list the environments from first to last"},
		{"pipeline across repositories", repo + "  - name: infra\n    url: https://git.example.com/acme/infra.git\n" +
			"environments:\n  - name: dev\n    repository: deploy\n    branch: env/dev\n    path: overlays/dev\n  - name: prod\n    repository: infra\n    branch: main\n    path: overlays/prod\n" +
			"pipeline:\n  order: [dev, prod]\n  edges: [{from: dev, to: prod, policy: auto}]\n",
			`pipeline.order[1]: "prod" is in repository "infra", the pipeline's first environment in "deploy": a pipeline's environments share one repository`},
		{"bad policy", repo + env + "  - name: prod\n    branch: env/prod\n    path: overlays/prod\npipeline:\n  order: [dev, prod]\n  edges: [{from: dev, to: prod, policy: manual}]\n",
			`pipeline.edges[0].policy: must be "auto" or "pull-request", not "manual"`},
		{"pull request without forge", repo + env + "  - name: prod\n    branch: env/prod\n    path: overlays/prod\npipeline:\n  order: [dev, prod]\n  edges: [{from: dev, to: prod, policy: pull-request}]\n",
			`pipeline.edges[0].policy: "pull-request" needs a forge, and forge.kind is "none"`},
		{"derived edge without forge", repo + env + "  - name: prod\n    branch: env/prod\n    path: overlays/prod\npipeline:\n  order: [dev, prod]\n",
			`pipeline.order: dev -> prod would open a pull request (the default policy) but forge.kind is "none": configure a forge, or list pipeline.edges with policy "auto"`},
		{"metric gate", repo + env + "  - name: prod\n    branch: env/prod\n    path: overlays/prod\npipeline:\n  order: [dev, prod]\n  edges:\n    - from: dev\n      to: prod\n      policy: auto\n      gates:\n        metrics:\n          - {name: errors, query: ' ', op: '=<', threshold: 1}\n",
			"pipeline.edges[0].gates.metrics[0].query: required\npipeline.edges[0].gates.metrics[0].op: must be one of <, <=, >, >=, ==, !=, not \"=<\"\npipeline.prometheus.url: required when a gate has metrics"},
		// The promote package's rules for a pipeline hold here, so that a
		// configuration that passes does not stop the agent at start.
		{"pipeline environment at the root", repo + env + "  - name: prod\n    branch: env/prod\npipeline:\n  order: [dev, prod]\n  edges: [{from: dev, to: prod, policy: auto}]\n",
			`environments[1].path: ".": want a relative folder below the repository root, such as overlays/dev (an overlay is never promoted): "prod" is in pipeline.order`},
		{"pipeline environments on one branch", repo + env + "  - name: prod\n    branch: env/dev\n    path: overlays/prod\npipeline:\n  order: [dev, prod]\n  edges: [{from: dev, to: prod, policy: auto}]\n",
			`pipeline.order[1]: "prod" follows branch "env/dev", as "dev" does: a pipeline's environments each need a branch of their own`},
		{"gate names", repo + env + "  - name: prod\n    branch: env/prod\n    path: overlays/prod\npipeline:\n  order: [dev, prod]\n  prometheus: {url: 'http://p'}\n  edges:\n    - from: dev\n      to: prod\n      policy: auto\n      gates:\n        metrics:\n          - {name: error ratio, query: up, op: '<', threshold: 1}\n          - {name: '', query: up, op: '<', threshold: 1}\n",
			"pipeline.edges[0].gates.metrics[0].name: \"error ratio\": want a short name without spaces or ';'\npipeline.edges[0].gates.metrics[1].name: required"},
		{"partial double star", repo + env + "pipeline:\n  paths: {include: ['apps/a**']}\n",
			`pipeline.paths.include[0]: "apps/a**": ** must be a whole path segment`},
		{"bad promotable path", repo + env + "pipeline:\n  paths: {include: [/apps], exclude: ['[']}\n",
			"pipeline.paths.include[0]: \"/apps\" must be relative to the repository root\npipeline.paths.exclude[0]: \"[\" is not a valid pattern"},
		{"bad author", repo + env + "pipeline:\n  author: {email: baton}\n", `pipeline.author.email: "baton" is not an email address`},
		{"passphrase without key", repo + env + "pipeline:\n  signingKeyPassphraseFile: /p\n", `pipeline.signingKeyPassphraseFile: set without pipeline.signingKeyFile`},
		{"bad forge kind", repo + env + "forge: {kind: bitbucket}\n", `forge.kind: must be "none", "gitea", "github" or "gitlab", not "bitbucket"`},
		{"gitlab project path", repo + env + "forge: {kind: gitlab, tokenFile: /t, repository: 'acme//deploy'}\n",
			`forge.repository: must be the project's full path "group/name" (subgroups allowed), not "acme//deploy"`},
		{"preview settings", repo + env + "forge: {kind: gitea, url: 'https://g', tokenFile: /t, repository: a/b, preview: {interval: -1m, maxCommentBytes: 100}}\n",
			"forge.preview.interval: must not be negative\nforge.preview.maxCommentBytes: 100 is too small: at least 4096"},
		{"incomplete forge", repo + env + "forge: {kind: gitea, repository: deploy}\n",
			"forge.url: required for a gitea forge\nforge.tokenFile: required for a gitea forge\nforge.repository: must be \"owner/name\", not \"deploy\""},
		{"bad listen address", repo + env + "listen: {http: '8080'}\n", `listen.http: "8080" is not a listen address such as ":8080"`},
		{"bad webhook address", repo + env + "listen: {webhook: '8081'}\n", `listen.webhook: "8081" is not a listen address such as ":8081"`},
		{"webhook on the http address", repo + env + "listen: {http: ':9000', webhook: ':9000'}\n", `listen.webhook: ":9000" is listen.http's address; leave it out to serve the webhook there`},
		{"git credentials over http", "repositories:\n  - name: deploy\n    url: http://git.example.com/acme/deploy.git\n    auth: {tokenFile: /t}\n" + env,
			`repositories[0].url: "http://git.example.com/acme/deploy.git" would send auth.tokenFile in clear text: use https://, or set repositories[0].allowInsecureHTTP: true to accept that`},
		{"forge token over http", repo + env + "forge: {kind: gitea, url: 'http://gitea.gitea:3000', tokenFile: /t, repository: acme/deploy}\n",
			`forge.url: "http://gitea.gitea:3000" would send tokenFile in clear text: use https://, or set forge.allowInsecureHTTP: true to accept that`},
		{"prometheus token over http", repo + env + "pipeline:\n  prometheus: {url: 'http://prometheus:9090', bearerTokenFile: /t}\n",
			`pipeline.prometheus.url: "http://prometheus:9090" would send bearerTokenFile in clear text: use https://, or set pipeline.prometheus.allowInsecureHTTP: true to accept that`},
		{"bad lease durations", repo + env + "agent:\n  leaderElection: {leaseDuration: 5s, renewDeadline: 5s, retryPeriod: 5s}\n",
			"agent.leaderElection.leaseDuration: 5s must be longer than renewDeadline (5s)\nagent.leaderElection.renewDeadline: 5s must be longer than 1.2 × retryPeriod (5s)"},
		{"bad workers", repo + env + "agent: {workers: -1, healthWaits: 100000, kubeAPIBurst: -5}\n",
			"agent.workers: must be between 1 and 4096 (0 for the default), not -1\nagent.healthWaits: must be between 1 and 4096 (0 for the default), not 100000\nagent.kubeAPIBurst: must not be negative"},
		{"scope pattern", repo + env + "    scope: {namespaces: [shop, 'team-[']}\n", `environments[0].scope.namespaces[1]: "team-[" is not a valid pattern`},
		{"scope namespace name", repo + env + "    scope: {namespaces: [Shop]}\n", `environments[0].scope.namespaces[0]: "Shop" is not a namespace name or pattern: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		{"scope holds the agent namespace", repo + env + "    scope: {namespaces: [baton-system]}\n", `environments[0].scope.namespaces[0]: "baton-system" is the agent's own namespace (agent.namespace): no environment may write it`},
		{"namespace is the agent's", repo + env + "    namespace: baton-system\n", `environments[0].namespace: "baton-system" is the agent's own namespace (agent.namespace): no environment may write it`},
		{"namespace outside scope", repo + env + "    namespace: shop\n    scope: {namespaces: [team-*]}\n", `environments[0].namespace: "shop" is not in scope.namespaces [team-*]: the environment could not write its own default namespace`},
		{"cluster kinds", repo + env + "    scope: {clusterKinds: [clusterrole, ClusterRole.RBAC, Namespace]}\n",
			"environments[0].scope.clusterKinds[0]: \"clusterrole\" is not a kind: write \"Kind\" for the core group or \"Kind.group\", e.g. \"ClusterRole.rbac.authorization.k8s.io\"\n" +
				`environments[0].scope.clusterKinds[1]: "ClusterRole.RBAC" has an invalid group "RBAC": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{"cluster-wide and kinds", repo + env + "    scope: {clusterWide: true, clusterKinds: [Namespace]}\n", "environments[0].scope.clusterKinds: set with scope.clusterWide, which allows every cluster-scoped kind already: keep one of them"},
		{"service account format", repo + env + "    serviceAccount: a/b/c\n", `environments[0].serviceAccount: "a/b/c" is not "name" or "namespace/name" of a ServiceAccount`},
		{"service account without namespace", repo + env + "    serviceAccount: deployer\n", `environments[0].serviceAccount: "deployer" names no namespace and the environment has none: write "namespace/name"`},
		{"service account of the agent", repo + env + "    serviceAccount: baton-system/baton\n", `environments[0].serviceAccount: "baton-system/baton" is in the agent's own namespace (agent.namespace), whose accounts hold the agent's rights: use an account in another namespace`},
		{"lockdown", repo + env + "  - name: prod\n    branch: env/prod\n    path: overlays/prod\n    serviceAccount: shop/deployer\nagent: {requireServiceAccount: true}\n",
			"environments[0].serviceAccount: required: agent.requireServiceAccount is true (set it here or set agent.defaultServiceAccount)"},
		{"bad default account", repo + env + "agent: {defaultServiceAccount: 'x/'}\n", `agent.defaultServiceAccount: "x/" is not "name" or "namespace/name" of a ServiceAccount`},
		{"limits", repo + env + "limits: {maxBlobSize: -1, maxFileSize: -1, maxObjects: -5, renderMemory: 1Mi, renderTimeout: -1s}\n",
			"limits.maxBlobSize: must be positive\nlimits.maxFileSize: must be positive\nlimits.maxObjects: must be positive\nlimits.renderMemory: 1Mi is too small: a render needs at least 16Mi\nlimits.renderTimeout: must not be negative"},
		{"size not a size", repo + env + "limits: {maxFileSize: big}\n", `limits.maxFileSize: "big" is not a size such as "8Mi" or "1Gi"`},
		{"size of the wrong type", repo + env + "limits: {renderMemory: [1]}\n", `limits.renderMemory: must be a size such as "8Mi" or "1Gi", got a list`},
		{"bad agent namespace", repo + env + "agent: {namespace: Baton}\n", `agent.namespace: "Baton" is not a namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("no error; want\n%s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// Several pipelines: errors name the pipeline by its index, and what
// pipelines must not share is refused.
func TestInvalidPipelines(t *testing.T) {
	base := "repositories:\n  - name: deploy\n    url: https://git.example.com/acme/deploy.git\n" +
		"environments:\n" +
		"  - {name: dev, branch: env/dev, path: overlays/dev}\n  - {name: prod, branch: env/prod, path: overlays/prod}\n" +
		"  - {name: b-dev, branch: b/dev, path: overlays/b-dev}\n  - {name: b-prod, branch: b/prod, path: overlays/b-prod}\n"
	forge := "forge: {kind: gitea, url: https://git.example.com, tokenFile: /t, repository: acme/deploy}\n"
	tests := []struct {
		name, doc, want string
	}{
		{"both forms", base + "pipeline: {order: [dev, prod]}\npipelines: [{name: shop, order: [dev, prod]}]\n",
			"pipeline: set pipeline (one pipeline) or pipelines (several), not both"},
		{"name required", base + forge + "pipelines:\n  - order: [dev, prod]\n", "pipelines[0].name: required: name the application or team, e.g. shop"},
		{"name twice", base + forge + "pipelines:\n  - {name: shop, order: [dev, prod]}\n  - {name: shop, order: [b-dev, b-prod]}\n",
			`pipelines[1].name: "shop" is used by another pipeline`},
		{"bad name", base + forge + "pipelines:\n  - {name: Shop, order: [dev, prod]}\n",
			`pipelines[0].name: "Shop" is not a DNS label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		{"order required", base + "pipelines:\n  - {name: shop}\n", "pipelines[0].order: required: list the pipeline's environments from first to last"},
		{"environment in two pipelines", base + forge + "pipelines:\n  - {name: shop, order: [dev, prod]}\n  - {name: billing, order: [b-dev, prod]}\n",
			`pipelines[1].order[1]: "prod" is in pipeline "shop" already: an environment belongs to one pipeline`},
		{"edge of another pipeline", base + "pipelines:\n  - {name: shop, order: [dev, prod], edges: [{from: dev, to: b-prod, policy: auto}]}\n",
			`pipelines[0].edges[0].to: "b-prod" is not in pipelines[0].order`},
		{"unknown environment", base + "pipelines:\n  - {name: shop, order: [dev, qa], edges: [{from: dev, to: qa, policy: auto}]}\n",
			"pipelines[0].order[1]: no environment is named \"qa\"\npipelines[0].edges[0].to: no environment is named \"qa\""},
		{"pull request without forge", base + "pipelines:\n  - {name: shop, order: [dev, prod], edges: [{from: dev, to: prod, policy: auto}]}\n  - {name: billing, order: [b-dev, b-prod]}\n",
			`pipelines[1].order: b-dev -> b-prod would open a pull request (the default policy) but forge.kind is "none": configure a forge, or list pipelines[1].edges with policy "auto"`},
		{"a pipeline's forge", base + forge + "pipelines:\n  - {name: shop, order: [dev, prod], forge: {repository: deploy}}\n  - {name: billing, order: [b-dev, b-prod], forge: {kind: github}}\n",
			"pipelines[0].forge.repository: must be \"owner/name\", not \"deploy\"\npipelines[1].forge.tokenFile: required for a github forge\npipelines[1].forge.repository: must be \"owner/name\", not \"\""},
		{"a pipeline's gates", base + "pipelines:\n  - name: shop\n    order: [dev, prod]\n    edges: [{from: dev, to: prod, policy: auto, gates: {metrics: [{name: e, query: up, op: '<'}]}}]\n    author: {email: nobody}\n",
			"pipelines[0].prometheus.url: required when a gate has metrics\npipelines[0].author.email: \"nobody\" is not an email address"},
		{"promotion branches collide", "repositories:\n  - name: deploy\n    url: https://git.example.com/acme/deploy.git\n" +
			"environments:\n  - {name: a, branch: a, path: overlays/a}\n  - {name: b-to-c, branch: bc, path: overlays/b-to-c}\n  - {name: a-to-b, branch: ab, path: overlays/a-to-b}\n  - {name: c, branch: c, path: overlays/c}\n" +
			"pipelines:\n  - {name: one, order: [a, b-to-c], edges: [{from: a, to: b-to-c, policy: auto}]}\n  - {name: two, order: [a-to-b, c], edges: [{from: a-to-b, to: c, policy: auto}]}\n",
			"pipelines[1].edges[0]: a-to-b -> c would use the promotion branch baton/promote-a-to-b-to-c of a -> b-to-c: rename an environment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("no error; want\n%s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// Edges of pipelines in different repositories may share names: their
// branches are in different repositories.
func TestPipelinesInTwoRepositories(t *testing.T) {
	cfg, err := Parse([]byte(`
repositories:
  - {name: shop, url: https://git.example.com/acme/shop.git}
  - {name: billing, url: https://git.example.com/acme/billing.git}
environments:
  - {name: shop-dev, repository: shop, branch: env/dev, path: overlays/dev}
  - {name: shop-prod, repository: shop, branch: env/prod, path: overlays/prod}
  - {name: billing-dev, repository: billing, branch: env/dev, path: overlays/dev}
  - {name: billing-prod, repository: billing, branch: env/prod, path: overlays/prod}
pipelines:
  - {name: shop, order: [shop-dev, shop-prod], edges: [{from: shop-dev, to: shop-prod, policy: auto}]}
  - {name: billing, order: [billing-dev, billing-prod], edges: [{from: billing-dev, to: billing-prod, policy: auto}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.EdgesFrom("billing-dev")) != 1 || cfg.PipelineName("shop-prod") != "shop" {
		t.Errorf("pipelines = %+v", cfg.Pipelines)
	}
}

func TestScopeAccountAndLimitDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal + `
  - name: shop
    branch: env/shop
    namespace: shop
    serviceAccount: deployer
  - name: platform
    branch: env/platform
    scope: {clusterWide: true}
    serviceAccount: platform/admin
agent:
  defaultServiceAccount: ops/baton-env
limits: {maxFileSize: 1Mi, renderTimeout: 1m}
`))
	if err != nil {
		t.Fatal(err)
	}
	shop := cfg.Environment("shop")
	if got := strings.Join(shop.Scope.Namespaces, ","); got != "shop" || len(shop.Scope.ClusterKinds) != 0 || shop.Scope.ClusterWide {
		t.Errorf("shop scope = %+v, want its namespace alone", shop.Scope)
	}
	if ns, name, ok := shop.Account(); !ok || ns != "shop" || name != "deployer" {
		t.Errorf("shop account = %s/%s %v, want shop/deployer", ns, name, ok)
	}
	dev := cfg.Environment("dev")
	if len(dev.Scope.Namespaces) != 0 {
		t.Errorf("dev has no namespace and no scope: scope = %+v", dev.Scope)
	}
	if ns, name, ok := dev.Account(); !ok || ns != "ops" || name != "baton-env" {
		t.Errorf("dev account = %s/%s %v, want the default ops/baton-env", ns, name, ok)
	}
	if p := cfg.Environment("platform"); !p.Scope.ClusterWide || len(p.Scope.Namespaces) != 0 {
		t.Errorf("platform scope = %+v", p.Scope)
	}
	l := cfg.Limits
	if l.MaxFileSize.Value() != 1<<20 || l.MaxBlobSize.Value() != 16<<20 || l.MaxObjects != DefaultMaxObjects || l.MaxAliasNodes != DefaultMaxAliasNodes ||
		l.RenderMemory.Value() != 256<<20 || l.RenderTimeout.Duration != time.Minute {
		t.Errorf("limits = %+v", l)
	}
	cfg, err = Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := cfg.Environment("dev").Account(); ok {
		t.Error("without a default, an environment runs as the agent")
	}
}
