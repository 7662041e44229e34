package health

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// podEvents holds the Warning events about one pod, newest first: where
// the pod's status is silent they say why (the scheduler's message, a
// probe's output, a registry's error, a mount failure).
type podEvents []corev1.Event

// eventsOf selects the Warning events about pod. An event about an
// earlier pod of the same name (a StatefulSet's pod recreated) is left out
// when both carry a UID.
func eventsOf(events []corev1.Event, pod *corev1.Pod) podEvents {
	var out podEvents
	for _, e := range events {
		o := e.InvolvedObject
		if e.Type != corev1.EventTypeWarning || o.Kind != "Pod" || o.Name != pod.Name {
			continue
		}
		if (o.Namespace != "" && pod.Namespace != "" && o.Namespace != pod.Namespace) ||
			(o.UID != "" && pod.UID != "" && o.UID != pod.UID) {
			continue
		}
		out = append(out, e)
	}
	// Newest first; events without times keep their order reversed, so the
	// last one listed (the latest in `kubectl describe`) comes first.
	slices.Reverse(out)
	slices.SortStableFunc(out, func(a, b corev1.Event) int { return eventTime(b).Compare(eventTime(a)) })
	return out
}

// newest returns the newest event with one of the reasons that match
// accepts (nil accepts all).
func (evs podEvents) newest(match func(corev1.Event) bool, reasons ...string) (corev1.Event, bool) {
	for _, e := range evs {
		if slices.Contains(reasons, e.Reason) && (match == nil || match(e)) {
			return e, true
		}
	}
	return corev1.Event{}, false
}

// aboutContainer matches events about the container: the kubelet names it
// in the field path ("spec.containers{api}", "spec.initContainers{init}").
// An event without a field path may be about any container; one naming
// another container is not about this one.
func aboutContainer(c container) func(corev1.Event) bool {
	return func(e corev1.Event) bool {
		fp := e.InvolvedObject.FieldPath
		return fp == "" || strings.HasSuffix(fp, "{"+c.name+"}")
	}
}

// containerEvent returns the newest event about the container with one of
// the reasons whose message passes ok.
func (evs podEvents) containerEvent(c container, ok func(string) bool, reasons ...string) (corev1.Event, bool) {
	about := aboutContainer(c)
	return evs.newest(func(e corev1.Event) bool { return about(e) && ok(e.Message) }, reasons...)
}

// since reports whether e happened at or after t, or either time is
// unknown: events outlive the container run they were about, and a probe
// failure before the last restart did not cause it.
func since(e corev1.Event, t time.Time) bool {
	at := eventTime(e)
	return at.IsZero() || t.IsZero() || !at.Before(t)
}
