package health

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// Bounds on message length. A diagnosis goes into Events (the apiserver
// takes 1 kB), log lines and the status API; a kubelet message it quotes
// can be kilobytes (a termination log) or many lines.
const (
	// maxEvidence bounds one quoted message: a kubelet's, a scheduler's,
	// an event's.
	maxEvidence = 300
	// maxMessage bounds a whole diagnosis message.
	maxMessage = 900
)

// oneLine folds every run of whitespace (newlines of a termination log,
// tabs, the trailing space of eviction messages) into one space, and
// replaces invalid UTF-8.
func oneLine(s string) string {
	if isOneLine(s) {
		return s // the usual case: no copy
	}
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
}

// isOneLine reports whether s is valid UTF-8 with single spaces only and
// none at either end.
func isOneLine(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' || !utf8.ValidString(s) {
		return false
	}
	for i, r := range s {
		switch {
		case r == ' ':
			if s[i+1] == ' ' {
				return false
			}
		case unicode.IsSpace(r):
			return false
		}
	}
	return true
}

// clip shortens s to at most n runes. It cuts at a space when one is near
// the end, never inside a rune, and marks the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	// Keep n-1 runes to leave room for the ellipsis.
	cut := 0
	for i := range s {
		if n--; n == 0 {
			cut = i
			break
		}
	}
	kept := s[:cut]
	if i := strings.LastIndexByte(kept, ' '); i > 0 && len(kept)-i < 40 {
		kept = kept[:i]
	}
	return strings.TrimRight(kept, " ,;:") + "…"
}

// evidence prepares a quoted message: one line, wrappers dropped, clipped.
func evidence(s string) string {
	return clip(unwrap(oneLine(s)), maxEvidence)
}

// wrappers are prefixes that container runtimes and the kubelet put around
// the error that matters, e.g. `rpc error: code = Unknown desc = Error
// response from daemon: pull access denied for x` or `failed to create
// containerd task: failed to create shim task: OCI runtime create failed:
// runc create failed: unable to start container process: exec: "wge":
// executable file not found in $PATH: unknown`.
var wrappers = []*regexp.Regexp{
	regexp.MustCompile(`^Error: `),
	regexp.MustCompile(`^rpc error: code = \w+ desc = `),
	regexp.MustCompile(`^Error response from daemon: `),
	regexp.MustCompile(`^failed to pull and unpack image "[^"]*": `),
	regexp.MustCompile(`^failed to resolve reference "[^"]*": `),
	regexp.MustCompile(`^failed to do request: `),
	regexp.MustCompile(`^unable to pull image or OCI artifact: pull image err: `),
	regexp.MustCompile(`^initializing source docker://\S+: `),
	regexp.MustCompile(`^failed to create containerd task: `),
	regexp.MustCompile(`^failed to create shim task: `),
	regexp.MustCompile(`^OCI runtime (create|start|exec) failed: `),
	regexp.MustCompile(`^runc (create|start|exec) failed: `),
	regexp.MustCompile(`^container_linux\.go:\d+: starting container process caused: `),
	regexp.MustCompile(`^unable to start container process: `),
}

// unwrap drops the wrappers, and the tails that repeat them: CRI-O's
// "; artifact err: ..." second attempt and runc's ": unknown".
func unwrap(s string) string {
	for changed := true; changed; {
		changed = false
		for _, re := range wrappers {
			if loc := re.FindStringIndex(s); loc != nil && loc[1] < len(s) {
				s, changed = s[loc[1]:], true
			}
		}
	}
	if i := strings.Index(s, "; artifact err: "); i > 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ": unknown")
}

// schedulerSummary keeps what a scheduler message says about the nodes:
// the "preemption: ..." tail repeats the node count and rarely helps, and
// newer schedulers put "no new claims to deallocate" before it.
func schedulerSummary(msg string) string {
	msg = oneLine(msg)
	if i := strings.Index(msg, "preemption:"); i > 0 {
		msg = msg[:i]
	}
	msg = strings.TrimRight(msg, " ,")
	msg = strings.TrimRight(strings.TrimSuffix(msg, "no new claims to deallocate"), " ,")
	for strings.HasSuffix(msg, "..") { // a doubled full stop in 1.28
		msg = msg[:len(msg)-1]
	}
	return clip(msg, maxEvidence)
}

