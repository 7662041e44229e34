package health

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly ten", 11, "exactly ten"},
		{"cut at a word boundary please", 20, "cut at a word…"},
		{"ünïcödé ünïcödé ünïcödé", 12, "ünïcödé…"},
		{"日本語のメッセージがとても長い", 6, "日本語のメ…"},
		{"trailing, punctuation: dropped here", 24, "trailing, punctuation…"},
	}
	for _, c := range cases {
		got := clip(c.in, c.n)
		if got != c.want {
			t.Errorf("clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > c.n {
			t.Errorf("clip(%q, %d) = %q: invalid or too long", c.in, c.n, got)
		}
	}
	// A long message from a termination log: one line, bounded, valid.
	long := strings.Repeat("panic: ☠ goroutine 1 [running]:\n\tmain.main()\n", 200) + "\xff"
	got := evidence(long)
	if strings.ContainsAny(got, "\n\t") || utf8.RuneCountInString(got) > maxEvidence || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("evidence of a long log = %q", got)
	}
}

func TestUnwrap(t *testing.T) {
	cases := map[string]string{
		`rpc error: code = Unknown desc = Error response from daemon: pull access denied for nginx211, repository does not exist or may require 'docker login'`:                                                    `pull access denied for nginx211, repository does not exist or may require 'docker login'`,
		`failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "wge": executable file not found in $PATH: unknown`: `exec: "wge": executable file not found in $PATH`,
		`failed to pull and unpack image "docker.io/a/b:1": failed to resolve reference "docker.io/a/b:1": docker.io/a/b:1: not found`:                                                                             `docker.io/a/b:1: not found`,
		`unable to pull image or OCI artifact: pull image err: initializing source docker://r.io/a@sha256:1: reading manifest sha256:1 in r.io/a: manifest unknown; artifact err: get manifest: x`:                 `reading manifest sha256:1 in r.io/a: manifest unknown`,
		`Error: secrets "my-password" not found`: `secrets "my-password" not found`,
		// A wrapper with nothing after it stays: better than nothing.
		`Error: `: `Error: `,
	}
	for in, want := range cases {
		if got := unwrap(in); got != want {
			t.Errorf("unwrap(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

func TestSchedulerSummary(t *testing.T) {
	cases := map[string]string{
		"0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
		"0/3 nodes are available: 3 Insufficient cpu.. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod..":                                                         "0/3 nodes are available: 3 Insufficient cpu.",
		"0/10 nodes are available: 10 node(s) didn't match node selector, 4 Insufficient cpu.":                                                                                                        "0/10 nodes are available: 10 node(s) didn't match node selector, 4 Insufficient cpu.",
	}
	for in, want := range cases {
		if got := schedulerSummary(in); got != want {
			t.Errorf("schedulerSummary(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

// TestRefusal: refusals by each kind of policy, in the controllers' and
// the apiserver's words (as TestRefusedPodsNamePolicy sees them on the
// test control plane; a webhook's refusal has the apiserver's wording for
// webhooks, `admission webhook "name" denied the request: reason`).
func TestRefusal(t *testing.T) {
	cases := []struct {
		msg    string
		cause  Cause
		detail string
	}{
		{`Error creating: pods "web-7d9f8-x2k4p" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2`,
			QuotaExceeded, `cannot create pods, refused by ResourceQuota "compute": exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2`},
		{`Create Pod web-0 in StatefulSet web failed error: pods "web-0" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true)`,
			Forbidden, `cannot create pods, refused by PodSecurity "restricted:latest": runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true)`},
		{`Create Claim data-db-0 for Pod db-0 in StatefulSet db failed error: persistentvolumeclaims "data-db-0" is forbidden: exceeded quota: storage, requested: requests.storage=1Gi, used: requests.storage=0, limited: requests.storage=0`,
			QuotaExceeded, `cannot create volume claims, refused by ResourceQuota "storage": exceeded quota: storage, requested: requests.storage=1Gi, used: requests.storage=0, limited: requests.storage=0`},
		{`Error creating: admission webhook "validate.kyverno.svc-fail" denied the request: policy Pod/shop/web for resource violation: require-labels`,
			Forbidden, `cannot create pods, refused by admission webhook "validate.kyverno.svc-fail": policy Pod/shop/web for resource violation: require-labels`},
		{`Error creating: pods "job-abcde" is forbidden: error looking up service account shop/runner: serviceaccount "runner" not found`,
			ConfigError, `cannot create pods, refused by missing ServiceAccount shop/runner: error looking up service account shop/runner: serviceaccount "runner" not found`},
		{`Error creating: Timeout: request did not complete within requested timeout`,
			NoCause, `cannot create pods: Timeout: request did not complete within requested timeout`},
	}
	for _, c := range cases {
		p := refusal("replicaset web-7d9f8", c.msg)
		if p.cause != c.cause || p.detail != c.detail {
			t.Errorf("refusal(%q)\n = %q %q\nwant %q %q", c.msg, p.cause, p.detail, c.cause, c.detail)
		}
	}
}
