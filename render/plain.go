package render

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// plainKustomization generates the kustomization of a folder that has none:
// every *.yaml, *.yml and *.json file below it, recursively and in lexical
// order, as resources. A subfolder with its own kustomization is listed as
// that folder (built with Kustomize) and not descended into; hidden files and
// folders (".git", ".github") are skipped. The generated file exists only in
// the build's filesystem, never in the snapshot.
func plainKustomization(tree fs.FS, dir string) ([]byte, error) {
	var resources []string
	err := fs.WalkDir(tree, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel := p
		if dir != "." {
			rel = strings.TrimPrefix(p, dir+"/")
		}
		if d.IsDir() {
			k, err := KustomizationFile(tree, p)
			if err != nil {
				return err
			}
			if k != "" {
				resources = append(resources, rel)
				return fs.SkipDir
			}
			return nil
		}
		switch path.Ext(d.Name()) {
		case ".yaml", ".yml", ".json":
			resources = append(resources, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list manifests of %s: %w", dir, err)
	}
	if len(resources) == 0 {
		return nil, fmt.Errorf("folder %s has no kustomization.yaml and no *.yaml, *.yml or *.json manifests", dir)
	}
	k := types.Kustomization{
		TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources: resources,
	}
	return yaml.Marshal(k)
}
