package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Image is one entry of a kustomization's images: list, which rewrites the
// image references of the rendered workloads.
type Image struct {
	// Name is the image as written in the manifests, without tag or digest
	// (for example "ghcr.io/acme/web"). Required.
	Name string
	// NewName replaces the image name; empty keeps it.
	NewName string
	// NewTag replaces the tag; empty keeps it.
	NewTag string
	// Digest ("sha256:...") replaces the tag with a digest; Kustomize prefers
	// it over NewTag.
	Digest string
}

var (
	reTag    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	reDigest = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

func (im Image) validate() error {
	switch {
	case im.Name == "" || strings.ContainsAny(im.Name, " \t\n@"):
		return fmt.Errorf("image name %q: want a name without tag, digest or spaces", im.Name)
	case strings.ContainsAny(im.NewName, " \t\n@"):
		return fmt.Errorf("image %s: newName %q: want a name without digest or spaces", im.Name, im.NewName)
	case im.NewTag != "" && !reTag.MatchString(im.NewTag):
		return fmt.Errorf("image %s: newTag %q is not a valid tag", im.Name, im.NewTag)
	case im.Digest != "" && !reDigest.MatchString(im.Digest):
		return fmt.Errorf("image %s: digest %q is not a valid digest (want algorithm:hex)", im.Name, im.Digest)
	}
	return nil
}

// Images reads the images: entries of a kustomization file, in file order.
func Images(kustomizationYAML []byte) ([]Image, error) {
	doc, err := firstDocument(kustomizationYAML)
	if err != nil {
		return nil, yamlError("kustomization", err)
	}
	seq := mapValue(topMapping(doc), "images")
	if seq == nil || seq.Tag == "!!null" {
		return nil, nil
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("kustomization:%d: images is not a list", seq.Line)
	}
	out := make([]Image, 0, len(seq.Content))
	for _, e := range seq.Content {
		if e.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("kustomization:%d: images entry is not a mapping", e.Line)
		}
		im := Image{
			Name:    scalarValue(mapValue(e, "name")),
			NewName: scalarValue(mapValue(e, "newName")),
			NewTag:  scalarValue(mapValue(e, "newTag")),
			Digest:  scalarValue(mapValue(e, "digest")),
		}
		if im.Name == "" {
			return nil, fmt.Errorf("kustomization:%d: images entry has no name", e.Line)
		}
		out = append(out, im)
	}
	return out, nil
}

// SetImages sets images: entries in a kustomization file and returns the new
// content; comments, key order and the list indentation style are kept.
//
// Each given image replaces the entry with the same Name: its newName,
// newTag and digest become exactly the given ones (an empty field removes
// the key), other keys of the entry are kept. An image without an entry is
// appended; an images: list is added at the end when there is none.
func SetImages(kustomizationYAML []byte, images ...Image) ([]byte, error) {
	seen := map[string]bool{}
	for _, im := range images {
		if err := im.validate(); err != nil {
			return nil, err
		}
		if seen[im.Name] {
			return nil, fmt.Errorf("image %s given twice", im.Name)
		}
		seen[im.Name] = true
	}
	doc, err := singleDocument(kustomizationYAML)
	if err != nil {
		return nil, err
	}
	top := topMapping(doc)
	if top == nil {
		return nil, errors.New("kustomization: top level is not a mapping")
	}
	seq := mapValue(top, "images")
	switch {
	case seq == nil:
		seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "images"}, seq)
	case seq.Kind == yaml.ScalarNode && seq.Tag == "!!null":
		*seq = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", LineComment: seq.LineComment}
	case seq.Kind != yaml.SequenceNode:
		return nil, fmt.Errorf("kustomization:%d: images is not a list", seq.Line)
	}
	for _, im := range images {
		setImage(seq, im)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoderWithOptions(&buf, &yaml.EncoderOptions{
		SeqIndent: yaml.SequenceIndentStyle(yaml.DeriveSeqIndentStyle(string(kustomizationYAML))),
	})
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode kustomization: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode kustomization: %w", err)
	}
	return buf.Bytes(), nil
}

// singleDocument parses a kustomization file that must hold one document
// (an empty file gives an empty mapping).
func singleDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{m}}, nil
	}
	if err != nil {
		return nil, yamlError("kustomization", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("kustomization: more than one YAML document")
	}
	return &doc, nil
}

func setImage(seq *yaml.Node, im Image) {
	var entry *yaml.Node
	for _, e := range seq.Content {
		if e.Kind == yaml.MappingNode && scalarValue(mapValue(e, "name")) == im.Name {
			entry = e
			break
		}
	}
	if entry == nil {
		entry = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setKey(entry, "name", im.Name)
		seq.Content = append(seq.Content, entry)
	}
	setKey(entry, "newName", im.NewName)
	setKey(entry, "newTag", im.NewTag)
	setKey(entry, "digest", im.Digest)
}

// setKey sets key to a string value in place (keeping its position and
// comments), appends it when absent, and removes it when value is empty.
func setKey(m *yaml.Node, key, value string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		if value == "" {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
		v := m.Content[i+1]
		v.Kind, v.Tag, v.Value = yaml.ScalarNode, "!!str", value
		v.Content = nil
		v.Style = stringStyle(value, v.Style)
		return
	}
	if value == "" {
		return
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Style: stringStyle(value, 0)})
}

// stringStyle keeps a quoted style, and quotes values that plain YAML would
// read as something other than a string (tag "1.10" is not the float 1.1).
func stringStyle(value string, current yaml.Style) yaml.Style {
	if current&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return current
	}
	var v any
	if err := yaml.Unmarshal([]byte(value), &v); err == nil {
		if _, ok := v.(string); ok {
			return 0
		}
	}
	return yaml.DoubleQuotedStyle
}
