package promote

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/render"
)

var testPipeline = Pipeline{
	Environments: []Environment{
		{Name: "dev", Branch: "env/dev", Overlay: "overlays/dev"},
		{Name: "staging", Branch: "env/staging", Overlay: "overlays/staging"},
		{Name: "prod", Branch: "env/prod", Overlay: "overlays/prod"},
	},
}

func TestPromotablePaths(t *testing.T) {
	tests := []struct {
		name  string
		paths Paths
		yes   []string
		no    []string
	}{
		{
			name: "default: everything but the overlays",
			yes:  []string{"base/deployment.yaml", "apps/web/config.yaml", "README.md", "overlays/shared/x.yaml", "overlays/devx/k.yaml"},
			no:   []string{"overlays/dev/kustomization.yaml", "overlays/staging/patch.yaml", "overlays/prod/a/b.yaml"},
		},
		{
			name:  "include folders",
			paths: Paths{Include: []string{"base", "apps/*/config.yaml"}},
			yes:   []string{"base/deployment.yaml", "base/sub/x.yaml", "apps/web/config.yaml"},
			no:    []string{"apps/web/secret.yaml", "README.md", "basement/x", "overlays/dev/kustomization.yaml"},
		},
		{
			name:  "double star and exclude",
			paths: Paths{Include: []string{"**/*.yaml"}, Exclude: []string{"**/local/**", "base/dev-only.yaml"}},
			yes:   []string{"base/deployment.yaml", "x.yaml", "a/b/c/d.yaml"},
			no:    []string{"README.md", "base/local/x.yaml", "local/y.yaml", "base/dev-only.yaml", "overlays/prod/k.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPipeline
			p.Paths = tt.paths
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			m := newMatcher(p)
			for _, y := range tt.yes {
				if !m.promotable(y) {
					t.Errorf("%s: not promotable, want promotable", y)
				}
			}
			for _, n := range tt.no {
				if m.promotable(n) {
					t.Errorf("%s: promotable, want not", n)
				}
			}
		})
	}
}

func TestPipelineValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(p *Pipeline)
		want string // substring of the error; empty means valid
	}{
		{"valid", func(p *Pipeline) {}, ""},
		{"one environment", func(p *Pipeline) { p.Environments = p.Environments[:1] }, "environments: at least two"},
		{"duplicate name", func(p *Pipeline) { p.Environments[1].Name = "dev" }, `environments[1].name: "dev" is listed twice`},
		{"bad branch", func(p *Pipeline) { p.Environments[0].Branch = "refs/heads/env/dev" }, "environments[0].branch"},
		{"shared branch", func(p *Pipeline) { p.Environments[2].Branch = "env/dev" }, `environments[2].branch: "env/dev" is used by two`},
		{"root overlay", func(p *Pipeline) { p.Environments[0].Overlay = "." }, "environments[0].overlay"},
		{"escaping overlay", func(p *Pipeline) { p.Environments[0].Overlay = "../x" }, "environments[0].overlay"},
		{"backwards edge", func(p *Pipeline) { p.Edges = []Edge{{From: "prod", To: "dev"}} }, "edges[0]: prod comes after dev"},
		{"unknown env", func(p *Pipeline) { p.Edges = []Edge{{From: "qa", To: "prod"}} }, `edges[0].from: "qa" is not an environment`},
		{"bad policy", func(p *Pipeline) { p.Edges = []Edge{{From: "dev", To: "staging", Policy: "yolo"}} }, `edges[0].policy: "yolo"`},
		{"negative soak", func(p *Pipeline) { p.Edges = []Edge{{From: "dev", To: "staging", Soak: -1}} }, "edges[0].soak"},
		{"bad query op", func(p *Pipeline) {
			p.Edges = []Edge{{From: "dev", To: "staging", Queries: []QueryGate{{Name: "err", Query: "up", Op: "<>"}}}}
		}, "edges[0].queries[0].op: must be one of"},
		{"gate name with a space", func(p *Pipeline) {
			p.Edges = []Edge{{From: "dev", To: "staging", Queries: []QueryGate{{Name: "error ratio", Query: "up", Op: "<"}}}}
		}, `edges[0].queries[0].name: "error ratio": want a short name`},
		{"infinite threshold", func(p *Pipeline) {
			p.Edges = []Edge{{From: "dev", To: "staging", Queries: []QueryGate{{Name: "err", Query: "up", Op: "<", Threshold: math.Inf(1)}}}}
		}, "edges[0].queries[0].threshold: must be a finite number"},
		{"parent overlay", func(p *Pipeline) { p.Environments[0].Overlay = ".." }, "environments[0].overlay"},
		{"unclean overlay", func(p *Pipeline) { p.Environments[0].Overlay = "overlays/dev/" }, "environments[0].overlay"},
		{"bad glob", func(p *Pipeline) { p.Paths.Include = []string{"base/[x"} }, "paths.include[0]"},
		{"partial double star", func(p *Pipeline) { p.Paths.Exclude = []string{"a**/b"} }, "paths.exclude[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Pipeline{Environments: append([]Environment(nil), testPipeline.Environments...)}
			tt.edit(&p)
			err := p.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

const stagingKust = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  - name: ghcr.io/acme/web
    newName: registry.staging/acme/web # staging mirror
    newTag: "1.0"
  - name: ghcr.io/acme/worker
    newTag: "2.0"
`

func TestPlanPromotion(t *testing.T) {
	m := newMatcher(testPipeline)
	tests := []struct {
		name         string
		diffs        []fileDiff
		sourceImages []render.Image
		noTargetKust bool
		wantCopy     []string
		wantDelete   []string
		wantChanges  []Change
		wantImages   []ImageChange
		wantKust     []string // substrings of the edited kustomization
		wantErr      string
	}{
		{
			name: "promotable files replaced, overlays untouched",
			diffs: []fileDiff{
				{path: "base/deployment.yaml", source: "b2", target: "b1"},
				{path: "apps/new.yaml", source: "n1"},
				{path: "apps/old.yaml", target: "o1"},
				{path: "overlays/dev/patch.yaml", source: "p2", target: "p1"},
				{path: "overlays/staging/patch.yaml", source: "s1", target: "s2"},
			},
			wantCopy:   []string{"apps/new.yaml", "base/deployment.yaml"},
			wantDelete: []string{"apps/old.yaml"},
			wantChanges: []Change{
				{"apps/new.yaml", Added}, {"apps/old.yaml", Deleted}, {"base/deployment.yaml", Modified},
			},
		},
		{
			name:         "image tag carried, name kept, unlisted image not added",
			sourceImages: []render.Image{{Name: "ghcr.io/acme/web", NewTag: "1.1"}, {Name: "ghcr.io/acme/dev-tool", NewTag: "9"}},
			wantChanges:  []Change{{"overlays/staging/kustomization.yaml", Modified}},
			wantImages:   []ImageChange{{Name: "ghcr.io/acme/web", From: "1.0", To: "1.1"}},
			wantKust:     []string{`newTag: "1.1"`, "newName: registry.staging/acme/web # staging mirror", `newTag: "2.0"`},
		},
		{
			name:         "digest carried",
			sourceImages: []render.Image{{Name: "ghcr.io/acme/worker", Digest: "sha256:abc123"}},
			wantChanges:  []Change{{"overlays/staging/kustomization.yaml", Modified}},
			wantImages:   []ImageChange{{Name: "ghcr.io/acme/worker", From: "2.0", To: "@sha256:abc123"}},
			wantKust:     []string{"digest: sha256:abc123"},
		},
		{
			name:         "same tags: nothing to do",
			diffs:        []fileDiff{{path: "overlays/dev/kustomization.yaml", source: "k2", target: "k1"}},
			sourceImages: []render.Image{{Name: "ghcr.io/acme/web", NewTag: "1.0"}, {Name: "ghcr.io/acme/worker", NewTag: "2.0"}},
		},
		{
			name:         "unpinned source image carries nothing",
			sourceImages: []render.Image{{Name: "ghcr.io/acme/web", NewName: "other/web"}},
		},
		{
			name:         "no target kustomization",
			noTargetKust: true,
			sourceImages: []render.Image{{Name: "ghcr.io/acme/web", NewTag: "1.1"}},
			diffs:        []fileDiff{{path: "base/a.yaml", source: "x"}},
			wantCopy:     []string{"base/a.yaml"},
			wantChanges:  []Change{{"base/a.yaml", Added}},
		},
		{
			name: "folder replaced by a file",
			diffs: []fileDiff{
				{path: "apps/x", source: "f1"},
				{path: "apps/x/a.yaml", target: "a1"},
				{path: "apps/x/b.yaml", target: "b1"},
			},
			wantCopy:    []string{"apps/x"},
			wantChanges: []Change{{"apps/x", Added}, {"apps/x/a.yaml", Deleted}, {"apps/x/b.yaml", Deleted}},
		},
		{
			name:    "promotable symlink refused",
			diffs:   []fileDiff{{path: "base/link", source: "l1", target: "l2", irregular: true}, {path: "overlays/dev/link", irregular: true}},
			wantErr: "promotable paths base/link are symbolic links or submodules",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := planInput{diffs: tt.diffs, promotable: m.promotable, sourceImages: tt.sourceImages,
				targetKustPath: "overlays/staging/kustomization.yaml", targetKust: []byte(stagingKust)}
			if tt.noTargetKust {
				in.targetKustPath, in.targetKust = "", nil
			}
			got, err := planPromotion(in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.copy, tt.wantCopy) {
				t.Errorf("copy %v, want %v", got.copy, tt.wantCopy)
			}
			if !reflect.DeepEqual(got.delete, tt.wantDelete) {
				t.Errorf("delete %v, want %v", got.delete, tt.wantDelete)
			}
			if !reflect.DeepEqual(got.changes, tt.wantChanges) {
				t.Errorf("changes %v, want %v", got.changes, tt.wantChanges)
			}
			if !reflect.DeepEqual(got.images, tt.wantImages) {
				t.Errorf("images %v, want %v", got.images, tt.wantImages)
			}
			kust, edited := got.edits["overlays/staging/kustomization.yaml"]
			if len(tt.wantKust) == 0 && edited {
				t.Errorf("kustomization edited, want untouched:\n%s", kust)
			}
			for _, w := range tt.wantKust {
				if !strings.Contains(string(kust), w) {
					t.Errorf("edited kustomization lacks %q:\n%s", w, kust)
				}
			}
			if got.empty() != (len(tt.wantCopy)+len(tt.wantDelete)+len(tt.wantKust) == 0) {
				t.Errorf("empty() = %v", got.empty())
			}
			// Pure: the same input gives the same plan.
			again, _ := planPromotion(in)
			if !reflect.DeepEqual(again, got) {
				t.Error("a second run gave a different plan")
			}
		})
	}
}

func TestContentKey(t *testing.T) {
	files := map[string]string{"base/a.yaml": "h1", "base/b.yaml": "h2"}
	web := map[string]render.Image{"web": {Name: "web", NewTag: "1.0"}}
	k := contentKey(files, web)
	if k != contentKey(map[string]string{"base/b.yaml": "h2", "base/a.yaml": "h1"}, web) {
		t.Error("key depends on map order")
	}
	for name, other := range map[string]string{
		"file content": contentKey(map[string]string{"base/a.yaml": "h1", "base/b.yaml": "h3"}, web),
		"file path":    contentKey(map[string]string{"base/a.yaml": "h1", "base/c.yaml": "h2"}, web),
		"image tag":    contentKey(files, map[string]render.Image{"web": {Name: "web", NewTag: "1.1"}}),
		"no image":     contentKey(files, nil),
	} {
		if other == k {
			t.Errorf("changing the %s kept the key", name)
		}
	}
	if !strings.HasPrefix(k, "sha256:") || len(k) != len("sha256:")+64 {
		t.Errorf("key %q", k)
	}
}
