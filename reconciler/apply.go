package reconciler

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/internal/statuscond"
)

// processItem brings one object to its desired state (or, in a dry run,
// says what that would take). The steps, each skipped when not needed:
//
//  1. read the live object, unless the watch cache knows it unchanged since
//     baton last knew it right (then stop: unchanged), or knows it absent;
//  2. adopt fields that kubectl's client-side apply owns;
//  3. stop if the live object is provably up to date (no round trip);
//  4. server-side apply (a dry run for Diff and for drift in detect-only
//     mode), recreating the object if an immutable field changed and the
//     object allows it;
//  5. classify the outcome and diff live against the answer;
//  6. wait for CRDs to be Established and Namespaces to be Active.
func (p *pass) processItem(ctx context.Context, it *item) (out outcome) {
	start := time.Now()
	out.Ref = it.ref
	defer func() { out.Duration = time.Since(start) }()
	fail := func(op string, err error) outcome {
		out.Action, out.Err = ActionFailed, objectError(op, it.ref, err)
		return out
	}

	if (p.dryRun && !it.mapped) || (it.namespaced && p.isNewNamespace(it.ref.Namespace)) {
		return p.offline(it, out)
	}

	live, unchanged, err := p.live(ctx, it)
	if err != nil {
		return fail("read", err)
	}
	if unchanged {
		out.Action = ActionUnchanged
		return out
	}
	if owner := ownerOf(live); owner != "" && owner != p.req.Environment {
		// Relabelled since the last pass (admit checks new objects as a
		// set): it belongs to another environment now, and stays so.
		return fail("apply", &RefusedError{Violations: []Violation{ownershipViolation(it.ref, owner, p.req.Environment)}})
	}
	if live != nil && needsAdoption(live) {
		if p.dryRun {
			out.Message = adoptMessage(true)
		} else {
			if live, err = p.adopt(ctx, it, live, false); err != nil {
				return fail("adopt", err)
			}
			out.Message = adoptMessage(false)
		}
	}

	// Drift: the object is gone although the last pass applied it, or it
	// carries the hash of exactly this desired content and still differs.
	drift := (live == nil && it.inInventory) || (live != nil && live.GetAnnotations()[AnnotationDesiredHash] == it.hash)
	if upToDate(live, it.payload.Object, it.hash) {
		out.Action = ActionUnchanged
		if c := p.cache(); c != nil && !p.dryRun {
			c.verify(it.gvr, live) // the next pass may skip it
		}
		return p.settle(ctx, it, live, out, fail)
	}
	detectOnly := drift && p.req.Drift == DriftDetectOnly
	dryRun := p.dryRun || detectOnly

	after, created, err := p.client().apply(ctx, it.gvr, it.payload, dryRun)
	recreated := false
	if imm := asImmutable(err); imm != nil {
		if !it.recreate {
			return fail("apply", imm)
		}
		if dryRun {
			// The server cannot dry-run a delete-and-create: show the
			// desired object against the live one.
			out.Action = ActionRecreated
			if detectOnly {
				out.Action = ActionDrifted
			}
			out.drifted = drift
			out.Diff, _ = objectDiff(it.ref, live, it.payload)
			return out
		}
		after, err = p.recreate(ctx, it, live)
		recreated, created = err == nil, false
	}
	if err != nil {
		return fail("apply", err)
	}

	if live == nil && !created && !recreated && !dryRun {
		// The object existed without baton's label, so the cache could not
		// see it: it was just taken over. If kubectl made it, adopt its
		// fields and apply again so that fields git no longer has go away.
		out.Message = "took over an existing object"
		if needsAdoption(after) {
			if after, err = p.adopt(ctx, it, after, false); err != nil {
				return fail("adopt", err)
			}
			if after, _, err = p.client().apply(ctx, it.gvr, it.payload, false); err != nil {
				return fail("apply", err)
			}
			out.Message = adoptMessage(false)
		}
	}

	switch {
	case recreated:
		out.Action = ActionRecreated
	case created:
		out.Action = ActionCreated
	case live != nil && sameObject(live, after):
		out.Action = ActionUnchanged
	default:
		out.Action = ActionConfigured
	}
	if out.Action != ActionUnchanged {
		out.drifted = drift
		if live != nil || created || recreated {
			if out.Diff, err = objectDiff(it.ref, live, after); err != nil {
				return fail("diff", err)
			}
		}
	}
	if detectOnly && out.Action != ActionUnchanged {
		out.Action = ActionDrifted
	}
	if dryRun {
		if it.stage == stageNamespaces && created {
			p.noteNewNamespace(it.ref.Name)
		}
		return out
	}
	if c := p.cache(); c != nil {
		c.remember(p.req.Environment, it.gvr, after)
	}
	return p.settle(ctx, it, after, out, fail)
}

