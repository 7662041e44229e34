package reconciler

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
)

// ServiceAccount names the Kubernetes ServiceAccount an environment's
// requests are made as (Request.ServiceAccount): every apply, prune, dry
// run, read of its objects and watch goes out impersonating it, so that the
// cluster's RBAC is the final fence around what a commit can do. The agent
// itself needs only the right to impersonate the account.
type ServiceAccount struct {
	Namespace, Name string
}

// UserName is the account's user name as the API server knows it.
func (a ServiceAccount) UserName() string {
	return "system:serviceaccount:" + a.Namespace + ":" + a.Name
}

// String formats the account as "ServiceAccount namespace/name".
func (a ServiceAccount) String() string {
	return "ServiceAccount " + a.Namespace + "/" + a.Name
}

// Validate checks that both parts are DNS names.
func (a ServiceAccount) Validate() error {
	if errs := validation.IsDNS1123Label(a.Namespace); len(errs) > 0 {
		return fmt.Errorf("service account namespace %q: %s", a.Namespace, errs[0])
	}
	if errs := validation.IsDNS1123Subdomain(a.Name); len(errs) > 0 {
		return fmt.Errorf("service account name %q: %s", a.Name, errs[0])
	}
	return nil
}

// Impersonate returns a copy of cfg whose every request is made as the
// account. The API server checks that cfg's own identity may impersonate
// it ("impersonate" on serviceaccounts), then authorizes each request as
// the account, with the groups system:serviceaccounts and
// system:serviceaccounts:<namespace> it would have with its own token.
func (a ServiceAccount) Impersonate(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: a.UserName()}
	return c
}

// clients are the per-identity parts of a Reconciler: the object client and
// the watch cache of the objects it manages. The agent's own identity has
// one set; each impersonated account gets its own, made on first use, so
// that a watch never sees more than the account may list.
type clients struct {
	client *objClient
	// cache is nil when Options.DisableCache is set.
	cache *watchCache
}

// accounts holds the clients of impersonated accounts.
type accounts struct {
	mu sync.Mutex // guards byAccount
	// base is the agent's rate-limited config that impersonation copies.
	base      *rest.Config
	byAccount map[ServiceAccount]*clients
}

// clientsFor returns the clients of the request's identity: the agent's own
// (r.client, r.cache) when it names no account.
func (r *Reconciler) clientsFor(sa *ServiceAccount) (*clients, error) {
	if sa == nil {
		return &clients{client: r.client, cache: r.cache}, nil
	}
	r.accounts.mu.Lock()
	defer r.accounts.mu.Unlock()
	if c, ok := r.accounts.byAccount[*sa]; ok {
		return c, nil
	}
	cfg := sa.Impersonate(r.accounts.base)
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: http client: %w", sa, err)
	}
	oc, err := newObjClient(cfg, httpClient, r.opts.FieldManager)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sa, err)
	}
	oc.account = sa
	c := &clients{client: oc}
	if !r.opts.DisableCache {
		if c.cache, err = r.newCache(cfg, httpClient, r.opts.Logger.With("account", sa.UserName())); err != nil {
			return nil, fmt.Errorf("%s: %w", sa, err)
		}
	}
	if r.accounts.byAccount == nil {
		r.accounts.byAccount = make(map[ServiceAccount]*clients)
	}
	r.accounts.byAccount[*sa] = c
	return c, nil
}

// client is the object client of the pass's identity.
func (p *pass) client() *objClient { return p.ids.client }

// cache is the watch cache of the pass's identity; nil when disabled.
func (p *pass) cache() *watchCache { return p.ids.cache }
