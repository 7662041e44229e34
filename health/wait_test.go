package health

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

func TestWaitHealthyRollout(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	createDeployment(t, kube, deployment(ns, "api", 3, ""))
	// Pods that warm up for a few seconds: the wait sees the rollout in
	// progress before it is done.
	createDeployment(t, kube, deployment(ns, "worker", 2, testenv.FailSlowReady))
	if _, err := kube.CoreV1().Services(ns).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	refs := []ObjectRef{ref("Deployment", ns, "api"), ref("Deployment", ns, "worker"), ref("Service", ns, "api"),
		{Version: "v1", Kind: "Namespace", Name: ns}}
	var progress []Report
	rep := newChecker(t).Wait(ctx, refs, WaitOptions{OnProgress: func(r Report) { progress = append(progress, r) }})
	if rep.Overall != Healthy || rep.Cause != NoCause {
		t.Fatalf("report: %s", describe(rep))
	}
	if rep.Message != "4/4 objects ready" {
		t.Errorf("message = %q", rep.Message)
	}
	if len(rep.Objects) != 4 {
		t.Fatalf("%d objects, want 4", len(rep.Objects))
	}
	sawWarming := false
	for _, r := range progress {
		sawWarming = sawWarming || (r.Overall == Progressing && r.Objects[1].Status == InProgress)
	}
	if !sawWarming {
		t.Errorf("no progress report showed the warming Deployment in progress (%d reports)", len(progress))
	}
	if want := fmt.Sprintf("Deployment %s/api: 3/3 pods available", ns); rep.Objects[0].Message != want {
		t.Errorf("deployment message = %q, want %q", rep.Objects[0].Message, want)
	}
	if !rep.Objects[1].ReadyAt.After(rep.Objects[0].ReadyAt) {
		t.Errorf("worker ready at %s, not after api at %s", rep.Objects[1].ReadyAt, rep.Objects[0].ReadyAt)
	}
	for _, o := range rep.Objects {
		if o.Status != Current || o.ReadyAt.IsZero() || o.ReadyAt.Before(rep.Started) || o.ReadyAt.After(rep.Finished) {
			t.Errorf("%s: status %s ready at %s, want Current within [%s, %s]", o.Ref, o.Status, o.ReadyAt, rep.Started, rep.Finished)
		}
	}
}

// TestFinderWithAPIReader: the one-off reader (API calls, no caches) finds
// the same cause as the waiting checker.
func TestFinderWithAPIReader(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	createDeployment(t, kube, deployment(ns, "api", 2, testenv.FailCrashLoop))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	rep := newChecker(t).Wait(ctx, []ObjectRef{ref("Deployment", ns, "api")}, WaitOptions{})
	if rep.Overall != Degraded {
		t.Fatalf("wait: %s", describe(rep))
	}
	d, err := env.Dynamic(t).Resource(gvrDeployment).Namespace(ns).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewFinder(NewClusterReader(kube)).Find(ctx, d, Compute(d), DiagnoseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Cause != CrashLoop || !got.Certain || !strings.HasPrefix(got.Message, fmt.Sprintf("Deployment %s/api: 0/2 updated pods ready; pod api-", ns)) {
		t.Errorf("diagnosis %+v", got)
	}
}

// TestWaitFailsFast: a passed progress deadline and a failed Job end the
// wait on their own, long before its 5-minute timeout (the test's context
// allows 60 s; a wait that needed the timeout would come back Cancelled).
func TestWaitFailsFast(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	late := deployment(ns, "late", 2, testenv.FailNotReady)
	late.Spec.ProgressDeadlineSeconds = new(int32(2))
	createDeployment(t, kube, late)
	job := map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"name": "report", "namespace": ns},
		"spec": map[string]any{
			"activeDeadlineSeconds": int64(2),
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{testenv.FailureLabel: testenv.FailNotReady}},
				"spec": map[string]any{"restartPolicy": "Never",
					"containers": []any{map[string]any{"name": "report", "image": "registry.example/report:1.0"}}},
			},
		},
	}
	if _, err := env.Dynamic(t).Resource(gvrJob).Namespace(ns).Create(t.Context(), &unstructured.Unstructured{Object: job}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		ref     ObjectRef
		cause   Cause
		message string
	}{
		{ref("Deployment", ns, "late"), ProbeFailing, `^Deployment ` + nsRE + `/late: progress deadline exceeded, 0/2 updated pods ready; pod late-`},
		{ref("Job", ns, "report"), JobFailed, `^Job ` + nsRE + `/report: job failed: DeadlineExceeded: Job was active longer than specified deadline$`},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		rep := newChecker(t).Wait(ctx, []ObjectRef{tc.ref}, WaitOptions{Timeout: 5 * time.Minute})
		cancel()
		if rep.Overall != Degraded || rep.Cause != tc.cause || rep.Objects[0].Status != Failed {
			t.Errorf("%s: %s", tc.ref, describe(rep))
			continue
		}
		if !regexp.MustCompile(tc.message).MatchString(rep.Message) {
			t.Errorf("%s: message %q, want match for %s", tc.ref, rep.Message, tc.message)
		}
	}
}

