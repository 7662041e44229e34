package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// runningAgent is an agent started by a test, in process, on the world's
// configuration (its own git store) and the package's cluster.
type runningAgent struct {
	*agent.Agent
	url string
}

// startAgent runs an agent until the test ends. promoter may be nil (the
// configuration's pipeline promotes).
func (w *world) startAgent(promoter agent.Promoter) *runningAgent {
	w.t.Helper()
	return w.startAgentOn(envConfig(), "agent-under-test", promoter, nil)
}

// startAgentOn runs an agent on the cluster of rc, with the world's
// configuration changed by mutate (when not nil).
func (w *world) startAgentOn(rc *rest.Config, identity string, promoter agent.Promoter, mutate func(*config.Config)) *runningAgent {
	w.t.Helper()
	require.NoError(w.t, envobject.InstallCRD(w.t.Context(), rc))
	cfg, err := config.Load(w.config)
	require.NoError(w.t, err)
	cfg.Agent.CacheDir = w.t.TempDir() // the agent's store, apart from the CLI's
	if mutate != nil {
		mutate(cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(w.t, err)
	a, err := agent.New(agent.Options{Config: cfg, REST: rc, Listener: ln, Identity: identity,
		Promoter: promoter, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(w.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		require.NoError(w.t, <-done)
	})
	return &runningAgent{Agent: a, url: "http://" + ln.Addr().String()}
}

// objects is a client for the world's Environment objects.
func (w *world) objects() *envobject.Client {
	return envobject.NewClient(env.Dynamic(w.t), w.agentNS)
}

// color reads the settings ConfigMap's color in the cluster.
func (w *world) color() string {
	w.t.Helper()
	cm, err := env.Clientset(w.t).CoreV1().ConfigMaps(w.appNS).Get(w.t.Context(), "settings", metav1.GetOptions{})
	require.NoError(w.t, err)
	return cm.Data["color"]
}

func setColor(color string) gitserver.Change {
	return gitserver.Change{Write: map[string]string{
		"base/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: " + color + "\n"}}
}

// The agent keeps an Environment object per environment; `kubectl wait
// --for=condition=Ready` (its client-go equivalent, Wait) returns once it
// is synced and healthy. Suspend stops applying within seconds, shown in
// the object, /api/status and baton status; resume syncs the head at once.
func TestSuspendStopsApplyingAndResumeRestarts(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent(nil)
	head := w.repo.Head(t, "env/dev")

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	e, err := w.waitReady(ctx, "dev")
	require.NoError(t, err, "kubectl wait --for=condition=Ready environment/dev")
	require.Equal(t, head[:12], e.Status.Revision)
	require.Equal(t, "Healthy", e.Status.Health.Status)
	require.Equal(t, "blue", w.color())

	n := w.normalizer()
	code, out, errOut := w.baton("suspend", "--env", "dev")
	require.Equal(t, 2, code)
	require.Equal(t, "baton suspend: --reason \"why\" is required: it is shown wherever the suspension is\n", errOut)
	started := time.Now()
	code, out, errOut = w.baton("suspend", "--env", "dev", "--reason", "INC-42: bad config")
	require.Equal(t, 0, code, errOut)
	golden(t, "suspend.golden", n.apply(out))
	t.Logf("suspend acknowledged by the agent in %s", time.Since(started).Round(time.Millisecond))

	// A new commit is polled (sync now) but not applied.
	green := w.repo.Commit(t, "env/dev", setColor("green"))
	code, out, errOut = w.baton("sync", "--env", "dev")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "dev: synced "+green[:12]+": suspended\n", out)
	require.Equal(t, "blue", w.color(), "a suspended environment was applied")

	e, err = w.objects().Get(t.Context(), "dev")
	require.NoError(t, err)
	require.Equal(t, &envobject.Suspension{By: "baton-testenv-admin", Reason: "INC-42: bad config", Since: e.Status.Suspended.Since, Source: "spec"}, e.Status.Suspended)
	require.Equal(t, "Suspended", findCondition(e, envobject.ConditionSynced).Reason)
	st := fetch(t, a.url)
	require.True(t, st.Environments[0].Suspended)
	require.Equal(t, "baton-testenv-admin", st.Environments[0].SuspendedBy)
	require.Equal(t, "INC-42: bad config", st.Environments[0].SuspendReason)
	code, out, errOut = w.baton("status")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "suspended by baton-testenv-admin: INC-42: bad config")

	// Resume: the head is applied at once.
	code, out, errOut = w.baton("resume", "--env", "dev", "--reason", "fixed")
	require.Equal(t, 0, code, errOut)
	golden(t, "resume.golden", n.apply(out))
	eventually(t, 30*time.Second, "the resumed environment to apply the green commit", func() bool { return w.color() == "green" })
	e, err = w.objects().Wait(ctx, "dev", func(e *envobject.Environment) bool {
		return envobject.Ready(e) && e.Status.Revision == green[:12]
	})
	require.NoError(t, err)
	require.Nil(t, e.Status.Suspended)

	// Who asked is in the environment's Events.
	evs, err := env.Clientset(t).CoreV1().Events(w.agentNS).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=dev,involvedObject.kind=Environment"})
	require.NoError(t, err)
	var reasons []string
	for _, ev := range evs.Items {
		if ev.Source.Component == envobject.FieldManagerCLI {
			reasons = append(reasons, ev.Reason+": "+ev.Message)
		}
	}
	require.ElementsMatch(t, []string{"SuspendRequested: suspended by baton-testenv-admin: INC-42: bad config",
		"SyncRequested: sync requested by baton-testenv-admin", "ResumeRequested: resumed by baton-testenv-admin: fixed"}, reasons)

	// Unknown environments are refused before anything is written.
	code, _, errOut = w.baton("suspend", "--env", "qa", "--reason", "x")
	require.Equal(t, 1, code)
	require.Equal(t, "baton suspend: no environment \"qa\" in the configuration (known: dev)\n", errOut)
}

// waitReady waits for the agent to create the environment's object, then
// as kubectl wait --for=condition=Ready does.
func (w *world) waitReady(ctx context.Context, name string) (*envobject.Environment, error) {
	w.t.Helper()
	eventually(w.t, 60*time.Second, "the agent to create environment "+name, func() bool {
		_, err := w.objects().Get(ctx, name)
		return err == nil
	})
	return w.objects().Wait(ctx, name, envobject.Ready)
}

func findCondition(e *envobject.Environment, t string) metav1.Condition {
	for _, c := range e.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return metav1.Condition{}
}

func fetch(t *testing.T, url string) agent.Status {
	t.Helper()
	resp, err := http.Get(url + agent.PathStatus)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var st agent.Status
	require.NoError(t, json.Unmarshal(b, &st))
	return st
}
