// Package preview says what merging a pull request would change in a live
// environment, where the pull request is reviewed: it turns a dry-run
// sync of the pull request's head (a reconciler.Result) into a Report,
// writes the Report as a forge comment (Markdown) or as text (`baton
// diff`), and runs previews for every open pull request into the branches
// an agent syncs (Previewer), with a commit status on each pull request's
// head.
package preview

import (
	"errors"
	"fmt"
	"strings"

	"github.com/baton-gitops/baton/reconciler"
)

// Report is what a sync of one revision would do to one environment, as
// plain data for both renderings.
type Report struct {
	// Environment is the environment's name.
	Environment string
	// Revision is the commit rendered; Ref names it for people (a pull
	// request's branch); Path is the overlay folder.
	Revision, Ref, Path string
	// Failure says why there is no complete answer: the render or the dry
	// run failed as a whole. Empty when the pass ran.
	Failure string
	// Objects are the objects the pass would change, refuse or leave
	// alone on purpose, in the pass's order (staged, then pruned ones).
	Objects []Object
	// Counts counts every object by Action, unchanged ones included.
	Counts map[Action]int
}

// Action is what a sync would do to an object, in the words of a review.
type Action string

// The actions of a Report; they are the reconciler's, with deleted said
// as pruned.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Pruned     Action = "pruned"
	Recreated  Action = "recreated"
	Drifted    Action = "drifted"
	Skipped    Action = "skipped"
	Failed     Action = "failed"
	Unchanged  Action = "unchanged"
)

// Object is one object a sync would change or refuses.
type Object struct {
	// Ref is Kind/namespace/name.
	Ref    string
	Action Action
	// Diff is the unified YAML diff from live to git, Secret values
	// masked (by the reconciler).
	Diff string
	// Message is why it was skipped or refused.
	Message string
	// Highlights are the changes reviewers look for first: images,
	// replicas and resources, "replicas 2 → 3".
	Highlights []string
}

// NewReport builds the Report of a dry run: res and err as
// reconciler.Diff (or the render before it) returned them. Objects the
// pass refused are in res, and err repeats them; an err with no refused
// object in res (a render failure, a refused request) is the Failure.
func NewReport(env, revision, ref, path string, res reconciler.Result, err error) Report {
	r := Report{Environment: env, Revision: revision, Ref: ref, Path: path, Counts: map[Action]int{}}
	for _, ch := range res.Changes {
		a := action(ch.Action)
		r.Counts[a]++
		if a == Unchanged {
			continue
		}
		o := Object{Ref: ch.Ref.String(), Action: a, Diff: ch.Diff, Message: oneLine(ch.Message), Highlights: highlights(ch.Diff)}
		if ch.Err != nil {
			o.Message = oneLine(ch.Err.Error())
		}
		r.Objects = append(r.Objects, o)
	}
	// A revision refused for its scope, Baton's own objects or ownership
	// applied nothing and compared nothing: each refused object is a failed
	// row naming the rule and its file, so that the status (a forge keeps
	// ~140 characters of it) starts with the object and the rule.
	var refused *reconciler.RefusedError
	if errors.As(err, &refused) {
		for _, v := range refused.Violations {
			msg := "refused (" + v.Rule + ")"
			if v.Source != "" {
				msg += " from " + v.Source
			}
			r.Objects = append(r.Objects, Object{Ref: v.Ref.String(), Action: Failed, Message: oneLine(msg + ": " + v.Reason)})
			r.Counts[Failed]++
		}
	}
	if err != nil && r.Counts[Failed] == 0 {
		r.Failure = oneLine(err.Error())
	}
	return r
}

func action(a reconciler.Action) Action {
	if a == reconciler.ActionDeleted {
		return Pruned
	}
	return Action(a)
}

// changing are the actions that change the cluster, in summary order.
var changing = []Action{Created, Configured, Recreated, Drifted, Pruned}

// Changes is the number of objects a sync would change.
func (r Report) Changes() int {
	n := 0
	for _, a := range changing {
		n += r.Counts[a]
	}
	return n
}

// Passed reports whether a sync would succeed: the pass ran and refused no
// object.
func (r Report) Passed() bool { return r.Failure == "" && r.Counts[Failed] == 0 }

// Reason says why a sync would fail, in one line (for a commit status);
// empty when it would pass.
func (r Report) Reason() string {
	if r.Failure != "" {
		return r.Failure
	}
	for _, o := range r.Objects {
		if o.Action == Failed {
			reason := o.Message
			if !strings.Contains(reason, o.Ref) {
				reason = o.Ref + ": " + reason
			}
			if n := r.Counts[Failed]; n > 1 {
				reason = fmt.Sprintf("%s (and %d more refused)", reason, n-1)
			}
			return reason
		}
	}
	return ""
}

// Summary is one line: "2 objects would change: 1 created, 1 configured
// (3 unchanged)" or "no differences (3 unchanged)". Skipped and refused
// objects are named but are no change.
func (r Report) Summary() string {
	if r.Failure != "" {
		return "no preview: " + r.Failure
	}
	var parts []string
	for _, a := range append(append([]Action{}, changing...), Skipped, Failed) {
		if n := r.Counts[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	unchanged := fmt.Sprintf("(%d unchanged)", r.Counts[Unchanged])
	changed := r.Changes()
	if changed == 0 {
		if len(parts) > 0 {
			return "no differences: " + strings.Join(parts, ", ") + " " + unchanged
		}
		return "no differences " + unchanged
	}
	noun := "objects"
	if changed == 1 {
		noun = "object"
	}
	return fmt.Sprintf("%d %s would change: %s %s", changed, noun, strings.Join(parts, ", "), unchanged)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
