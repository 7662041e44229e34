package health

import (
	"regexp"
	"testing"
	"time"
)

// ns and hash patterns for captured names.
const (
	nsRE   = `[a-z0-9-]+`
	hashRE = `[a-z0-9]+`
)

// lastOOM is when the first pod's container was last OOM-killed.
func lastOOM(t *testing.T, ev Evidence) time.Time {
	t.Helper()
	for _, p := range ev.Pods {
		for _, cs := range p.Status.ContainerStatuses {
			if term := cs.LastTerminationState.Terminated; term != nil && term.Reason == "OOMKilled" {
				return term.FinishedAt.Time
			}
		}
	}
	t.Fatal("fixture has no OOM-killed container")
	return time.Time{}
}

func TestDiagnose(t *testing.T) {
	cases := []struct {
		name    string
		fixture string
		opts    DiagnoseOptions
		// now, if set, gives DiagnoseOptions.Now from the evidence.
		now     func(*testing.T, Evidence) time.Time
		cause   Cause
		certain bool
		message string
	}{
		{
			name: "crashloop", fixture: "deployment-crashloop", cause: CrashLoop, certain: true,
			message: `^Deployment ` + nsRE + `/crashloop: 0/3 updated pods ready; pod crashloop-` + hashRE + `-` + hashRE +
				`: container crashloop CrashLoopBackOff \(last exit 1 Error, 4 restarts\) \(and 2 more pods\)$`,
		},
		{
			name: "crashloop below threshold", fixture: "deployment-crashloop", opts: DiagnoseOptions{RestartThreshold: 5},
			cause: CrashLoop, certain: false, message: `CrashLoopBackOff \(last exit 1 Error, 4 restarts\)`,
		},
		{
			name: "oomkilled", fixture: "deployment-oomkilled", cause: OOMKilled, certain: true,
			message: `^Deployment ` + nsRE + `/oomkilled: 0/3 updated pods ready; pod oomkilled-` + hashRE + `-` + hashRE +
				`: container oomkilled OOMKilled \(exit 137, 3 restarts\) \(and 2 more pods\)$`,
		},
		{
			name: "oomkilled below threshold", fixture: "deployment-oomkilled", opts: DiagnoseOptions{RestartThreshold: 4},
			cause: OOMKilled, certain: false, message: `OOMKilled \(exit 137, 3 restarts\)`,
		},
		{
			name: "imagepull", fixture: "deployment-imagepull", cause: ImagePull, certain: true,
			message: `^Deployment ` + nsRE + `/imagepull: 0/3 updated pods ready; pod imagepull-` + hashRE + `-` + hashRE +
				`: container imagepull cannot pull image "registry.example/imagepull:1.0" \(ImagePullBackOff\) \(and 2 more pods\)$`,
		},
		{
			name: "readiness never true", fixture: "deployment-not-ready", cause: ProbeFailing, certain: false,
			message: `^Deployment ` + nsRE + `/not-ready: 0/3 updated pods ready; pod not-ready-` + hashRE + `-` + hashRE +
				`: container not-ready running but not ready \(Readiness probe failed: HTTP probe failed with statuscode: 503\) \(and 2 more pods\)$`,
		},
		{
			name: "unschedulable", fixture: "deployment-unschedulable", cause: Unschedulable, certain: false,
			message: `^Deployment ` + nsRE + `/huge: 0/2 updated pods ready; pod huge-` + hashRE + `-` + hashRE +
				`: unschedulable: 0/3 nodes are available: 3 Insufficient cpu\. \(and 1 more pod\)$`,
		},
		{
			name: "quota", fixture: "deployment-quota", cause: QuotaExceeded, certain: false,
			message: `^Deployment ` + nsRE + `/shop: 1/3 updated pods ready; replicaset shop-` + hashRE +
				`: cannot create pods, refused by ResourceQuota "pods": exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1$`,
		},
		{
			name: "quota on a bare replicaset", fixture: "replicaset-quota", cause: QuotaExceeded, certain: false,
			message: `^ReplicaSet ` + nsRE + `/worker: 0/2 pods available; replicaset worker: cannot create pods, refused by ResourceQuota "pods": ` +
				`exceeded quota: pods, requested: pods=1, used: pods=0, limited: pods=0$`,
		},
		{
			name: "deadline names the pods' cause", fixture: "deployment-deadline", cause: ProbeFailing, certain: true,
			message: `^Deployment ` + nsRE + `/late: progress deadline exceeded, 0/2 updated pods ready; pod late-` + hashRE + `-` + hashRE +
				`: container late running but not ready \(Readiness probe failed: HTTP probe failed with statuscode: 503\) \(and 1 more pod\)$`,
		},
		{
			name: "statefulset", fixture: "statefulset-crashloop", cause: CrashLoop, certain: true,
			message: `^StatefulSet ` + nsRE + `/cache: 1/2 pods created; pod cache-0: container cache CrashLoopBackOff \(last exit 1 Error, 4 restarts\)$`,
		},
		{
			name: "pod security refuses a statefulset's pod", fixture: "statefulset-forbidden", cause: Forbidden, certain: false,
			message: `^StatefulSet ` + nsRE + `/db: 0/1 pods created; statefulset db: cannot create pods, refused by PodSecurity "restricted:latest": ` +
				`allowPrivilegeEscalation != false \(container "db" must set securityContext\.allowPrivilegeEscalation=false\), .*…$`,
		},
		{
			name: "job failed", fixture: "job-failed", cause: JobFailed, certain: true,
			message: `^Job ` + nsRE + `/report: job failed: DeadlineExceeded: Job was active longer than specified deadline$`,
		},
		{
			name: "missing configmap", fixture: "pod-configerror", cause: ConfigError, certain: false,
			message: `^Pod ` + nsRE + `/app: container app: configmap "app-config" not found \(CreateContainerConfigError\)$`,
		},
		{
			name: "recent oom of a ready deployment", fixture: "deployment-recent-oom", cause: OOMKilled, certain: true,
			now: func(t *testing.T, ev Evidence) time.Time { return lastOOM(t, ev).Add(2 * time.Minute) },
			message: `^Deployment ` + nsRE + `/cart: 2/2 pods available; pod cart-` + hashRE + `-` + hashRE +
				`: container cart OOMKilled at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(exit 137, 1 restart\) \(and 1 more pod\)$`,
		},
		{
			name: "old oom of a ready deployment", fixture: "deployment-recent-oom", cause: NoCause, certain: false,
			now:     func(t *testing.T, ev Evidence) time.Time { return lastOOM(t, ev).Add(11 * time.Minute) },
			message: `^Deployment ` + nsRE + `/cart: 2/2 pods available$`,
		},
		{
			name: "oom of a ready deployment without a clock", fixture: "deployment-recent-oom", cause: NoCause, certain: false,
			message: `^Deployment ` + nsRE + `/cart: 2/2 pods available$`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj, ev := loadCase(t, "diagnose/"+tc.fixture)
			opts := tc.opts
			if tc.now != nil {
				opts.Now = tc.now(t, ev)
			}
			d := Diagnose(obj, Compute(obj), ev, opts)
			if d.Cause != tc.cause || d.Certain != tc.certain {
				t.Errorf("cause %q certain %v, want %q certain %v (message %q)", d.Cause, d.Certain, tc.cause, tc.certain, d.Message)
			}
			if !regexp.MustCompile(tc.message).MatchString(d.Message) {
				t.Errorf("message = %q\nwant match for %s", d.Message, tc.message)
			}
		})
	}
}

