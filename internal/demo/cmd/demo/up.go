package main

import (
	"context"
	"fmt"

	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/baton-gitops/baton/internal/demo"
	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/forge"
	"github.com/baton-gitops/baton/internal/testenv/toolcache"
)

// agentNamespace holds the agents' inventories and Leases (one Lease per
// agent), so that `baton status` reads all three environments.
const agentNamespace = "baton-system"

// up builds, starts the parts, tells the story and waits for ctx to end.
func up(ctx context.Context, state string) error {
	if b, err := os.ReadFile(pidFile(state)); err == nil {
		if pid, err := strconv.Atoi(string(b)); err == nil {
			if p, _ := os.FindProcess(pid); p.Signal(syscallZero) == nil {
				return fmt.Errorf("a demo already runs (pid %d); stop it with `make demo-down`", pid)
			}
		}
	}
	if err := os.WriteFile(pidFile(state), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidFile(state))

	progress := os.Stderr
	start := time.Now()
	fmt.Fprintln(progress, "== building (the first run builds the control plane and Gitea: minutes; later runs: seconds)")
	if err := toolcache.EnsureInLanes(ctx, progress,
		[]toolcache.EnsureFunc{testenv.EnsureBinaries},
		[]toolcache.EnsureFunc{forge.EnsureBinaries}); err != nil {
		return err
	}
	baton := filepath.Join(state, "baton")
	fmt.Fprintln(progress, "building bin baton (the CLI the story uses) ...")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", baton, "./cmd/baton").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/baton: %w: %s", err, out)
	}

	fmt.Fprintln(progress, "== starting the local control plane and the local forge")
	cluster, err := testenv.Start(ctx, testenv.Options{Progress: progress})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	gitea, err := forge.Start(ctx, forge.Options{Progress: progress})
	if err != nil {
		return err
	}
	defer gitea.Stop()

	cs, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		return err
	}
	namespaces := map[string]string{"dev": "shop-dev", "staging": "shop-staging", "prod": "shop-prod"}
	for _, ns := range []string{namespaces["dev"], namespaces["staging"], namespaces["prod"], agentNamespace} {
		if err := createNamespace(ctx, cs, ns); err != nil {
			return err
		}
	}
	// As `kubectl apply -k manifests/` would: the agents publish their
	// status as Environment objects, which `baton status` reads.
	if err := envobject.InstallCRD(ctx, cluster.Config()); err != nil {
		return err
	}
	if _, err := gitea.CreateRepo(ctx, "shop"); err != nil {
		return err
	}
	work := filepath.Join(state, "work")
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	clone, err := demo.PushSample(ctx, filepath.Join(work, "shop"), gitea.AuthenticatedURL("shop"))
	if err != nil {
		return err
	}
	for _, env := range demo.Environments {
		if err := gitea.WaitBranch(ctx, "shop", demo.Branch(env), ""); err != nil {
			return err
		}
	}
	token := filepath.Join(work, "forge-token")
	if err := os.WriteFile(token, []byte(gitea.Token()+"\n"), 0o600); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(state, "agents.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	// client-go's leader election logs through klog: into the same file.
	klog.LogToStderr(false)
	klog.SetOutput(logFile)
	agents := map[string]*demo.Agent{}
	for _, env := range demo.Environments {
		cfg := demo.Config(demo.ConfigOptions{Sync: []string{env}, RepoURL: gitea.CloneURL("shop"), User: gitea.User(),
			TokenFile: token, ForgeURL: gitea.URL(), Repository: gitea.User() + "/shop", Namespaces: namespaces,
			AgentNamespace: agentNamespace})
		if err := os.WriteFile(filepath.Join(work, env+".yaml"), []byte(cfg), 0o600); err != nil {
			return err
		}
		a, err := demo.StartAgent(ctx, demo.AgentOptions{Config: cfg, REST: cluster.Config(),
			CacheDir: filepath.Join(work, "cache-"+env),
			Logger:   slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		if err != nil {
			return err
		}
		defer func() { _ = a.Stop(30 * time.Second) }()
		agents[env] = a
	}
	// The CLI reads all three environments: the same configuration with
	// every environment in sync (it applies nothing itself).
	cliConfig := demo.Config(demo.ConfigOptions{Sync: demo.Environments, RepoURL: gitea.CloneURL("shop"), User: gitea.User(),
		TokenFile: token, ForgeURL: gitea.URL(), Repository: gitea.User() + "/shop", Namespaces: namespaces,
		AgentNamespace: agentNamespace})
	if err := os.WriteFile(filepath.Join(work, "baton.yaml"), []byte(cliConfig), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(progress, "== ready in %s\n\n", time.Since(start).Round(100*time.Millisecond))

	s := &story{out: os.Stdout, start: time.Now(), clone: clone, gitea: gitea, agents: agents,
		baton: baton, config: filepath.Join(work, "baton.yaml"), kubeconfig: cluster.KubeconfigPath(), cacheHome: work}
	if err := s.run(ctx); err != nil {
		return fmt.Errorf("%w (the agents' log: %s)", err, logFile.Name())
	}

	fmt.Println()
	fmt.Println("Where to look:")
	fmt.Printf("  forge         %s%s/shop  (user %s, password %s)\n", gitea.URL(), gitea.User(), gitea.User(), gitea.Password())
	for _, env := range demo.Environments {
		fmt.Printf("  %-8s      %s/api/status   %s/metrics\n", env, agents[env].URL, agents[env].URL)
	}
	fmt.Printf("  kubeconfig    %s\n", cluster.KubeconfigPath())
	fmt.Printf("  agents' log   %s\n", logFile.Name())
	fmt.Println("\nThe demo keeps running. Stop it with Ctrl-C or `make demo-down`.")
	<-ctx.Done()
	fmt.Println("\nstopping the agents, the forge and the control plane ...")
	return nil
}

func createNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}
