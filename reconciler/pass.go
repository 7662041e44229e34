package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/baton-gitops/baton/reconciler/inventory"
)

// pass is one Sync or Diff of one environment.
type pass struct {
	r      *Reconciler
	req    Request
	dryRun bool
	log    *slog.Logger
	// ids are the client and watch cache of the request's identity.
	ids *clients

	mu sync.Mutex // guards newNamespaces
	// newNamespaces are Namespaces a dry run would create: objects in them
	// cannot be dry-run on the server and are shown as created.
	newNamespaces map[string]bool
}

// outcome is a Change plus whether the object had drifted.
type outcome struct {
	Change
	drifted bool
	// offline marks a dry-run object that could not be sent to the server
	// (its Namespace or CRD does not exist yet).
	offline bool
}

func (p *pass) run(ctx context.Context, res *Result) error {
	items, err := plan(ctx, p.r.mapper, p.req)
	if err != nil {
		return err
	}
	prev, found, err := p.r.store.Load(ctx, p.req.Environment)
	if err != nil {
		// Without the previous inventory nothing can be pruned safely, and
		// drift cannot be told from news: refuse the pass.
		return err
	}
	res.PreviousRevision = prev.Revision
	// Only what a completed pass applied tells drift (a deleted object)
	// from news: a pending entry may never have been created.
	inPrev := make(map[objectKey]bool, len(prev.Entries))
	for _, e := range prev.Entries {
		inPrev[objectKey{e.Group, e.Kind, e.Namespace, e.Name}] = true
	}
	for _, it := range items {
		it.inInventory = inPrev[keyOf(it.ref)]
	}
	// Admission first: a refused revision writes nothing, not even the
	// inventory's pending entries.
	if err := p.admit(ctx, items); err != nil {
		return err
	}
	known := prev.All()
	if len(items) == 0 && len(known) > 0 && !p.req.AllowEmpty {
		return fmt.Errorf("refusing to prune all %d objects: the desired set is empty (a broken render?); allow empty sets for this environment to permit it", len(known))
	}
	if !p.dryRun {
		if err := p.writeAhead(ctx, prev, items); err != nil {
			return err
		}
	}

	outs := p.applyStages(ctx, items)
	var errs []error
	for _, o := range outs {
		res.Changes = append(res.Changes, o.Change)
		if o.drifted {
			res.Drifted = append(res.Drifted, o.Ref)
		}
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	if len(errs) > 0 {
		// Nothing is pruned after a failed apply, and the inventory keeps
		// what the write-ahead recorded: the objects this pass may have
		// created stay known, to be pruned once they leave git.
		return joinErrors(errs)
	}

	pruned, keep := p.prune(ctx, items, known)
	for _, o := range pruned {
		res.Changes = append(res.Changes, o.Change)
		if o.Action == ActionDeleted {
			res.Pruned = append(res.Pruned, o.Ref)
		}
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	if !p.dryRun {
		next := inventory.Inventory{Environment: p.req.Environment, Revision: p.req.Revision, Entries: desiredEntries(items)}
		// Objects that left git but are not confirmed gone stay in the
		// inventory, so that a later pass deletes them (or sees them gone).
		next.Entries = append(next.Entries, keep...)
		next.Normalize()
		if !found || prev.Revision != next.Revision || !inventory.SameEntries(prev, next) {
			if err := p.r.store.Save(ctx, next); err != nil {
				errs = append(errs, err)
			}
		}
		if c := p.cache(); c != nil {
			// Watches on what the environment no longer uses stop.
			c.retain(p.req.Environment, cacheKeys(p.req.Environment, items))
		}
	}
	return joinErrors(errs)
}

// cacheKeys are the watch cache entries the desired objects use.
func cacheKeys(env string, items []*item) map[cacheKey]bool {
	used := make(map[cacheKey]bool)
	for _, it := range items {
		if it.mapped {
			ns := ""
			if it.namespaced {
				ns = it.ref.Namespace
			}
			used[cacheKey{env, it.gvr, ns}] = true
		}
	}
	return used
}

// writeAhead records the objects this pass may create before it applies
// anything: the previous inventory plus, as pending, every desired object it
// does not hold yet. Whatever happens next (a failed stage, a lost API
// server, SIGKILL), every object the pass creates is known to a later pass.
// It writes nothing when the inventory already holds them all, the common
// case of a pass that changes no set of objects.
func (p *pass) writeAhead(ctx context.Context, prev inventory.Inventory, items []*item) error {
	known := make(map[objectKey]bool, len(prev.Entries)+len(prev.Pending))
	for _, e := range prev.All() {
		known[objectKey{e.Group, e.Kind, e.Namespace, e.Name}] = true
	}
	ahead := prev
	ahead.Environment = p.req.Environment
	ahead.Pending = slices.Clone(prev.Pending)
	for _, e := range desiredEntries(items) {
		if !known[objectKey{e.Group, e.Kind, e.Namespace, e.Name}] {
			ahead.Pending = append(ahead.Pending, e)
		}
	}
	if len(ahead.Pending) == len(prev.Pending) {
		return nil
	}
	ahead.PendingRevision = p.req.Revision
	ahead.Normalize()
	if err := p.r.store.Save(ctx, ahead); err != nil {
		return fmt.Errorf("record the objects about to be applied: %w", err)
	}
	return nil
}

// desiredEntries are the inventory entries of the desired objects.
func desiredEntries(items []*item) []inventory.Entry {
	out := make([]inventory.Entry, 0, len(items))
	for _, it := range items {
		out = append(out, inventory.Entry{Group: it.ref.Group, Version: it.gvk.Version, Kind: it.ref.Kind, Namespace: it.ref.Namespace, Name: it.ref.Name})
	}
	return out
}

// applyStages applies the stages in order, each with a bounded worker pool.
// Workers write results by index, so the outcome order is the staged order
// whatever the timing. After a stage with a failure the later stages are
// skipped: they may depend on it (a Namespace, a CRD), and admission
// webhooks must not go live over a broken revision.
func (p *pass) applyStages(ctx context.Context, items []*item) []outcome {
	outs := make([]outcome, len(items))
	failed := false
	for s, stageItems := range byStage(items) {
		if failed {
			for _, it := range stageItems {
				outs[it.index] = outcome{Change: Change{Ref: it.ref, Action: ActionSkipped, Message: "not applied: an earlier stage failed"}}
			}
			continue
		}
		p.mapDeferred(ctx, stageItems, outs)
		g := new(errgroup.Group)
		g.SetLimit(p.r.opts.Concurrency)
		for _, it := range stageItems {
			if outs[it.index].Action != "" {
				continue // mapping failed
			}
			g.Go(func() error {
				outs[it.index] = p.processItem(ctx, it)
				return nil
			})
		}
		_ = g.Wait()
		for _, it := range stageItems {
			if outs[it.index].Err != nil {
				failed = true
			}
		}
		p.log.Debug("stage done", "stage", stage(s).String(), "objects", len(stageItems), "failed", failed)
	}
	return outs
}

// mapDeferred maps the custom resources whose CRD came with this revision,
// now that the CRD stage has run. Discovery is refreshed first; it can lag
// the Established condition by a moment, so mapping is retried until the
// wait timeout. A dry run does not wait: a CRD it would create does not
// exist, and its custom resources are shown as created.
func (p *pass) mapDeferred(ctx context.Context, items []*item, outs []outcome) {
	var pending []*item
	for _, it := range items {
		if !it.mapped {
			pending = append(pending, it)
		}
	}
	if len(pending) == 0 {
		return
	}
	p.r.mapper.ResetWithContext(ctx)
	for _, it := range pending {
		try := func(ctx context.Context) (bool, error) {
			m, err := p.r.mapper.RESTMappingWithContext(ctx, it.gvk.GroupKind(), it.gvk.Version)
			if err != nil {
				return false, nil
			}
			it.gvr, it.mapped = m.Resource, true
			return true, nil
		}
		if ok, _ := try(ctx); ok {
			continue
		}
		if p.dryRun {
			continue // processItem shows it as created
		}
		err := waitFor(ctx, p.r.opts.WaitTimeout, "its kind to be served", func(ctx context.Context) (bool, error) {
			p.r.mapper.ResetWithContext(ctx)
			return try(ctx)
		})
		if err != nil {
			outs[it.index] = outcome{Change: Change{Ref: it.ref, Action: ActionFailed, Err: objectError("map", it.ref, err)}}
		}
	}
}

// noteNewNamespace records a Namespace that a dry run would create.
func (p *pass) noteNewNamespace(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.newNamespaces == nil {
		p.newNamespaces = make(map[string]bool)
	}
	p.newNamespaces[name] = true
}

func (p *pass) isNewNamespace(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.newNamespaces[name]
}

// passError joins the errors of a pass, showing the first few: an outage can
// fail a thousand objects with the same cause.
type passError struct{ errs []error }

const shownErrors = 5

func (e *passError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d object(s) failed: ", len(e.errs))
	writeFirst(&sb, e.errs, error.Error)
	return sb.String()
}

// writeFirst writes the first shownErrors items, "; "-separated, then how
// many more there are.
func writeFirst[T any](sb *strings.Builder, items []T, text func(T) string) {
	for i, item := range items {
		if i == shownErrors {
			fmt.Fprintf(sb, "; and %d more", len(items)-shownErrors)
			return
		}
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(text(item))
	}
}

func (e *passError) Unwrap() []error { return e.errs }

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return &passError{errs: errs}
}
