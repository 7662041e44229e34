// Package discoverymapper builds the one kind-to-resource mapper Baton
// uses wherever it maps kinds against a cluster: the reconciler, health and
// baton validate.
//
// The rule: discovery is read on first use and kept in memory, never
// re-read on a timer. A caller that meets a kind discovery did not know (a
// NoMatch error) resets the mapper and retries, at most once per pass or
// round, so that a CRD or an aggregated API that appeared since is found
// without letting an unknown kind cost a discovery walk per object.
package discoverymapper

import (
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
)

// New returns a mapper over dc's discovery, cached in memory until Reset.
func New(dc discovery.DiscoveryInterface) *restmapper.DeferredDiscoveryRESTMapper {
	return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
}
