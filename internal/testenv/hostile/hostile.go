// Package hostile makes repository content that attacks a GitOps agent,
// for the tests that prove Baton refuses it: a YAML alias bomb, an
// oversized blob, an exponential fan-out of kustomizations. Each function
// returns files (tree path → content) to commit.
package hostile

import (
	"fmt"
	"strings"
)

// AliasBomb is a ConfigMap manifest whose anchors nest levels deep, nine
// aliases each: under 1 KiB for 9 levels, 9^levels nodes once expanded
// (levels 5 already makes Kustomize allocate about 1 GiB).
func AliasBomb(name string, levels int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n", name)
	b.WriteString("  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d [", i, i)
		for j := range 9 {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// Oversized is a ConfigMap manifest of at least size bytes.
func Oversized(name string, size int) string {
	head := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  blob: \"", name)
	n := size - len(head)
	if n < 0 {
		n = 0
	}
	return head + strings.Repeat("x", n) + "\"\n"
}

// FanOut is a tree of kustomizations under dir: dir includes two folders,
// a and b, each of which includes the next level (dir/l1) under its own
// namePrefix, and so on levels deep; the last level holds one ConfigMap.
// Kustomize builds the ConfigMap 2^levels times: levels 20 is a million
// objects from 3*levels+2 small files.
func FanOut(dir string, levels int) map[string]string {
	files := map[string]string{}
	cur := dir
	for l := range levels {
		files[cur+"/kustomization.yaml"] = "resources: [a, b]\n"
		for _, side := range []string{"a", "b"} {
			files[cur+"/"+side+"/kustomization.yaml"] = fmt.Sprintf("namePrefix: %s-\nresources: [../l%d]\n", side, l+1)
		}
		cur = fmt.Sprintf("%s/l%d", cur, l+1)
	}
	files[cur+"/kustomization.yaml"] = "resources: [cm.yaml]\n"
	files[cur+"/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fan\ndata:\n  k: v\n"
	return files
}

// ManyAliases is a kustomization in dir of files ConfigMap manifests, each
// with three levels of nine aliases: 8,289 nodes once expanded, under a
// limit of 10,000 per file, yet Kustomize keeps about 13 MiB per file
// expanded. It passes every check made before the build and grows
// Kustomize's heap by about 13 MiB a file.
func ManyAliases(dir string, files int) map[string]string {
	out := map[string]string{}
	var res []string
	for i := range files {
		name := fmt.Sprintf("aliases-%02d", i)
		out[dir+"/"+name+".yaml"] = AliasBomb(name, 3)
		res = append(res, name+".yaml")
	}
	out[dir+"/kustomization.yaml"] = "resources: [" + strings.Join(res, ", ") + "]\n"
	return out
}
