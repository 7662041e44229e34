package render

import (
	"fmt"
	"io/fs"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// graph is what scan learned about the files a build reads. Kustomize's own
// errors often name neither the kustomization nor the entry at fault;
// diagnose uses the graph to find them.
type graph struct {
	fsys      *snapshotFS
	resources []string     // tree paths of local resource files, in visit order
	patches   []patchEntry // every patch of every kustomization and component
	// children lists the kustomization folders each folder includes
	// (resources, bases, components), once per inclusion; yields counts
	// the resource files and generators of each folder. Together they bound
	// the object count before Kustomize runs (estimateObjects).
	children map[string][]string
	yields   map[string]int
}

// patchEntry is one patch and where it is declared.
type patchEntry struct {
	where   string // "dir/kustomization.yaml:12: patches entry \"p.yaml\""
	content []byte // the patch document(s), read from its file or inline
}

// scan walks the kustomizations reachable from dir before Kustomize runs,
// and refuses what the build must not do: remote references outside the
// allowed prefixes, paths out of the snapshot, Helm, KRM functions and other
// non-builtin plugins, custom OpenAPI schemas. It also checks that every
// local entry exists, so a typo is reported with its file, line and entry
// instead of Kustomize's nested "accumulation err" chain.
func scan(fsys *snapshotFS, dir string, allowed []string) (*graph, error) {
	s := &scanner{fsys: fsys, allowed: allowed, g: &graph{fsys: fsys, children: map[string][]string{}, yields: map[string]int{}}, seen: map[string]bool{}}
	if err := s.kustomization(dir, false); err != nil {
		return nil, err
	}
	return s.g, nil
}

type scanner struct {
	fsys    *snapshotFS
	allowed []string
	g       *graph
	seen    map[string]bool // "plugin:folder" of kustomizations already walked
}

// kustomization walks the kustomization in dir. plugin is true when dir was
// reached through generators/transformers/validators: its resources are then
// plugin configurations, checked as such.
func (s *scanner) kustomization(dir string, plugin bool) error {
	// A folder is walked once per mode: as plugin configurations its files
	// are checked differently.
	key := fmt.Sprintf("%t:%s", plugin, dir)
	if s.seen[key] {
		return nil
	}
	s.seen[key] = true
	name, err := kustomizationFile(s.fsys.tree, dir)
	if err != nil {
		return err
	}
	if name == "" {
		if _, ok := s.fsys.overrides[joinTree(dir, "kustomization.yaml")]; ok {
			name = "kustomization.yaml"
		} else {
			return fmt.Errorf("folder %s has no kustomization.yaml", dir)
		}
	}
	file := joinTree(dir, name)
	data, err := s.fsys.readTree(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	k, doc, err := parseKustomization(file, data)
	if err != nil {
		return err
	}
	c := &kustScan{scanner: s, file: file, dir: dir, doc: doc}
	return c.walk(k, plugin)
}

// kustomizationFile returns the name of dir's kustomization file, or "" when
// it has none. Kustomize refuses a folder with two; so do we, by name.
func kustomizationFile(tree fs.FS, dir string) (string, error) {
	var found []string
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if fi, err := fs.Stat(tree, joinTree(dir, n)); err == nil && !fi.IsDir() {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("folder %s has more than one kustomization file: %s", dir, strings.Join(found, ", "))
	}
}

// kustScan checks the entries of one kustomization file.
type kustScan struct {
	*scanner
	file string     // tree path of the kustomization file
	dir  string     // its folder
	doc  *yaml.Node // parsed file, for line numbers
}

func (c *kustScan) walk(k *types.Kustomization, plugin bool) error {
	if len(k.OpenAPI) > 0 {
		return fmt.Errorf("%s: %w", c.at("openapi", -1), ErrOpenAPIRefused)
	}
	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 || k.HelmGlobals != nil {
		key := "helmCharts"
		switch {
		case len(k.HelmChartInflationGenerator) > 0:
			key = "helmChartInflationGenerator"
		case len(k.HelmCharts) == 0:
			key = "helmGlobals"
		}
		return fmt.Errorf("%s: %w", c.at(key, -1), ErrHelmRefused)
	}
	for _, f := range []struct {
		key     string
		entries []string
	}{{"resources", k.Resources}, {"bases", k.Bases}} {
		for i, e := range f.entries {
			if err := c.resource(f.key, i, e, plugin); err != nil {
				return err
			}
		}
	}
	for i, e := range k.Components {
		if err := c.needFolder("components", i, e, false); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		key     string
		entries []string
	}{{"crds", k.Crds}, {"configurations", k.Configurations}} {
		for i, e := range f.entries {
			if _, err := c.needFile(f.key, i, e); err != nil {
				return err
			}
		}
	}
	if err := c.patchList("patches", k.Patches); err != nil {
		return err
	}
	if err := c.patchList("patchesJson6902", k.PatchesJson6902); err != nil {
		return err
	}
	for i, e := range k.PatchesStrategicMerge {
		if err := c.patch("patchesStrategicMerge", i, string(e), string(e)); err != nil {
			return err
		}
	}
	if !plugin {
		c.g.yields[c.dir] += len(k.ConfigMapGenerator) + len(k.SecretGenerator)
	}
	for i, g := range k.ConfigMapGenerator {
		if err := c.kvSources("configMapGenerator", i, g.KvPairSources); err != nil {
			return err
		}
	}
	for i, g := range k.SecretGenerator {
		if err := c.kvSources("secretGenerator", i, g.KvPairSources); err != nil {
			return err
		}
	}
	for i, r := range k.Replacements {
		if r.Path == "" {
			continue
		}
		if _, err := c.needFile("replacements", i, r.Path); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		key     string
		entries []string
	}{{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}} {
		for i, e := range f.entries {
			if err := c.plugin(f.key, i, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// at names an entry for errors: "file:line: key entry" (line when known).
func (c *kustScan) at(key string, idx int) string {
	if line := entryLine(c.doc, key, idx); line > 0 {
		return fmt.Sprintf("%s:%d: %s", c.file, line, key)
	}
	return fmt.Sprintf("%s: %s", c.file, key)
}

func (c *kustScan) entry(key string, idx int, e string) string {
	return fmt.Sprintf("%s entry %q", c.at(key, idx), e)
}

// local resolves a non-remote entry to a tree path, refusing remote
// references (unless allowed, and then still unsupported), absolute paths
// and paths that climb out of the snapshot.
func (c *kustScan) local(key string, idx int, e string) (string, error) {
	if isRemote(e) {
		if remoteAllowed(e, c.allowed) {
			return "", fmt.Errorf("%s: %w; vendor it into the repository", c.entry(key, idx, e), ErrRemoteUnsupported)
		}
		return "", fmt.Errorf("%s: %w: not under an allowed prefix (AllowedRemotePrefixes)", c.entry(key, idx, e), ErrRemoteRefused)
	}
	if strings.HasPrefix(e, "/") {
		return "", fmt.Errorf("%s: %w: absolute paths are refused", c.entry(key, idx, e), ErrPathEscape)
	}
	p, err := treePath(c.dir + "/" + e)
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.entry(key, idx, e), ErrPathEscape)
	}
	return p, nil
}

// needFile checks an entry that must name a file.
func (c *kustScan) needFile(key string, idx int, e string) (string, error) {
	p, err := c.local(key, idx, e)
	if err != nil {
		return "", err
	}
	fi, err := c.fsys.statTree(p)
	if err != nil {
		return "", fmt.Errorf("%s: %s does not exist in the snapshot", c.entry(key, idx, e), p)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%s: %s is a folder, want a file", c.entry(key, idx, e), p)
	}
	return p, c.rootOnly(key, idx, e, p)
}

// rootOnly enforces Kustomize's root-only load restriction with a clear
// message: a kustomization reads files only in or below its own folder;
// what lies elsewhere is reached through that folder's kustomization.
func (c *kustScan) rootOnly(key string, idx int, e, p string) error {
	if c.dir == "." || strings.HasPrefix(p, c.dir+"/") {
		return nil
	}
	return fmt.Errorf("%s: file %s is outside %s (files load only from the kustomization's own folder; "+
		"list the folder that holds it, with its own kustomization, instead)", c.entry(key, idx, e), p, c.dir)
}

// stat resolves a local entry to its path in the snapshot and what is there.
func (c *kustScan) stat(key string, idx int, e string) (string, fs.FileInfo, error) {
	p, err := c.local(key, idx, e)
	if err != nil {
		return "", nil, err
	}
	fi, err := c.fsys.statTree(p)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %s does not exist in the snapshot", c.entry(key, idx, e), p)
	}
	return p, fi, nil
}

// needFolder checks an entry that must name a kustomization folder, and walks it.
func (c *kustScan) needFolder(key string, idx int, e string, plugin bool) error {
	p, fi, err := c.stat(key, idx, e)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %s is a file, want a kustomization folder", c.entry(key, idx, e), p)
	}
	return c.into(key, idx, e, p, plugin)
}

func (c *kustScan) into(key string, idx int, e, p string, plugin bool) error {
	if !plugin {
		c.g.children[c.dir] = append(c.g.children[c.dir], p)
	}
	name, err := kustomizationFile(c.fsys.tree, p)
	if err != nil {
		return fmt.Errorf("%s: %w", c.entry(key, idx, e), err)
	}
	if name == "" {
		return fmt.Errorf("%s: folder %s has no kustomization.yaml", c.entry(key, idx, e), p)
	}
	return c.kustomization(p, plugin)
}

// resource checks a resources (or bases) entry: a file, or a kustomization
// folder to walk.
func (c *kustScan) resource(key string, idx int, e string, plugin bool) error {
	p, fi, err := c.stat(key, idx, e)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return c.into(key, idx, e, p, plugin)
	}
	if err := c.rootOnly(key, idx, e, p); err != nil {
		return err
	}
	if plugin {
		data, err := c.fsys.readTree(p)
		if err != nil {
			return fmt.Errorf("%s: %w", c.entry(key, idx, e), err)
		}
		return c.pluginConfigs(fmt.Sprintf("%s (plugin configuration from %s)", c.entry(key, idx, e), p), data)
	}
	c.g.resources = append(c.g.resources, p)
	c.g.yields[c.dir]++
	return nil
}

func (c *kustScan) patchList(key string, patches []types.Patch) error {
	for i, p := range patches {
		if p.Path != "" {
			if err := c.patch(key, i, p.Path, ""); err != nil {
				return err
			}
			continue
		}
		c.g.patches = append(c.g.patches, patchEntry{
			where:   fmt.Sprintf("%s entry %d (inline)", c.at(key, i), i),
			content: []byte(p.Patch),
		})
	}
	return nil
}

// patch records a patch given by path; inline is non-empty when the entry
// may also be an inline patch (patchesStrategicMerge).
func (c *kustScan) patch(key string, idx int, e, inline string) error {
	if inline != "" && !isRemote(inline) && (strings.Contains(inline, "\n") || looksInline(inline)) {
		c.g.patches = append(c.g.patches, patchEntry{
			where:   fmt.Sprintf("%s entry %d (inline)", c.at(key, idx), idx),
			content: []byte(inline),
		})
		return nil
	}
	p, err := c.needFile(key, idx, e)
	if err != nil {
		return err
	}
	data, err := c.fsys.readTree(p)
	if err != nil {
		return fmt.Errorf("%s: %w", c.entry(key, idx, e), err)
	}
	c.g.patches = append(c.g.patches, patchEntry{where: c.entry(key, idx, e), content: data})
	return nil
}

// kvSources checks the files and env files of a ConfigMap or Secret
// generator ("files" entries may be "key=path").
func (c *kustScan) kvSources(key string, idx int, src types.KvPairSources) error {
	paths := append([]string(nil), src.EnvSources...)
	if src.EnvSource != "" {
		paths = append(paths, src.EnvSource)
	}
	for _, f := range src.FileSources {
		if _, after, ok := strings.Cut(f, "="); ok {
			f = after
		}
		paths = append(paths, f)
	}
	for _, p := range paths {
		if _, err := c.needFile(key, idx, p); err != nil {
			return err
		}
	}
	return nil
}

func joinTree(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}
