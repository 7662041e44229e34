package realpods

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	data := []byte(`# source: somewhere
#   and a second line
# expected-cause: crashloop
# also-acceptable: configerror (a bad command)
# expected-mention: downloader; executable file not found
apiVersion: v1
kind: Pod
metadata: {name: logging-agent, namespace: default}
spec: {containers: [{name: exporter, image: nginx}]}
status: {phase: Pending}
---
apiVersion: v1
kind: EventList
items:
- type: Warning
  reason: BackOff
  message: Back-off restarting failed container
  involvedObject: {kind: Pod, namespace: default, name: logging-agent}
`)
	c, err := Parse("12-x.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cause != "crashloop" || !slices.Equal(c.AlsoAcceptable, []string{"configerror"}) ||
		!slices.Equal(c.Mentions, []string{"downloader", "executable file not found"}) {
		t.Errorf("header read as cause %q, also %q, mentions %q", c.Cause, c.AlsoAcceptable, c.Mentions)
	}
	if c.Header["source"] != "somewhere and a second line" {
		t.Errorf("source %q: want the continuation joined", c.Header["source"])
	}
	if c.Pod.Name != "logging-agent" || c.RawPod["kind"] != "Pod" || len(c.Events) != 1 || c.Events[0].Reason != "BackOff" {
		t.Errorf("pod %q (raw kind %v), events %+v", c.Pod.Name, c.RawPod["kind"], c.Events)
	}
	if !c.Accepts("configerror") || !c.Accepts("crashloop") || c.Accepts("") {
		t.Error("Accepts: want the cause and the acceptable one only")
	}

	if _, err := Parse("x.yaml", []byte("# expected-cause: none\napiVersion: v1\nkind: Pod\nspec: {bogus: 1}\n")); err == nil {
		t.Error("a pod with an unknown field parsed")
	}
	if _, err := Parse("x.yaml", []byte("apiVersion: v1\nkind: Pod\n")); err == nil {
		t.Error("a file without expected-cause parsed")
	}
}

// TestCorpus reads the shared corpus: every file parses, and the README's
// list of files copied as YAML is read.
func TestCorpus(t *testing.T) {
	cases := Open(t)
	counts := map[Copied]int{}
	for _, c := range cases {
		counts[c.Copied]++
		if c.Cause != "none" && len(c.Mentions) == 0 {
			t.Errorf("%s: cause %s without mentions", c.File, c.Cause)
		}
	}
	if counts[CopiedWhole] == 0 || counts[CopiedStatus] == 0 {
		t.Errorf("copied as YAML: %d whole pods, %d status fragments; want some of each", counts[CopiedWhole], counts[CopiedStatus])
	}
	t.Logf("%d files: %d whole pods and %d status fragments copied as YAML", len(cases), counts[CopiedWhole], counts[CopiedStatus])
}
