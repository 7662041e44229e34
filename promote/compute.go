package promote

import (
	"fmt"
	"sync"

	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

// computed is a promotion worked out from the trees, before any write.
type computed struct {
	plan plan
	// key is the content key of what the source commit promotes.
	key string
	src *source.Revision
}

// compute reads the source commit's and the target head's trees and plans
// the promotion commit.
func (p *Promoter) compute(edge Edge, from, to Environment, src, target *source.Revision) (computed, error) {
	srcTree, tgtTree := Tree(src.Snapshot), Tree(target.Snapshot)
	where := fmt.Sprintf("%s@%s", from.Name, githash.Short(src.Commit))
	diffs, err := diffTrees(srcTree, tgtTree)
	if err != nil {
		return computed{}, fmt.Errorf("compare %s with %s@%s: %w", where, to.Branch, githash.Short(target.Commit), err)
	}
	srcImages, err := overlayImages(srcTree, from.Overlay)
	if err != nil {
		return computed{}, fmt.Errorf("source %s: %w", where, err)
	}
	kustPath, kust, err := readKustomization(tgtTree, to.Overlay)
	if err != nil {
		return computed{}, fmt.Errorf("target %s@%s: %w", to.Branch, githash.Short(target.Commit), err)
	}
	pl, err := planPromotion(planInput{
		diffs: diffs, promotable: p.matcher.promotable,
		sourceImages: srcImages, targetKustPath: kustPath, targetKust: kust,
	})
	if err != nil {
		return computed{}, fmt.Errorf("promote %s onto %s@%s: %w", where, to.Branch, githash.Short(target.Commit), err)
	}
	files, err := p.keyCache.files(src, p.matcher.promotable)
	if err != nil {
		return computed{}, fmt.Errorf("source %s: %w", where, err)
	}
	var targetImages []render.Image
	if kustPath != "" {
		if targetImages, err = render.Images(kust); err != nil {
			return computed{}, fmt.Errorf("target %s@%s: %s: %w", to.Branch, githash.Short(target.Commit), kustPath, err)
		}
	}
	return computed{plan: pl, key: contentKey(files, carried(srcImages, targetImages)), src: src}, nil
}

// keyCache keeps the promotable file list of the last few source commits:
// computing it walks the whole tree, and the same commit is evaluated
// again at every loop until it is promoted.
type keyCache struct {
	mu      sync.Mutex // guards entries and order
	entries map[string]map[string]string
	order   []string
}

const keyCacheSize = 8

func (k *keyCache) files(src *source.Revision, keep func(string) bool) (map[string]string, error) {
	k.mu.Lock()
	f, ok := k.entries[src.Commit]
	k.mu.Unlock()
	if ok {
		return f, nil
	}
	f, err := listFiles(src.Snapshot, keep)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.entries == nil {
		k.entries = map[string]map[string]string{}
	}
	if _, ok := k.entries[src.Commit]; !ok {
		k.entries[src.Commit] = f
		k.order = append(k.order, src.Commit)
		if len(k.order) > keyCacheSize {
			delete(k.entries, k.order[0])
			k.order = k.order[1:]
		}
	}
	return f, nil
}