// TestWaitCancelledByNewRevision: cancelling the context (a newer revision
// arrived) ends a wait that would otherwise run to its timeout, and the
// report says so and keeps what was known.
func TestWaitCancelledByNewRevision(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	createDeployment(t, kube, deployment(ns, "api", 2, testenv.FailNotReady))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evaluated := make(chan struct{})
	var once bool
	done := make(chan Report, 1)
	go func() {
		done <- newChecker(t).Wait(ctx, []ObjectRef{ref("Deployment", ns, "api")}, WaitOptions{
			Timeout: 5 * time.Minute,
			OnProgress: func(Report) {
				if !once {
					once = true
					close(evaluated)
				}
			},
		})
	}()
	select {
	case <-evaluated:
	case <-time.After(60 * time.Second):
		t.Fatal("the wait never reported progress")
	}
	cancel()
	var rep Report
	select {
	case rep = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end within 10 s of its cancellation")
	}
	if rep.Overall != Cancelled || rep.Cause != NoCause || !strings.HasPrefix(rep.Message, "cancelled: 0/1 objects ready; Deployment "+ns+"/api") {
		t.Errorf("report: %s", describe(rep))
	}
	if rep.Objects[0].Status != InProgress {
		t.Errorf("object status %s, want InProgress kept in the report", rep.Objects[0].Status)
	}
}

// TestWaitTimeout: at the timeout the report is Degraded and says so; with
// no cause found the cause is TimedOut.
func TestWaitTimeout(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	if _, err := kube.CoreV1().Services(ns).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "edge"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 443}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := newChecker(t)
	rep := c.Wait(t.Context(), []ObjectRef{ref("Service", ns, "edge")}, WaitOptions{Timeout: 2 * time.Second})
	want := fmt.Sprintf("timed out after 2s: 0/1 objects ready; Service %s/edge: waiting for a load-balancer address"+
		" (none comes without a load-balancer controller; health.loadBalancers: skip to not wait)", ns)
	if rep.Overall != Degraded || rep.Cause != TimedOut || rep.Message != want {
		t.Errorf("report: %s\nwant message %q", describe(rep), want)
	}
	// The same Service is fine where load balancers are not awaited.
	rep = c.Wait(t.Context(), []ObjectRef{ref("Service", ns, "edge")}, WaitOptions{Timeout: time.Minute, EvalOptions: EvalOptions{SkipLoadBalancer: true}})
	if rep.Overall != Healthy {
		t.Errorf("with SkipLoadBalancer: %s", describe(rep))
	}
}

