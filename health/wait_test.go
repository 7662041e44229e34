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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestWaitHealthyRollout(t *testing.T) {
	kube := env.Clientset(t)
	ns := namespace(t, kube)
	createDeployment(t, kube, deployment(ns, "api", 3, ""))
	if _, err := kube.CoreV1().Services(ns).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	refs := []ObjectRef{ref("Deployment", ns, "api"), ref("Service", ns, "api"), {Version: "v1", Kind: "Namespace", Name: ns}}
	rep := newChecker(t).Wait(ctx, refs, WaitOptions{})
	if rep.Overall != Healthy || rep.Cause != NoCause {
		t.Fatalf("report: %s", describe(rep))
	}
	if rep.Message != "3/3 objects ready" {
		t.Errorf("message = %q", rep.Message)
	}
	if len(rep.Objects) != 3 {
		t.Fatalf("%d objects, want 3", len(rep.Objects))
	}
	if want := fmt.Sprintf("Deployment %s/api: 3/3 pods available", ns); rep.Objects[0].Message != want {
		t.Errorf("deployment message = %q, want %q", rep.Objects[0].Message, want)
	}
	for _, o := range rep.Objects {
		if o.Status != Current || o.ReadyAt.IsZero() || o.ReadyAt.Before(rep.Started) || o.ReadyAt.After(rep.Finished) {
			t.Errorf("%s: status %s ready at %s, want Current within [%s, %s]", o.Ref, o.Status, o.ReadyAt, rep.Started, rep.Finished)
		}
	}
}

// causeCase reproduces one cause in a fresh namespace.
type causeCase struct {
	name  string
	cause Cause
	// setup creates the failing objects and returns the reference to wait
	// for.
	setup func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef
	// shown says when the cluster shows the cause (on a pod, or an event
	// for refused pods), for the latency figure.
	shown func(*corev1.Pod) bool
	// failFast: Wait must return Degraded on its own, long before the
	// timeout; otherwise the test cancels the wait once the cause is named.
	failFast bool
	// message is the pattern of the object's message.
	message string
}

func deploymentCase(name, failure string, replicas int32) func(*testing.T, kubernetes.Interface, string) ObjectRef {
	return func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef {
		createDeployment(t, kube, deployment(ns, name, replicas, failure))
		return ref("Deployment", ns, name)
	}
}

var causeCases = []causeCase{
	{
		name: "crashloop", cause: CrashLoop, failFast: true,
		setup: deploymentCase("api", testenv.FailCrashLoop, 3),
		shown: waitingReason("CrashLoopBackOff"),
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: container api CrashLoopBackOff \(last exit 1 Error, 4 restarts\)( \(and [12] more pods?\))?$`,
	},
	{
		name: "oomkilled", cause: OOMKilled, failFast: true,
		setup: deploymentCase("api", testenv.FailOOMKilled, 3),
		shown: lastTerminated("OOMKilled"),
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: container api OOMKilled \(exit 137, 3 restarts\)( \(and [12] more pods?\))?$`,
	},
	{
		name: "imagepull", cause: ImagePull, failFast: true,
		setup: deploymentCase("api", testenv.FailImagePull, 3),
		shown: waitingReason("ImagePullBackOff"),
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: container api cannot pull image "registry.example/api:1.0" \(ImagePullBackOff: Back-off pulling image "registry.example/api:1.0": not found\)( \(and [12] more pods?\))?$`,
	},
	{
		name: "readiness never true", cause: ProbeFailing,
		setup: deploymentCase("api", testenv.FailNotReady, 3),
		shown: runningNotReady,
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: container api running but not ready( \(Readiness probe failed: HTTP probe failed with statuscode: 503\))?( \(and [12] more pods?\))?$`,
	},
	{
		name: "unschedulable", cause: Unschedulable,
		setup: func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef {
			d := deployment(ns, "api", 3, "")
			d.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("1000")
			createDeployment(t, kube, d)
			return ref("Deployment", ns, "api")
		},
		shown: unschedulable,
		message: `^Deployment ` + nsRE + `/api: 0/3 updated pods ready; pod api-` + hashRE + `-` + hashRE +
			`: unschedulable: 0/3 nodes are available: 3 Insufficient cpu\.( \(and [12] more pods?\))?$`,
	},
	{
		name: "quota", cause: QuotaExceeded,
		setup: func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef {
			createQuota(t, kube, ns, 1)
			createDeployment(t, kube, deployment(ns, "api", 3, ""))
			return ref("Deployment", ns, "api")
		},
		message: `^Deployment ` + nsRE + `/api: [01]/3 updated pods ready; replicaset api-` + hashRE +
			`: cannot create pods: pods "api-` + hashRE + `-` + hashRE + `" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1$`,
	},
	{
		name: "missing configmap", cause: ConfigError,
		// kwok does not simulate CreateContainerConfigError. The pod is
		// labelled so that kwok leaves its status alone, and the status a
		// kubelet reports for a missing ConfigMap is written through the
		// pods/status subresource with the admin client once the scheduler
		// has bound it.
		setup: func(t *testing.T, kube kubernetes.Interface, ns string) ObjectRef {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns, Labels: map[string]string{testenv.ManualStatusLabel: "true"}},
				Spec:       podSpec("app"),
			}
			pod.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}}
			if _, err := kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				writeConfigError(t, kube, ns, "app")
			}()
			t.Cleanup(func() { <-done })
			return ref("Pod", ns, "app")
		},
		shown:   waitingReason("CreateContainerConfigError"),
		message: `^Pod ` + nsRE + `/app: container app: configmap "app-config" not found \(CreateContainerConfigError\)$`,
	},
}

