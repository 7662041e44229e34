package render

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Kustomize's error texts that diagnose recognises. They are not a stable
// API; when one changes, diagnose falls back to Kustomize's own message.
var (
	reDuplicateID  = regexp.MustCompile(`already registered id: ([^\s"';,]+)`)
	rePatchTarget  = regexp.MustCompile(`(?:strategic merge patch "|target for patch |no matches for Id )([^\s"';,]+)`)
	reJSONPointer  = regexp.MustCompile(`(?:path|key)[: ]+"?(/[^"\s:]*)`)
	reJSONPatchErr = regexp.MustCompile(`operation does not apply|Unable to remove nonexistent key|error in (?:add|remove|replace|move|copy|test)`)
)

// diagnose turns a failed Kustomize build into an error that names the file
// (and line, and entry) at fault, using what scan learned about the tree.
// Kustomize often names only a document-relative line, or neither file nor
// entry. Diagnosis runs only after a failure, so successful builds pay
// nothing for it.
func diagnose(err error, g *graph) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "MalformedYAMLError"), strings.Contains(msg, "missing metadata.name in object"),
		strings.Contains(msg, "missing kind in object"):
		if e := lintManifests(g); e != nil {
			return e
		}
	case reDuplicateID.MatchString(msg):
		if e := duplicateIDError(reDuplicateID.FindStringSubmatch(msg)[1], g); e != nil {
			return e
		}
	case rePatchTarget.MatchString(msg):
		if e := patchTargetError(rePatchTarget.FindStringSubmatch(msg)[1], msg, g); e != nil {
			return e
		}
	case reJSONPatchErr.MatchString(msg):
		if e := jsonPatchError(msg, g); e != nil {
			return e
		}
	}
	return fmt.Errorf("kustomize build: %w", err)
}

// lintManifests finds the first resource or patch file with a YAML syntax
// error, or an object without kind or metadata.name.
func lintManifests(g *graph) error {
	docs, err := g.allDocs()
	if err != nil {
		return err
	}
	for _, d := range docs {
		switch {
		case d.kind == "":
			return fmt.Errorf("%s: object %s has no kind", d, objectRef(d.kind, d.namespace, d.name))
		case d.name == "":
			return fmt.Errorf("%s: object %s has no metadata.name", d, objectRef(d.kind, d.namespace, d.name))
		}
	}
	for _, p := range g.patches {
		if _, err := manifestDocs("patch", p.content); err != nil {
			return fmt.Errorf("%s: %s", p.where, strings.TrimPrefix(err.Error(), "patch:"))
		}
	}
	return nil
}

// resID is Kustomize's object id as printed in its errors:
// "Kind.version.group/name.namespace", with [noGrp] and [noNs] for empty.
type resID struct {
	kind, version, group, name, namespace string
}

func parseResID(s string) (resID, bool) {
	gvk, nn, ok := strings.Cut(s, "/")
	if !ok {
		return resID{}, false
	}
	var id resID
	parts := strings.SplitN(gvk, ".", 3)
	id.kind = parts[0]
	if len(parts) > 1 {
		id.version = parts[1]
	}
	if len(parts) > 2 && parts[2] != "[noGrp]" {
		id.group = parts[2]
	}
	// Namespaces cannot contain dots; names can.
	if i := strings.LastIndex(nn, "."); i >= 0 {
		id.name, id.namespace = nn[:i], nn[i+1:]
	} else {
		id.name = nn
	}
	if id.namespace == "[noNs]" {
		id.namespace = ""
	}
	return id, id.kind != "" && id.name != ""
}

func (id resID) apiVersion() string {
	if id.group == "" {
		return id.version
	}
	return id.group + "/" + id.version
}

func duplicateIDError(raw string, g *graph) error {
	id, ok := parseResID(raw)
	if !ok {
		return nil
	}
	docs, err := g.allDocs()
	if err != nil {
		return err
	}
	src := sourcesOf(docs, id.apiVersion(), id.kind, id.name)
	if len(src) < 2 {
		return nil
	}
	return fmt.Errorf("duplicate object %s: defined in %s", objectRef(id.kind, id.namespace, id.name), joinSources(src))
}

// patchTargetError names the patch whose own kind and name match no object.
func patchTargetError(raw, msg string, g *graph) error {
	id, ok := parseResID(raw)
	if !ok {
		return nil
	}
	var at []string
	for _, p := range g.patches {
		docs, _ := manifestDocs("patch", p.content)
		for _, d := range docs {
			if d.kind == id.kind && d.name == id.name {
				at = append(at, p.where)
				break
			}
		}
	}
	if len(at) == 0 {
		return nil
	}
	return fmt.Errorf("%s: patch target %s not found: no rendered object has this kind and name",
		strings.Join(at, "; "), objectRef(id.kind, id.namespace, id.name))
}

// jsonPatchError names the JSON 6902 patch whose operation failed, found by
// the JSON pointer Kustomize quotes.
func jsonPatchError(msg string, g *graph) error {
	m := reJSONPointer.FindStringSubmatch(msg)
	if m == nil {
		return nil
	}
	var at []string
	for _, p := range g.patches {
		if bytes.Contains(p.content, []byte(m[1])) {
			at = append(at, p.where)
		}
	}
	if len(at) == 0 {
		return nil
	}
	return fmt.Errorf("%s: json patch operation on %s failed: %s", strings.Join(at, "; "), m[1], msg)
}