// TestBadInput: bad input gets an error naming the field or object.
func TestBadInput(t *testing.T) {
	if _, err := NewChecker(nil, CheckerOptions{}); err == nil || !strings.Contains(err.Error(), "rest config is nil") {
		t.Errorf("nil config: %v", err)
	}
	if _, err := NewChecker(&rest.Config{}, CheckerOptions{}); err == nil || !strings.Contains(err.Error(), "no host") {
		t.Errorf("empty config: %v", err)
	}
	c := newChecker(t)
	for _, tc := range []struct {
		refs []ObjectRef
		opts WaitOptions
		want string
	}{
		{[]ObjectRef{{Group: "apps", Kind: "Deployment", Name: "api"}}, WaitOptions{}, "Deployment/api: namespace is required for the namespaced kind Deployment.apps"},
		{[]ObjectRef{{Kind: "ConfigMap", Namespace: "x"}}, WaitOptions{}, "object 0 (ConfigMap/x/): kind and name are required"},
		{nil, WaitOptions{Timeout: -time.Second}, "timeout -1s is negative"},
		{nil, WaitOptions{EvalOptions: EvalOptions{RestartThreshold: -1}}, "restart threshold -1 is negative"},
	} {
		rep := c.Wait(t.Context(), tc.refs, tc.opts)
		if rep.Overall != OverallUnknown || rep.Err == nil || !strings.Contains(rep.Err.Error(), tc.want) {
			t.Errorf("Wait(%v): %s (err %v), want error containing %q", tc.refs, describe(rep), rep.Err, tc.want)
		}
	}
	if err := c.Monitor(t.Context(), nil, MonitorOptions{}, nil); err == nil || !strings.Contains(err.Error(), "onChange is nil") {
		t.Errorf("Monitor without callback: %v", err)
	}
}

// TestWaitUnknownKind: a kind the cluster does not serve (yet) is not bad
// input, since a CRD applied in the same sync may not be discovered yet; it
// reads Unknown until the timeout.
func TestWaitUnknownKind(t *testing.T) {
	r := ObjectRef{Group: "nowhere.example", Version: "v1", Kind: "Gizmo", Namespace: "default", Name: "g"}
	rep := newChecker(t).Wait(t.Context(), []ObjectRef{r}, WaitOptions{Timeout: 3 * time.Second})
	if rep.Overall != Degraded || rep.Cause != TimedOut || rep.Objects[0].Status != Unknown ||
		!strings.Contains(rep.Objects[0].Message, "Gizmo/default/g: resolve kind") {
		t.Errorf("report: %s", describe(rep))
	}
}

// TestCheck: a one-off evaluation lists and reports without waiting; a
// missing object reads Unknown, not found.
func TestCheck(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rep := newChecker(t).Check(t.Context(), []ObjectRef{ref("ConfigMap", ns, "settings"), ref("ConfigMap", ns, "missing")}, EvalOptions{})
	if rep.Overall != Progressing || rep.Objects[0].Status != Current || rep.Objects[1].Status != Unknown ||
		rep.Objects[1].Message != "ConfigMap/"+ns+"/missing: not found" {
		t.Errorf("report: %s", describe(rep))
	}
}

// TestWaitSurvivesAPIServerRestart: the watches reconnect after the
// apiserver comes back, and a change made after the restart ends the wait.
func TestWaitSurvivesAPIServerRestart(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	createDeployment(t, kube, deployment(ns, "api", 2, testenv.FailNotReady))

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	started := make(chan struct{})
	var once bool
	done := make(chan Report, 1)
	go func() {
		done <- newChecker(t).Wait(ctx, []ObjectRef{ref("Deployment", ns, "api")}, WaitOptions{OnProgress: func(Report) {
			if !once {
				once = true
				close(started)
			}
		}})
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the wait never reported progress")
	}
	env.StopAPIServer(t)
	env.StartAPIServer(t)
	// The fix: pods that become ready.
	patch := `{"spec":{"template":{"metadata":{"labels":{"` + testenv.FailureLabel + `":null}}}}}`
	if _, err := kube.AppsV1().Deployments(ns).Patch(ctx, "api", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rep := <-done
	if rep.Overall != Healthy {
		t.Errorf("report: %s", describe(rep))
	}
}