// TestWaitNamesCause reproduces each cause for real and checks the wait
// names it, with the pod and container at fault. For the closing note it
// logs the seconds from the cluster showing the cause to the checker
// naming it ("latency <cause>: ...").
func TestWaitNamesCause(t *testing.T) {
	for _, tc := range causeCases {
		t.Run(tc.name, func(t *testing.T) {
			kube := env.Clientset(t)
			ns := namespace(t, kube)
			var shownAt func(context.Context) time.Time
			if tc.shown != nil {
				pw := watchPods(t, kube, ns, map[string]func(*corev1.Pod) bool{tc.name: tc.shown})
				shownAt = func(ctx context.Context) time.Time { return pw.first(t, ctx, tc.name) }
			} else {
				ew := watchEvents(t, kube, ns, "FailedCreate")
				shownAt = func(ctx context.Context) time.Time { return ew.first(t, ctx) }
			}
			r := tc.setup(t, kube, ns)

			// A long timeout and a shorter test deadline: a fail-fast wait
			// that came back Degraded (not Cancelled) did not need the
			// timeout.
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			prog := newProgress()
			opts := WaitOptions{Timeout: 5 * time.Minute, OnProgress: func(rep Report) {
				prog.record(rep)
				if !tc.failFast && rep.Objects[0].Cause == tc.cause {
					cancel() // named: enough for a cause that does not end the wait
				}
			}}
			rep := newChecker(t).Wait(ctx, []ObjectRef{r}, opts)

			wantOverall := Degraded
			if !tc.failFast {
				wantOverall = Cancelled
			}
			if rep.Overall != wantOverall {
				t.Fatalf("overall %s, want %s: %s", rep.Overall, wantOverall, describe(rep))
			}
			o := rep.Objects[0]
			if o.Cause != tc.cause {
				t.Fatalf("cause %q, want %q: %s", o.Cause, tc.cause, describe(rep))
			}
			if !regexp.MustCompile(tc.message).MatchString(o.Message) {
				t.Errorf("message = %q\nwant match for %s", o.Message, tc.message)
			}
			if tc.failFast {
				if rep.Cause != tc.cause || rep.Message != o.Message || o.Status != Failed {
					t.Errorf("report cause %q status %s message %q, want the object's", rep.Cause, o.Status, rep.Message)
				}
			}
			// The wait's context may be cancelled by now.
			sctx, scancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer scancel()
			latency(t, tc.cause, shownAt(sctx), prog.firstNamed(t, tc.cause, rep))
		})
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
	want := fmt.Sprintf("timed out after 2s: 0/1 objects ready; Service %s/edge: waiting for a load balancer address", ns)
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

func createQuota(t *testing.T, kube kubernetes.Interface, ns string, pods int64) {
	t.Helper()
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(pods, resource.DecimalSI)}},
	}
	if _, err := kube.CoreV1().ResourceQuotas(ns).Create(t.Context(), q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Admission enforces a quota only once the quota controller has
	// computed its usage.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := kube.CoreV1().ResourceQuotas(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if q, ok := ev.Object.(*corev1.ResourceQuota); ok && q.Status.Used != nil {
			return
		}
	}
	t.Fatalf("quota in %s: usage never computed", ns)
}

// writeConfigError writes the status a kubelet reports when a ConfigMap in
// envFrom is missing, once the pod is bound. It runs in its own goroutine
// so the wait is already watching when the status changes, as in
// production.
func writeConfigError(t *testing.T, kube kubernetes.Interface, ns, name string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := writePodStatus(ctx, kube, ns, name, func(pod *corev1.Pod) {
		now := metav1.Now()
		pod.Status.Phase = corev1.PodPending
		pod.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: now},
		}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: name, Image: pod.Spec.Containers[0].Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CreateContainerConfigError", Message: `configmap "app-config" not found`,
			}},
		}}
	})
	if err != nil && t.Context().Err() == nil {
		t.Error(err)
	}
}
