package image

import (
	"fmt"
	"os"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// KustomizationImage is one entry of a kustomization's images: list.
type KustomizationImage struct {
	Name, NewName, NewTag, Digest string
}

// ReadKustomizationImage returns the images: entry named name of the
// kustomization file at path.
func ReadKustomizationImage(path, name string) (KustomizationImage, error) {
	node, err := yaml.ReadFile(path)
	if err != nil {
		return KustomizationImage{}, fmt.Errorf("kustomization %s: %w", path, err)
	}
	entry, err := node.Pipe(yaml.Lookup("images", "[name="+name+"]"))
	if err != nil || entry == nil {
		return KustomizationImage{}, fmt.Errorf("kustomization %s: no images: entry named %s", path, name)
	}
	field := func(f string) string {
		v, _ := entry.Pipe(yaml.Lookup(f))
		if v == nil {
			return ""
		}
		return yaml.GetValue(v)
	}
	return KustomizationImage{Name: name, NewName: field("newName"), NewTag: field("newTag"), Digest: field("digest")}, nil
}

// SetKustomizationImage sets the images: entry named name to newName:newTag,
// dropping a digest pin, and keeps the file's comments and order: what
// `kustomize edit set image name=newName:newTag` does, without the CLI.
func SetKustomizationImage(path, name, newName, newTag string) error {
	node, err := yaml.ReadFile(path)
	if err != nil {
		return fmt.Errorf("kustomization %s: %w", path, err)
	}
	entry, err := node.Pipe(yaml.Lookup("images", "[name="+name+"]"))
	if err != nil || entry == nil {
		return fmt.Errorf("kustomization %s: no images: entry named %s", path, name)
	}
	// Each filter runs on the entry: a pipe would hand the next one the
	// field just set.
	for _, f := range []yaml.Filter{yaml.SetField("newName", yaml.NewStringRNode(newName)),
		yaml.SetField("newTag", yaml.NewStringRNode(newTag)), yaml.Clear("digest")} {
		if err := entry.PipeE(f); err != nil {
			return fmt.Errorf("kustomization %s: images[%s]: %w", path, name, err)
		}
	}
	// Keep the file's own sequence indentation, as kustomize edit does.
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("kustomization %s: %w", path, err)
	}
	style := yaml.SequenceIndentStyle(yaml.DeriveSeqIndentStyle(string(raw)))
	out, err := yaml.MarshalWithOptions(node.Document(), &yaml.EncoderOptions{SeqIndent: style})
	if err != nil {
		return fmt.Errorf("kustomization %s: %w", path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("kustomization %s: %w", path, err)
	}
	return os.WriteFile(path, out, info.Mode().Perm())
}
