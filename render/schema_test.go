package render

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// The first builds of a process run side by side: one patches a
// Deployment (kyaml then parses its built-in OpenAPI schema into
// process-wide maps), the other reads the scope of a kind kyaml does not
// precompute (it reads one of those maps without kyaml's lock). The race
// detector caught it in two agents of one test process; the check runs
// in a fresh process, since only a process's first parse races.
func TestFirstBuildsOfAProcessRunSideBySide(t *testing.T) {
	if os.Getenv("BATON_RENDER_FIRST_BUILDS") == "1" {
		firstBuildsSideBySide(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFirstBuildsOfAProcessRunSideBySide$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BATON_RENDER_FIRST_BUILDS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("two first builds side by side: %v\n%s", err, out)
	}
}

func firstBuildsSideBySide(t *testing.T) {
	snap := mapSnapshot(map[string]string{
		"patched/kustomization.yaml": "resources: [web.yaml]\npatches:\n  - path: replicas.yaml\n",
		"patched/web.yaml":           "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers: [{name: web, image: web:1}]\n",
		"patched/replicas.yaml":      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n",
		"custom/kustomization.yaml":  "namespace: team\nresources: [widget.yaml]\n",
		"custom/widget.yaml":         "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
	})
	r := newTestRenderer(t, Options{})
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, dir := range []string{"patched", "custom"} {
		wg.Go(func() {
			<-start
			if _, err := r.Render(context.Background(), snap, dir); err != nil {
				t.Errorf("render %s: %v", dir, err)
			}
		})
	}
	close(start)
	wg.Wait()
}
