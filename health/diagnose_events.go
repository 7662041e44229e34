package health

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// podEvents reads the Warning events about one pod, newest first: where
// the pod's status is silent they say why (the scheduler's message, a
// probe's output, a registry's error, a mount failure). It selects and
// sorts them on first use only, and points into the evidence rather than
// copying it: most pods never need their events.
type podEvents struct {
	all    []corev1.Event
	pod    *corev1.Pod
	sorted []*corev1.Event
	done   bool
}

func eventsOf(events []corev1.Event, pod *corev1.Pod) *podEvents {
	return &podEvents{all: events, pod: pod}
}

// list selects the Warning events about the pod, newest first. An event
// about an earlier pod of the same name (a StatefulSet's pod recreated) is
// left out when both carry a UID.
func (p *podEvents) list() []*corev1.Event {
	if p.done {
		return p.sorted
	}
	p.done = true
	for i := range p.all {
		e := &p.all[i]
		o := e.InvolvedObject
		if e.Type != corev1.EventTypeWarning || o.Kind != "Pod" || o.Name != p.pod.Name {
			continue
		}
		if (o.Namespace != "" && p.pod.Namespace != "" && o.Namespace != p.pod.Namespace) ||
			(o.UID != "" && p.pod.UID != "" && o.UID != p.pod.UID) {
			continue
		}
		p.sorted = append(p.sorted, e)
	}
	// Newest first; events without times keep their order reversed, so the
	// last one listed (the latest in `kubectl describe`) comes first.
	slices.Reverse(p.sorted)
	slices.SortStableFunc(p.sorted, func(a, b *corev1.Event) int { return eventTime(b).Compare(eventTime(a)) })
	return p.sorted
}

// newest returns the newest event with one of the reasons that match
// accepts (nil accepts all).
func (p *podEvents) newest(match func(*corev1.Event) bool, reasons ...string) (*corev1.Event, bool) {
	for _, e := range p.list() {
		if slices.Contains(reasons, e.Reason) && (match == nil || match(e)) {
			return e, true
		}
	}
	return nil, false
}

// aboutContainer matches events about the container: the kubelet names it
// in the field path ("spec.containers{api}", "spec.initContainers{init}").
// An event without a field path may be about any container; one naming
// another container is not about this one.
func aboutContainer(c container, e *corev1.Event) bool {
	fp := e.InvolvedObject.FieldPath
	return fp == "" || strings.HasSuffix(fp, "{"+c.name+"}")
}

// containerEvent returns the newest event about the container with one of
// the reasons whose message passes ok.
func (p *podEvents) containerEvent(c container, ok func(string) bool, reasons ...string) (*corev1.Event, bool) {
	return p.newest(func(e *corev1.Event) bool { return aboutContainer(c, e) && ok(e.Message) }, reasons...)
}

// since reports whether e happened at or after t, or either time is
// unknown: events outlive the container run they were about, and a probe
// failure before the last restart did not cause it.
func since(e *corev1.Event, t time.Time) bool {
	at := eventTime(e)
	return at.IsZero() || t.IsZero() || !at.Before(t)
}
