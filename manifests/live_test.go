package manifests_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/events"
	"github.com/baton-gitops/baton/internal/metrics"
	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/internal/testenv/prometheus"
)

// web is the application's Deployment at an image tag; failure, when set,
// is the testenv failure label kwok acts on.
func web(tag, failure string) string {
	labels := "app: web"
	if failure != "" {
		labels += ", " + testenv.FailureLabel + ": " + failure
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {%s}}
    spec: {containers: [{name: web, image: "shop/web:%s"}]}
`, labels, tag)
}

// liveRepo is the deployment repository: a base and one overlay per
// environment, the same tree on every branch.
func liveRepo() map[string]string {
	files := map[string]string{
		"base/kustomization.yaml": "resources: [web.yaml, settings.yaml, old.yaml]\n",
		"base/web.yaml":           web("1", ""),
		"base/settings.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {value: from-git}\n",
		"base/old.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\ndata: {value: soon gone}\n",
	}
	for _, e := range []string{"dev", "staging", "prod", "broken"} {
		files["overlays/"+e+"/kustomization.yaml"] = "resources: [../../base]\n"
	}
	return files
}

// liveWorld is the scenario's cluster, git server, agent and Prometheus.
type liveWorld struct {
	srv     *gitserver.Server
	repo    *gitserver.Repo
	agentNS string
	ns      map[string]string // environment -> its namespace
	prom    *prometheus.Server
	start   time.Time
}

// TestLiveAgentFeedsTheDashboardAndAlerts runs a real agent (internal/agent
// with the metrics and events recorders, as cmd/baton wires them) against
// the control plane and the git server, scraped every second by a real
// Prometheus that evaluates the real alert rules. The agent syncs, fails,
// degrades, recovers and promotes (through a PromQL gate asking that same
// Prometheus); then every dashboard query must return data, every alert
// must become active in the scenario it describes, every metric named in
// them must be one the agent exports, and the Events must tell the story.
func TestLiveAgentFeedsTheDashboardAndAlerts(t *testing.T) {
	if testing.Short() {
		t.Skip("the live scenario takes a minute or two")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	w := &liveWorld{start: time.Now(), agentNS: env.Namespace(t), ns: map[string]string{}}
	for _, e := range []string{"dev", "staging", "broken", "locked"} {
		w.ns[e] = env.Namespace(t)
	}
	w.srv = gitserver.Start(t, gitserver.Options{})
	w.repo = w.srv.CreateRepo(t, "deploy", liveRepo())
	w.srv.CreateRepo(t, "locked", liveRepo()) // read with a revoked token
	w.repo.Commit(t, "env/broken", gitserver.Change{Write: liveRepo(), Message: "broken starts good"})

	rules := writeRuleFile(t, t.TempDir())
	w.prom = prometheus.StartT(t, prometheus.Options{RuleFiles: []string{rules}})

	m, reg := metrics.New(metrics.Options{})
	rec, err := events.New(env.Config(), events.Options{Namespace: w.agentNS, Host: "baton-live", Next: m,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	cfg := w.config(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// This test binary is also the render worker (testenv.Main), as the
	// baton binary is in a pod.
	worker, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{Config: cfg, REST: env.Config(), Identity: "baton-live", Listener: ln,
		Recorder: rec, SourceMetrics: m, Metrics: m.Handler(), RenderWorker: worker,
		Logger:      slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(agentCtx) }()
	defer func() {
		stopAgent()
		select {
		case err := <-agentDone:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop within 30s")
		}
	}()
	if err := w.prom.SetTargets("baton", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := w.prom.WaitUp(ctx, "baton", 1); err != nil {
		t.Fatal(err)
	}

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	step("first syncs", func(t *testing.T) {
		for _, e := range []string{"dev", "staging", "broken"} {
			w.wait(ctx, t, fmt.Sprintf(`baton_synced_revision_info{environment=%q}`, e))
		}
		w.wait(ctx, t, `baton_health_status{environment="dev",status="healthy"} == 1`)
		w.wait(ctx, t, `baton_leader == 1`)
	})

	var d1 string
	step("a change is deployed and promoted through the PromQL gate", func(t *testing.T) {
		files := map[string]string{"base/web.yaml": web("2", ""),
			"base/kustomization.yaml": "resources: [web.yaml, settings.yaml]\n"}
		d1 = w.repo.Commit(t, "env/dev", gitserver.Change{Write: files, Delete: []string{"base/old.yaml"}, Message: "web 2"})
		w.wait(ctx, t, fmt.Sprintf(`baton_synced_revision_info{environment="dev",revision=%q}`, d1))
		w.wait(ctx, t, `baton_deployments_total{environment="dev"} > 0`)
		w.wait(ctx, t, `baton_change_lead_time_seconds_count{environment="dev"} > 0`)
		// The promotion lands in staging, is synced and healthy there.
		w.wait(ctx, t, `baton_promotion_lead_time_seconds_count{from="dev",to="staging"} > 0`)
		w.wait(ctx, t, `baton_deployments_total{environment="staging"} > 0`)
		msg := gitserver.RunGit(t, w.repo.Path, nil, "log", "-1", "--format=%B", "env/staging")
		if !strings.Contains(msg, "Baton-Promoted-From: dev@"+d1) || !strings.Contains(msg, "dev-healthy passed (1 >= 1)") {
			t.Fatalf("promotion commit on env/staging:\n%s\nwant it promoted from dev@%s with the PromQL gate passed", msg, d1)
		}
		// staging -> prod waits for a one-hour soak.
		w.wait(ctx, t, `baton_promotion_pending{from="staging",to="prod"} == 1`)
		w.waitAlert(ctx, t, "BatonPromotionPending", `from="staging",to="prod"`)
	})

	var d2 string
	step("a crashing revision degrades dev and freezes its promotions", func(t *testing.T) {
		d2 = w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"base/web.yaml": web("3", testenv.FailCrashLoop)},
			Message: "web 3"})
		w.wait(ctx, t, fmt.Sprintf(`baton_synced_revision_info{environment="dev",revision=%q}`, d2))
		w.waitAlert(ctx, t, "BatonEnvironmentDegraded", `environment="dev"`)
		w.wait(ctx, t, `baton_health_failures_total{environment="dev",cause="crashloop"} > 0`)
		w.wait(ctx, t, `baton_change_failures_total{environment="dev"} > 0`)
		w.waitAlert(ctx, t, "BatonPromotionFrozen", `from="dev",to="staging"`)
	})

	step("a revert restores dev", func(t *testing.T) {
		d3 := w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"base/web.yaml": web("2", "")},
			Message: fmt.Sprintf("Revert \"web 3\"\n\nThis reverts commit %s.\n", d2)})
		w.wait(ctx, t, fmt.Sprintf(`baton_synced_revision_info{environment="dev",revision=%q}`, d3))
		w.wait(ctx, t, `baton_time_to_restore_seconds_count{environment="dev"} > 0`)
		w.wait(ctx, t, `baton_change_failures_total{environment="dev"} >= 2`) // the crash, and the revert
		w.wait(ctx, t, `baton_promotion_frozen{from="dev",to="staging"} == 0`)
	})

	step("a render failure and a revoked token fail syncs", func(t *testing.T) {
		w.repo.Commit(t, "env/broken", gitserver.Change{Write: map[string]string{
			"overlays/broken/kustomization.yaml": "resources: [../../base]\nnotAField: true\n"}, Message: "break it"})
		w.wait(ctx, t, `baton_render_errors_total{environment="broken"} > 0`)
		w.waitAlert(ctx, t, "BatonSyncFailing", `environment="broken"`)
		w.waitAlert(ctx, t, "BatonNoSuccessfulSync", `environment="broken"`)
		w.waitAlert(ctx, t, "BatonSyncFailing", `environment="locked"`)
		w.waitAlert(ctx, t, "BatonGitAuthFailing", fmt.Sprintf(`repository=%q`, w.srv.HTTPURL("locked")))
	})

	step("a commit outside its scope is refused", func(t *testing.T) {
		w.repo.Commit(t, "env/broken", gitserver.Change{Write: map[string]string{
			"overlays/broken/kustomization.yaml": "resources: [../../base, planted.yaml]\n",
			"overlays/broken/planted.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted, namespace: kube-system}\n",
		}, Message: "plant a ConfigMap in kube-system"})
		w.wait(ctx, t, `baton_sync_refused_total{environment="broken",rule="namespace"} > 0`)
		if _, err := env.Clientset(t).CoreV1().ConfigMaps("kube-system").Get(ctx, "planted", metav1.GetOptions{}); err == nil {
			t.Error("the refused ConfigMap exists in kube-system")
		}
	})

	step("drift that comes back in correct mode", func(t *testing.T) {
		fightCtx, stopFight := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { w.fight(fightCtx, t, w.ns["dev"], "settings") })
		w.waitAlert(ctx, t, "BatonDriftPersists", `environment="dev"`)
		stopFight()
		wg.Wait()
	})

	step("every dashboard query has data", func(t *testing.T) { w.checkDashboard(ctx, t) })
	step("every metric named is exported", func(t *testing.T) { checkMetricNames(t, reg) })
	step("the Events tell the story", func(t *testing.T) { w.checkEvents(ctx, t, d1) })
}

// config is the agent's baton.yaml: dev promotes to staging through a
// PromQL gate on the test's Prometheus, staging to prod after a soak of an
// hour; broken has a render failure coming; locked reads the repository
// with a revoked token.
func (w *liveWorld) config(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	revoked := filepath.Join(dir, "revoked")
	os.WriteFile(token, []byte(w.srv.Token+"\n"), 0o600)
	os.WriteFile(revoked, []byte("revoked-token\n"), 0o600)
	text := fmt.Sprintf(`
repositories:
  - name: deploy
    url: %[1]s
    auth: {username: %[2]s, tokenFile: %[3]s}
    interval: 1s
  - name: locked
    url: %[4]s
    auth: {username: %[2]s, tokenFile: %[5]s}
    interval: 1s
environments:
  - name: dev
    repository: deploy
    branch: env/dev
    path: overlays/dev
    namespace: %[6]s
    health: {timeout: 30s, soak: 1s}
  - name: staging
    repository: deploy
    branch: env/staging
    path: overlays/staging
    namespace: %[7]s
    health: {timeout: 30s, soak: 1h}
  - name: prod
    repository: deploy
    branch: env/prod
    path: overlays/prod
    namespace: prod
  - name: broken
    repository: deploy
    branch: env/broken
    path: overlays/broken
    namespace: %[8]s
  - name: locked
    repository: locked
    branch: env/dev
    path: overlays/dev
    namespace: %[9]s
sync: [dev, staging, broken, locked]
pipeline:
  order: [dev, staging, prod]
  edges:
    - from: dev
      to: staging
      policy: auto
      gates:
        metrics:
          - name: dev-healthy
            query: max(baton_health_status{environment="dev",status="healthy"})
            op: ">="
            threshold: 1
    - from: staging
      to: prod
      policy: auto
  prometheus: {url: %[10]s}
agent:
  namespace: %[11]s
  cacheDir: %[12]s
`, w.srv.HTTPURL("deploy"), w.srv.User, token, w.srv.HTTPURL("locked"), revoked,
		w.ns["dev"], w.ns["staging"], w.ns["broken"], w.ns["locked"], w.prom.URL, w.agentNS, t.TempDir())
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("scenario configuration: %v", err)
	}
	return cfg
}

// wait waits until expr returns at least one sample.
func (w *liveWorld) wait(ctx context.Context, t *testing.T, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if _, err := w.prom.WaitQuery(ctx, expr, prometheus.NonEmpty); err != nil {
		t.Fatal(err)
	}
}

// waitAlert waits until the alert's expression holds for the series
// matching selector and Prometheus, evaluating the real rule, has the
// alert pending or firing: its `for` duration is checked by promtool.
func (w *liveWorld) waitAlert(ctx context.Context, t *testing.T, alert, selector string) {
	t.Helper()
	w.wait(ctx, t, fmt.Sprintf(`ALERTS{alertname=%q,alertstate=~"pending|firing",%s}`, alert, selector))
	for _, r := range alertRules(t) {
		if r.Alert == alert {
			// The expression itself, as the rule file has it.
			samples, err := w.prom.Query(ctx, r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			if len(samples) == 0 {
				t.Fatalf("alert %s is active but its expression returns nothing now: %s", alert, r.Expr)
			}
			return
		}
	}
	t.Fatalf("no alert %s in the rules", alert)
}

// fight edits a ConfigMap by hand every few hundred milliseconds, as a
// misbehaving controller would, until ctx ends.
func (w *liveWorld) fight(ctx context.Context, t *testing.T, ns, name string) {
	cs := env.Clientset(t)
	for i := 0; ctx.Err() == nil; i++ {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			cm.Data = map[string]string{"value": fmt.Sprintf("edited by hand %d", i)}
			_, _ = cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond): // the pace of the fight, not a synchronisation
		}
	}
}

// checkDashboard runs every panel query as Grafana would over the
// scenario: range queries for graphs, instant ones for stats and tables,
// with the variables at "All" and $__range covering the scenario. Each
// must return at least one finite value.
func (w *liveWorld) checkDashboard(ctx context.Context, t *testing.T) {
	panels, variables := dashboardQueries(t)
	end := time.Now()
	rangeWindow := fmt.Sprintf("%ds", int(end.Sub(w.start).Seconds())+60)
	for _, q := range panels {
		expr := expand(q.Expr, rangeWindow)
		var values []float64
		series, err := w.prom.QueryRange(ctx, expr, w.start, end, 2*time.Second)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		for _, s := range series {
			values = append(values, s.Values...)
		}
		if instant, err := w.prom.Query(ctx, expr); err == nil {
			for _, s := range instant {
				values = append(values, s.Value)
			}
		}
		if !anyFinite(values) {
			t.Errorf("%s has no data: %s", q, expr)
		}
	}
	for _, sel := range variables {
		if got, err := w.prom.Query(ctx, expand(sel, rangeWindow)); err != nil || len(got) == 0 {
			t.Errorf("template variable selector %s: %v, %d series", sel, err, len(got))
		}
	}
}

func anyFinite(values []float64) bool {
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return true
		}
	}
	return false
}

// checkMetricNames checks every metric named by the dashboard and the
// alerts against what the agent's registry exports after the scenario.
func checkMetricNames(t *testing.T, g promclient.Gatherer) {
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	families := map[string]bool{}
	for _, mf := range mfs {
		families[mf.GetName()] = true
	}
	check := func(where, expr string) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s names no metric: %s", where, expr)
		}
		for _, n := range names {
			if !families[familyOf(n, families)] {
				t.Errorf("%s uses %s, which the agent does not export", where, n)
			}
		}
	}
	panels, variables := dashboardQueries(t)
	for _, q := range panels {
		check(q.String(), q.Expr)
	}
	for _, v := range variables {
		check("template variable", v)
	}
	for _, r := range alertRules(t) {
		check("alert "+r.Alert, r.Expr)
	}
}

// checkEvents waits until the Events on the environments' inventories
// hold every reason the scenario gives cause for.
func (w *liveWorld) checkEvents(ctx context.Context, t *testing.T, d1 string) {
	cs := env.Clientset(t)
	reasons := []string{events.ReasonSynced, events.ReasonSyncFailed, events.ReasonSyncRefused, events.ReasonPruned, events.ReasonDrifted,
		events.ReasonHealthDegraded, events.ReasonRecovered, events.ReasonPromoted, events.ReasonPromotionFrozen}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var missing []string
	var promoted *corev1.Event
	// The recorder writes in the background: poll the list.
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Events(w.agentNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		seen := map[string]bool{}
		for i, e := range list.Items {
			seen[e.Reason] = true
			if e.Reason == events.ReasonPromoted && e.Annotations[events.AnnotationRevision] == d1 {
				promoted = &list.Items[i]
			}
		}
		missing = nil
		for _, r := range reasons {
			if !seen[r] {
				missing = append(missing, r)
			}
		}
		return len(missing) == 0 && promoted != nil, nil
	})
	if err != nil {
		t.Fatalf("Events in %s: missing %v (Promoted for %s found: %v)", w.agentNS, missing, d1, promoted != nil)
	}
	if promoted.Annotations[events.AnnotationAuthor] != "Baton Test <test@baton.invalid>" ||
		promoted.Annotations[events.AnnotationTo] != "staging" || promoted.InvolvedObject.Kind != "Environment" || promoted.InvolvedObject.Name != "dev" {
		t.Errorf("Promoted event %+v", promoted)
	}
}

// testLog sends log lines to t.Log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