// claimNames lists the PersistentVolumeClaims a pod mounts, for a
// scheduler message that says claims are unbound without naming them.
func claimNames(pod *corev1.Pod) string {
	var names []string
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return strings.Join(names, ", ")
}

// describeProbe renders a probe from the pod spec, e.g. "readiness probe
// tcpSocket :8080", for a container that is not ready with no event saying
// why (the events expired, or the kubelet's were not kept).
func describeProbe(kind string, p *corev1.Probe) string {
	s := kind + " probe"
	switch h := p.ProbeHandler; {
	case h.HTTPGet != nil:
		s += fmt.Sprintf(" httpGet %s :%s", h.HTTPGet.Path, h.HTTPGet.Port.String())
	case h.TCPSocket != nil:
		s += " tcpSocket :" + h.TCPSocket.Port.String()
	case h.GRPC != nil:
		s += fmt.Sprintf(" grpc :%d", h.GRPC.Port)
	case h.Exec != nil:
		s += fmt.Sprintf(" exec %q", strings.Join(h.Exec.Command, " "))
	}
	return clip(s, 120)
}

// probeOutput renders an Unhealthy event's message: "Readiness probe
// failed: HTTP probe failed with statuscode: 503". A probe that failed
// without output leaves "Readiness probe failed:" with nothing after it.
func probeOutput(msg string) string {
	msg = oneLine(msg)
	if strings.HasSuffix(msg, ":") {
		return strings.TrimSuffix(msg, ":") + " without output"
	}
	return clip(msg, maxEvidence)
}

// forbiddenPrefix is the apiserver's `pods "api-7d9f8-x2k4p" is forbidden: `
// in a refusal. The name is random for ReplicaSets and Jobs: kept, it would
// change the message at every retry.
var forbiddenPrefix = regexp.MustCompile(`^[a-z]+ "[^"]*" is forbidden: `)

// policies find the policy that refused a pod in an admission error. The
// sentence naming it is dropped from the message (a detail names the
// policy already), unless keep is set.
var policies = []struct {
	re    *regexp.Regexp // the first submatch is the policy's name
	name  string         // fmt verb for the name, if any
	keep  bool
	cause Cause
}{
	{re: regexp.MustCompile(`exceeded quota: ([^,\s]+)`), name: `ResourceQuota %q`, keep: true, cause: QuotaExceeded},
	{re: regexp.MustCompile(`violates PodSecurity "([^"]+)": `), name: `PodSecurity %q`, cause: Forbidden},
	{re: regexp.MustCompile(`admission webhook "([^"]+)" denied the request: `), name: `admission webhook %q`, cause: Forbidden},
	{re: regexp.MustCompile(`ValidatingAdmissionPolicy '([^']+)' with binding '[^']*' denied request: `), name: `ValidatingAdmissionPolicy %q`, cause: Forbidden},
	{re: regexp.MustCompile(`error looking up service account ([^:\s]+)`), name: `missing ServiceAccount %s`, keep: true, cause: ConfigError},
	{re: regexp.MustCompile(`unable to validate against any security context constraint`), name: `SecurityContextConstraints`, keep: true, cause: Forbidden},
	{re: regexp.MustCompile(`(usage|limit to request ratio) per (Container|Pod) is`), name: `LimitRange`, keep: true, cause: Forbidden},
}

// refusingPolicy names the policy that refused a pod and the cause it
// stands for, and returns the message without the sentence naming it; a
// refusal it cannot place is Forbidden if it says so.
func refusingPolicy(msg string) (string, Cause, string) {
	for _, p := range policies {
		loc := p.re.FindStringSubmatchIndex(msg)
		if loc == nil {
			continue
		}
		name := p.name
		if strings.Contains(name, "%") {
			name = fmt.Sprintf(name, msg[loc[2]:loc[3]])
		}
		if !p.keep && loc[1] < len(msg) {
			msg = msg[loc[1]:]
		}
		return name, p.cause, msg
	}
	if strings.Contains(msg, "forbidden") || strings.Contains(msg, "denied") {
		return "", Forbidden, msg
	}
	return "", NoCause, msg
}
