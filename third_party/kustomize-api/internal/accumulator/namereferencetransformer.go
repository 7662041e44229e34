// Copyright 2019 The Kubernetes Authors.
// SPDX-License-Identifier: Apache-2.0
// Changed for Baton (github.com/baton-gitops/baton): see README.md at this module's root.

package accumulator

import (
	"fmt"
	"log"
	"strings"

	"sigs.k8s.io/kustomize/api/filters/nameref"
	"sigs.k8s.io/kustomize/api/internal/plugins/builtinconfig"
	"sigs.k8s.io/kustomize/api/internal/utils"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyamlutils "sigs.k8s.io/kustomize/kyaml/utils"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

type nameReferenceTransformer struct {
	backRefs []builtinconfig.NameBackReferences
}

const doDebug = false

var _ resmap.Transformer = &nameReferenceTransformer{}

type filterMap map[*resource.Resource][]nameref.Filter

// newNameReferenceTransformer constructs a nameReferenceTransformer
// with a given slice of NameBackReferences.
func newNameReferenceTransformer(
	br []builtinconfig.NameBackReferences) resmap.Transformer {
	if br == nil {
		log.Fatal("backrefs not expected to be nil")
	}
	return &nameReferenceTransformer{backRefs: br}
}

// Transform updates name references in resource A that
// refer to resource B, given that B's name may have
// changed.
//
// For example, a HorizontalPodAutoscaler (HPA)
// necessarily refers to a Deployment, the thing that
// an HPA scales. In this case:
//
//   - the HPA instance is the Referrer,
//   - the Deployment instance is the ReferralTarget.
//
// If the Deployment's name changes, e.g. a prefix is added,
// then the HPA's reference to the Deployment must be fixed.
//
func (t *nameReferenceTransformer) Transform(m resmap.ResMap) error {
	fMap := t.determineFilters(m.Resources())
	debug(fMap)
	// Each filter below looks at every candidate's ids, which are parsed
	// from YAML on every call: freeze them, as this pass changes none.
	if !t.mayChangeIds(m.Resources()) {
		defer resource.FreezeIds(m.Resources())()
	}
	for r, fList := range fMap {
		c, err := m.SubsetThatCouldBeReferencedByResource(r)
		if err != nil {
			return err
		}
		for _, f := range fList {
			f.Referrer = r
			f.ReferralCandidates = c
			if err := f.Referrer.ApplyFilter(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// mayChangeIds reports whether writing name references could change the
// id of a resource (its apiVersion, kind, name, namespace or previous-id
// annotations). The filters write at the referrers' fieldSpec paths (a
// name, or the name and namespace of a map found there) and rewrite the
// refBy annotation of referrals, keeping the other annotations' values. So
// an id can change only through a path that leads to one of those fields,
// or through a YAML node that holds one and is also reachable from
// elsewhere: through an alias, or shared by two trees. (Transformers do
// share nodes, such as a label's value between metadata and selectors.)
func (t *nameReferenceTransformer) mayChangeIds(resources []*resource.Resource) bool {
	for _, backRef := range t.backRefs {
		for _, fs := range backRef.Referrers {
			if pathMayReachId(fs.Path) {
				return true
			}
		}
	}
	reached := make(map[*yaml.Node]int) // id nodes: times reached
	for _, r := range resources {
		addIdNodes(reached, r.YNode())
	}
	aliased := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.AliasNode {
			aliased = true
			return
		}
		if _, ok := reached[n]; ok {
			reached[n]++
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for _, r := range resources {
		walk(r.YNode())
	}
	if aliased {
		return true
	}
	for _, times := range reached {
		if times > 1 {
			return true
		}
	}
	return false
}

// addIdNodes adds to ids the nodes of a resource whose change changes its
// id: the values of apiVersion, kind, metadata/name, metadata/namespace and
// the previous-id annotations, and the metadata map (where a write may set
// a name or namespace).
func addIdNodes(ids map[*yaml.Node]int, root *yaml.Node) {
	fields := func(m *yaml.Node, visit func(key string, value *yaml.Node)) {
		if m == nil || m.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			visit(m.Content[i].Value, m.Content[i+1])
		}
	}
	fields(root, func(key string, value *yaml.Node) {
		switch key {
		case yaml.APIVersionField, yaml.KindField:
			ids[value] = 0
		case yaml.MetadataField:
			ids[value] = 0
			fields(value, func(key string, value *yaml.Node) {
				switch key {
				case yaml.NameField, yaml.NamespaceField:
					ids[value] = 0
				case yaml.AnnotationsField:
					fields(value, func(key string, value *yaml.Node) {
						switch key {
						case utils.BuildAnnotationPreviousKinds,
							utils.BuildAnnotationPreviousNames,
							utils.BuildAnnotationPreviousNamespaces:
							ids[value] = 0
						}
					})
				}
			})
		}
	})
}

// pathMayReachId reports whether a fieldSpec path may lead to an id field:
// the root, apiVersion, kind, metadata, its name or namespace, or a
// previous-id annotation. Other metadata paths (labels, other annotations)
// cannot.
func pathMayReachId(path string) bool {
	segs := kyamlutils.PathSplitter(path, "/")
	for i := range segs {
		segs[i] = strings.TrimSuffix(segs[i], "[]")
	}
	switch segs[0] {
	case "", "apiVersion", "kind":
		return true
	case "metadata":
		if len(segs) < 3 {
			return true
		}
		if segs[1] == "annotations" {
			switch segs[2] {
			case utils.BuildAnnotationPreviousKinds,
				utils.BuildAnnotationPreviousNames,
				utils.BuildAnnotationPreviousNamespaces:
				return true
			}
		}
	}
	return false
}

func debug(fMap filterMap) {
	if !doDebug {
		return
	}
	fmt.Printf("filterMap has %d entries:\n", len(fMap))
	rCount := 0
	for r, fList := range fMap {
		yml, _ := r.AsYAML()
		rCount++
		fmt.Printf(`
---- %3d. possible referrer -------------
%s
---------`, rCount, string(yml),
		)
		for i, f := range fList {
			fmt.Printf(`
%3d/%3d update: %s
          from: %s
`, rCount, i+1, f.NameFieldToUpdate.Path, f.ReferralTarget,
			)
		}
	}
}

// Produce a map from referrer resources that might need to be fixed
// to filters that might fix them.  The keys to this map are potential
// referrers, so won't include resources like ConfigMap or Secret.
//
// In the inner loop over the resources below, say we
// encounter an HPA instance. Then, in scanning the set
// of all known backrefs, we encounter an entry like
//
//   - kind: Deployment
//     fieldSpecs:
//     - kind: HorizontalPodAutoscaler
//       path: spec/scaleTargetRef/name
//
// This entry says that an HPA, via its
// 'spec/scaleTargetRef/name' field, may refer to a
// Deployment.
//
// This means that a filter will need to hunt for the right Deployment,
// obtain it's new name, and write that name into the HPA's
// 'spec/scaleTargetRef/name' field. Return a filter that can do that.
func (t *nameReferenceTransformer) determineFilters(
	resources []*resource.Resource) (fMap filterMap) {
	// We cache the resource OrgId values because they don't change and otherwise are very visible in a memory pprof
	resourceOrgIds := make([]resid.ResId, len(resources))
	for i, resource := range resources {
		resourceOrgIds[i] = resource.OrgId()
	}

	fMap = make(filterMap)
	for _, backReference := range t.backRefs {
		for _, referrerSpec := range backReference.Referrers {
			for i, res := range resources {
				if resourceOrgIds[i].IsSelected(&referrerSpec.Gvk) {
					// If this is true, the res might be a referrer, and if
					// so, the name reference it holds might need an update.
					if resHasField(res, referrerSpec.Path) {
						// Optimization - the referrer has the field
						// that might need updating.
						fMap[res] = append(fMap[res], nameref.Filter{
							// Name field to write in the Referrer.
							// If the path specified here isn't found in
							// the Referrer, nothing happens (no error,
							// no field creation).
							NameFieldToUpdate: referrerSpec,
							// Specification of object class to read from.
							// Always read from metadata/name field.
							ReferralTarget: backReference.Gvk,
						})
					}
				}
			}
		}
	}
	return fMap
}

// TODO: check res for field existence here to avoid extra work.
// res.GetFieldValue, which uses yaml.Lookup under the hood, doesn't know
// how to parse fieldspec-style paths that make no distinction
// between maps and sequences.  This means it cannot lookup commonly
// used "indeterminate" paths like
//    spec/containers/env/valueFrom/configMapKeyRef/name
// ('containers' is a list, not a map).
// However, the fieldspec filter does know how to handle this;
// extract that code and call it here?
func resHasField(res *resource.Resource, path string) bool {
	return true
	// fld := strings.Join(utils.PathSplitter(path), ".")
	// _, e := res.GetFieldValue(fld)
	// return e == nil
}
