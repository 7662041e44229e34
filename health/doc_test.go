package health

import (
	"os"
	"regexp"
	"testing"

	"github.com/baton-gitops/baton/internal/realpods"
)

// TestDiagnosisDoc keeps docs/diagnosis.md's comparison table honest: for
// each row, Baton's column (its first `quoted` text) is what Diagnose
// prints for the row's evidence. A row names a corpus file by number (the
// pod as a Deployment's), a diagnose fixture, or a status fixture (whose
// Compute message is quoted, with load balancers not awaited).
func TestDiagnosisDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/diagnosis.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| ([^|]+) \\| ([0-9a-z-]+) \\| [^`|]*`([^`]+)`")
	rows := row.FindAllStringSubmatch(string(doc), -1)
	if len(rows) < 10 {
		t.Fatalf("docs/diagnosis.md: %d rows in the comparison table, want the table", len(rows))
	}
	var corpus map[string]realpods.Case
	for _, r := range rows {
		what, ref, want := r[1], r[2], r[3]
		t.Run(what, func(t *testing.T) {
			var got string
			switch {
			case regexp.MustCompile(`^\d\d$`).MatchString(ref):
				if corpus == nil {
					corpus = map[string]realpods.Case{}
					for _, c := range realpods.Open(t) {
						corpus[c.File[:2]] = c
					}
				}
				c, ok := corpus[ref]
				if !ok {
					t.Fatalf("no corpus file %s", ref)
				}
				obj, ev := workloadOf(t, "Deployment", c)
				got = Diagnose(obj, Compute(obj), ev, DiagnoseOptions{}).Message
			case fileExists("testdata/diagnose/" + ref + ".yaml"):
				obj, ev := loadCase(t, "diagnose/"+ref)
				got = Diagnose(obj, Compute(obj), ev, DiagnoseOptions{}).Message
			case fileExists("testdata/status/" + ref + ".yaml"):
				got = ComputeWith(loadObject(t, "status/"+ref), StatusOptions{SkipLoadBalancer: true}).Message
			default:
				t.Fatalf("row %q names %q: no corpus file or fixture", what, ref)
			}
			if got != want {
				t.Errorf("docs/diagnosis.md, row %q says Baton prints\n  %s\nbut it prints\n  %s", what, want, got)
			}
		})
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
