// Command testenv prepares and runs the test environment by hand.
//
//	testenv build   build what the tests run into the cache (once): the
//	                control plane, the forge and Prometheus
//	testenv up      start a control plane and wait; prints its kubeconfig
//	testenv clean   remove the cache of built programs
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/forge"
	"github.com/baton-gitops/baton/internal/testenv/prometheus"
	"github.com/baton-gitops/baton/internal/testenv/toolcache"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: testenv build|up|clean")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "build":
		err = build(ctx)
	case "up":
		err = up(ctx)
	case "clean":
		var dir string
		if dir, err = toolcache.Dir(); err == nil {
			fmt.Println("removing", dir)
			err = os.RemoveAll(dir)
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
}

// build prepares every program the tests start, so that their one-time
// build shows its progress before the tests run (go test only prints a
// package's output when the package finishes). The control plane builds
// beside the forge and Prometheus: they share no packages.
func build(ctx context.Context) error {
	return toolcache.EnsureInLanes(ctx, os.Stdout,
		[]toolcache.EnsureFunc{testenv.EnsureBinaries},
		[]toolcache.EnsureFunc{forge.EnsureBinaries, prometheus.EnsureBinaries})
}

func up(ctx context.Context) error {
	start := time.Now()
	c, err := testenv.Start(ctx, testenv.Options{Progress: os.Stdout})
	if err != nil {
		return err
	}
	defer c.Stop()
	fmt.Printf("control plane ready in %s\nexport KUBECONFIG=%s\n(Ctrl-C stops it)\n", time.Since(start).Round(time.Millisecond), c.KubeconfigPath())
	<-ctx.Done()
	return nil
}