// offline reports an object that a dry run cannot send to the server
// because its CRD or Namespace does not exist yet: Diff would create that
// first, and detect-only mode found it deleted by hand and left it so.
func (p *pass) offline(it *item, out outcome) outcome {
	out.offline = true
	switch {
	case p.dryRun:
		out.Action = ActionCreated
		out.drifted = it.inInventory
	case it.inInventory:
		out.Action, out.drifted = ActionDrifted, true
	default:
		// A new object cannot be applied: fail the pass, so that nothing is
		// pruned and the inventory does not claim it.
		out.Action = ActionFailed
		out.Err = objectError("apply", it.ref, errors.New("its Namespace was deleted by hand and detect-only mode does not recreate it"))
		return out
	}
	out.Diff, _ = objectDiff(it.ref, nil, it.payload)
	return out
}

// settle waits until a CRD serves its kind and a Namespace accepts objects,
// so that the next stage can use them. Other kinds return at once.
func (p *pass) settle(ctx context.Context, it *item, obj *unstructured.Unstructured, out outcome, fail func(string, error) outcome) outcome {
	if p.dryRun || obj == nil {
		return out
	}
	switch it.stage {
	case stageCRDs:
		if !statuscond.IsTrue(obj, "Established") {
			if err := p.waitEstablished(ctx, it.ref.Name); err != nil {
				return fail("apply", err)
			}
		}
	case stageNamespaces:
		if err := p.waitActive(ctx, obj); err != nil {
			return fail("apply", err)
		}
	}
	return out
}

// live reads the live object with a GET, unless the watch cache can
// answer (only when applying: a dry run shows a true diff):
//   - unchanged: the watched version is the one baton last knew to carry
//     this desired content (its apply's answer, or a GET compared), with
//     the desired hash, not being deleted and owing nothing to kubectl's
//     client-side apply — nothing to read or do. CRDs and Namespaces are
//     read anyway: the next stage waits on their status. The watch only
//     answers for objects labelled for this environment, so such an
//     object is the environment's own;
//   - absent, for an object the last pass did not apply (a new object): a
//     miss for an inventory object may be a lagging watch.
func (p *pass) live(ctx context.Context, it *item) (obj *unstructured.Unstructured, unchanged bool, err error) {
	if c := p.cache(); c != nil && !p.dryRun {
		known, ok := c.lookup(ctx, p.req.Environment, it.gvr, it.ref.Namespace, it.ref.Name)
		switch m := known.obj; {
		case !ok:
		case m == nil && !it.inInventory:
			return nil, false, nil
		case m != nil && known.verified && m.hash == it.hash && m.DeletionTimestamp == nil && !m.adopt &&
			it.stage != stageCRDs && it.stage != stageNamespaces:
			return nil, true, nil
		}
	}
	obj, err = p.client().get(ctx, it.gvr, it.ref.Namespace, it.ref.Name)
	return obj, false, err
}

// recreate deletes the live object, waits until it is gone and applies the
// payload again: the way through an immutable field that git changed.
func (p *pass) recreate(ctx context.Context, it *item, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if live == nil {
		var err error
		if live, err = p.client().get(ctx, it.gvr, it.ref.Namespace, it.ref.Name); err != nil {
			return nil, err
		}
		if live == nil {
			return nil, errors.New("object vanished while recreating it")
		}
	}
	if err := p.client().delete(ctx, it.gvr, it.ref.Namespace, it.ref.Name, live.GetUID()); err != nil {
		return nil, err
	}
	if err := p.waitGone(ctx, it, live.GetUID()); err != nil {
		return nil, err
	}
	after, _, err := p.client().apply(ctx, it.gvr, it.payload, false)
	return after, err
}
