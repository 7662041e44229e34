package reconciler

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Masks shown instead of Secret values. A value that changed gets two
// different masks so that the diff still shows which keys changed.
const (
	maskSame = "*****"
	maskOld  = "***** (old)"
	maskNew  = "***** (new)"
)

// diffContext is the number of unchanged lines around each hunk.
const diffContext = 3

// objectDiff renders a unified YAML diff from the live object to the desired
// one (both normalized), with Secret values masked. It returns "" when they
// are equal. A nil live object diffs from nothing (a create); a nil desired
// object diffs to nothing (a delete).
func objectDiff(ref ObjectRef, live, desired *unstructured.Unstructured) (string, error) {
	from, to := normalized(live), normalized(desired)
	if ref.Group == "" && ref.Kind == "Secret" {
		maskSecretValues(from, to)
	}
	a, err := yamlLines(from)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", ref, err)
	}
	b, err := yamlLines(to)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", ref, err)
	}
	return unifiedDiff("live/"+ref.String(), "git/"+ref.String(), a, b), nil
}

func yamlLines(obj map[string]any) ([]string, error) {
	if obj == nil {
		return nil, nil
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	text := string(b)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	lines := strings.SplitAfter(text, "\n")
	return lines[:len(lines)-1], nil // SplitAfter leaves "" after the last newline
}

// annotationLastApplied is the annotation kubectl apply (client-side) writes: the
// whole object as applied, a Secret's values included, in JSON.
const annotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// maskSecretValues replaces the values under data and stringData of two
// versions of a Secret, and its last-applied-configuration annotation,
// comparing before masking so that a changed value stays visible as
// changed without showing it. Either side may be nil.
func maskSecretValues(from, to map[string]any) {
	for _, field := range []string{"data", "stringData"} {
		a, _ := from[field].(map[string]any)
		b, _ := to[field].(map[string]any)
		maskMaps(a, b)
	}
	maskEntry(annotations(from), annotations(to), annotationLastApplied)
}

// maskEntry masks the entry key of a and b, like maskMaps.
func maskEntry(a, b map[string]any, key string) {
	av, inA := a[key]
	bv, inB := b[key]
	switch {
	case inA && inB && fmt.Sprint(av) == fmt.Sprint(bv):
		a[key], b[key] = maskSame, maskSame
	case inA && inB:
		a[key], b[key] = maskOld, maskNew
	case inA:
		a[key] = maskSame
	case inB:
		b[key] = maskSame
	}
}

// maskMaps masks every value of a and b in place; see maskSecretValues.
func maskMaps(a, b map[string]any) {
	for k := range a {
		maskEntry(a, b, k)
	}
	for k := range b {
		if _, inA := a[k]; !inA {
			b[k] = maskSame
		}
	}
}

func annotations(obj map[string]any) map[string]any {
	md, _ := obj["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	return ann
}

// editOp is one line of an edit script.
type editOp struct {
	kind byte // ' ', '-' or '+'
	line string
}

// unifiedDiff formats the difference of two line slices (each line ending
// in "\n") as a unified diff; "" when equal.
func unifiedDiff(fromName, toName string, a, b []string) string {
	ops := editScript(a, b)
	changed := false
	for _, op := range ops {
		if op.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", fromName, toName)

	// Walk the script, emitting hunks: runs of changes with up to
	// diffContext equal lines around them, merging hunks whose context
	// would overlap.
	aLine, bLine := 1, 1 // 1-based line numbers at ops[i]
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i, aLine, bLine = i+1, aLine+1, bLine+1
			continue
		}
		start := max(0, i-diffContext)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*diffContext {
				end = min(end+diffContext, len(ops))
				break
			}
			end = run
		}
		back := i - start
		hunkA, hunkB := aLine-back, bLine-back
		var countA, countB int
		var body strings.Builder
		for _, op := range ops[start:end] {
			body.WriteByte(op.kind)
			body.WriteString(op.line)
			if op.kind != '+' {
				countA++
			}
			if op.kind != '-' {
				countB++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(hunkA, countA), hunkRange(hunkB, countB))
		sb.WriteString(body.String())
		for _, op := range ops[i:end] {
			if op.kind != '+' {
				aLine++
			}
			if op.kind != '-' {
				bLine++
			}
		}
		i = end
	}
	return sb.String()
}

func hunkRange(start, count int) string {
	if count == 0 {
		// An empty range names the line before it, as diff(1) does.
		return fmt.Sprintf("%d,0", start-1)
	}
	if count == 1 {
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, count)
}

// maxLCSCells bounds the quadratic part of editScript; beyond it the changed
// middle is shown as one replacement, which is still a correct diff.
const maxLCSCells = 4 << 20

// editScript computes a line edit script from a to b: the common prefix and
// suffix are trimmed (an edit usually touches a few lines of a large
// object), then the middle is aligned by longest common subsequence.
func editScript(a, b []string) []editOp {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []editOp
	for _, l := range a[:pre] {
		ops = append(ops, editOp{' ', l})
	}
	ops = append(ops, lcsScript(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, editOp{' ', l})
	}
	return ops
}

func lcsScript(a, b []string) []editOp {
	n, m := len(a), len(b)
	var ops []editOp
	if n*m > maxLCSCells {
		for _, l := range a {
			ops = append(ops, editOp{'-', l})
		}
		for _, l := range b {
			ops = append(ops, editOp{'+', l})
		}
		return ops
	}
	// dp[i][j] is the LCS length of a[i:] and b[j:].
	dp := make([][]int, n+1)
	for i := range dp {
		dp[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, editOp{' ', a[i]})
			i, j = i+1, j+1
		case dp[i+1][j] >= dp[i][j+1]:
			ops = append(ops, editOp{'-', a[i]})
			i++
		default:
			ops = append(ops, editOp{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, editOp{'-', a[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, editOp{'+', b[j]})
	}
	return ops
}
