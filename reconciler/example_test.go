package reconciler_test

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/reconciler"
)

// One pass for one environment: the agent's loop does this on every new
// revision and every drift interval. (Compiled, not run: it needs a cluster.)
func Example() {
	var (
		cfg     *rest.Config                 // the agent's in-cluster config
		objects []*unstructured.Unstructured // from render, for this revision
	)
	r, err := reconciler.New(cfg, reconciler.Options{InventoryNamespace: "baton-system", Logger: slog.Default()})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	res, err := r.Sync(context.Background(), reconciler.Request{
		Environment:      "staging",
		Revision:         "4f1c2e9",
		DefaultNamespace: "shop",
		Objects:          objects,
		Prune:            true,
		Ignore: []reconciler.IgnoreRule{
			{Group: "apps", Kind: "Deployment", Paths: []string{"/spec/replicas"}}, // scaled by an HPA
		},
	})
	for _, c := range res.Changes {
		if c.Action != reconciler.ActionUnchanged {
			fmt.Println(c.Action, c.Ref)
		}
	}
	if err != nil {
		fmt.Println("sync failed:", err)
	}
}
