// Command baton is the Baton GitOps agent and its command-line interface:
// `baton agent` runs in the cluster; render, diff, status, promote and
// set-image are run by hand or by CI. The verbs live in one file each;
// run is the whole program, so tests call it in process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/baton-gitops/baton/render"
)

func main() {
	// The agent renders each commit in a child process of this binary,
	// which bounds the memory a hostile commit can make Kustomize use.
	if render.IsWorker() {
		os.Exit(render.ServeWorker())
	}
	// SIGTERM (Kubernetes stopping the pod) and Ctrl-C cancel the context:
	// the agent stops cleanly, other verbs abandon their work.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
