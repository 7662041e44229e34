package config_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEExampleIsCurrent keeps the README's configuration example equal
// to the example the tests load, so the documented file always parses.
func TestREADMEExampleIsCurrent(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("testdata/baton.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := "```yaml\n" + strings.TrimRight(string(example), "\n") + "\n```"
	if !strings.Contains(string(readme), want) {
		t.Fatal("README.md's configuration example differs from internal/config/testdata/baton.yaml: copy the file into the README's yaml block")
	}
}
