package reconciler

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/tools/cache"
)

// The watch cache's lifecycle: which of a watched and an applied state is
// newer, which versions are verified, when a watch RBAC refused is tried
// again, and which watches are stopped because no environment uses them
// any more.

// retryPolicy spaces the retries of a watch that RBAC refused: first after
// base, doubling per refusal up to max. RBAC may be fixed at any time, and
// a retry costs one refused list.
type retryPolicy struct {
	base, max time.Duration
	now       func() time.Time
}

// after is the wait before retrying a watch refused refusals times.
func (r retryPolicy) after(refusals int) time.Duration {
	d := r.base
	for i := 1; i < refusals && d < r.max; i++ {
		d *= 2
	}
	return min(d, r.max)
}

// entryLife is the lifecycle state of one cache entry.
type entryLife struct {
	// mu guards seen and verified, and is held across remember's check and
	// store update, so that a newer event recorded meanwhile is never lost.
	mu sync.Mutex
	// seen is the newest resourceVersion the watch delivered per object
	// (namespace/name). It is recorded by the informer's transform, which
	// runs before an event reaches the store: a version recorded here is in
	// the store or on its way there.
	seen map[string]string
	// verified is, per object, the resourceVersion last known to carry
	// exactly the desired content: an apply's answer, or a GET compared.
	verified map[string]string

	// refusals counts consecutive RBAC refusals of the watch and retryAt is
	// when it is tried again; both guarded by watchCache.mu.
	refusals int
	retryAt  time.Time
}

// delivered records an object the watch delivered (listed, added, updated
// or deleted).
func (l *entryLife) delivered(s *slimObject) {
	key := storeKey(s.Namespace, s.Name)
	if s.ResourceVersion == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = make(map[string]string)
	}
	if prev, ok := l.seen[key]; !ok || newerVersion(s.ResourceVersion, prev) {
		l.seen[key] = s.ResourceVersion
	}
}

// remember records an apply's answer as verified and puts it in the store,
// unless the watch delivered the same or a newer version of the object: a
// hand edit right after the apply must not be hidden by the older answer,
// or its drift would go unseen until the object changes again.
//
// Kubernetes documents resourceVersions as opaque, but API servers since
// 1.35 guarantee that those of one resource compare as integers
// (resourceversion.CompareResourceVersion). A version that does not parse
// (an aggregated API of another kind) is never taken over the watch's: the
// cost of not remembering is one extra read; the cost of a wrong answer is
// missed drift.
func (l *entryLife) remember(store cache.Store, s *slimObject) {
	key := storeKey(s.Namespace, s.Name)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.verifyLocked(key, s.ResourceVersion)
	if seen, ok := l.seen[key]; ok && !newerVersion(s.ResourceVersion, seen) {
		return
	}
	_ = store.Update(s)
}

// verify records that the object at version carries exactly the desired
// content.
func (l *entryLife) verify(key, version string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.verifyLocked(key, version)
}

func (l *entryLife) verifyLocked(key, version string) {
	if version == "" {
		return
	}
	if l.verified == nil {
		l.verified = make(map[string]string)
	}
	l.verified[key] = version
}

// isVerified reports whether the object's version is the one verified.
func (l *entryLife) isVerified(key, version string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return version != "" && l.verified[key] == version
}

// newerVersion reports whether resourceVersion a is known to be newer than b.
func newerVersion(a, b string) bool {
	c, err := resourceversion.CompareResourceVersion(a, b)
	return err == nil && c > 0
}

// forgetGone drops what the entry remembers of objects the store no longer
// holds (deleted), so that its maps do not grow with every name an
// environment ever had. Called between passes.
func (l *entryLife) forgetGone(store cache.Store) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for key := range l.seen {
		if _, exists, _ := store.GetByKey(key); !exists {
			delete(l.seen, key)
		}
	}
	for key := range l.verified {
		if _, exists, _ := store.GetByKey(key); !exists {
			delete(l.verified, key)
		}
	}
}

// refused records an RBAC refusal of e's watch and returns when it is
// tried again.
func (c *watchCache) refused(e *cacheEntry) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.life.refusals++
	d := c.retry.after(e.life.refusals)
	e.life.retryAt = c.retry.now().Add(d)
	return d
}

// retryDueLocked reports whether e was refused and may be tried again.
func (c *watchCache) retryDueLocked(e *cacheEntry) bool {
	return e.forbidden.Load() && !c.retry.now().Before(e.life.retryAt)
}

// retain records that env uses only the watches used lists (after a
// successful pass) and stops the watches no environment uses any more.
// used nil: env uses none (another replica syncs it now).
func (c *watchCache) retain(env string, used map[cacheKey]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inUse := map[scopeKey]bool{}
	for k := range used {
		key := scopeKey{gvr: k.gvr}
		if k.namespace != "" && c.perNamespace[k.gvr] {
			key.namespace = k.namespace
		}
		inUse[key] = true
	}
	for key, e := range c.entries {
		if !e.users[env] {
			continue
		}
		if inUse[key] {
			if !e.forbidden.Load() && e.informer.HasSynced() {
				e.life.forgetGone(e.informer.GetStore())
			}
			continue
		}
		delete(e.users, env)
		if len(e.users) == 0 {
			e.stop()
			delete(c.entries, key)
		}
	}
}

// release stops every watch (the replica syncs no environment: it uses
// none until it syncs one again).
func (c *watchCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, e := range c.entries {
		e.stop()
		delete(c.entries, key)
	}
}