// TestDiagnoseWithoutEvidence: with no pods or events (a reader that failed,
// a rollout not started) the diagnosis still names the object and its
// status, and a failed Deployment still gets the deadline cause.
func TestDiagnoseWithoutEvidence(t *testing.T) {
	obj := loadObject(t, "status/deployment-deadline")
	d := Diagnose(obj, Compute(obj), Evidence{}, DiagnoseOptions{})
	if d.Cause != DeadlineExceeded || !d.Certain {
		t.Errorf("cause %q certain %v, want deadline and certain", d.Cause, d.Certain)
	}
	want := `^Deployment ` + nsRE + `/late: progress deadline exceeded: ReplicaSet "late-` + hashRE + `" has timed out progressing\.$`
	if !regexp.MustCompile(want).MatchString(d.Message) {
		t.Errorf("message = %q, want match for %s", d.Message, want)
	}
}

// TestCausesAreLabels: every cause is a valid, distinct metric label value.
func TestCausesAreLabels(t *testing.T) {
	seen := map[Cause]bool{}
	label := regexp.MustCompile(`^[a-z]+$`)
	for _, c := range Causes() {
		if !label.MatchString(string(c)) || seen[c] {
			t.Errorf("cause %q is not a distinct lowercase label", c)
		}
		seen[c] = true
	}
}
