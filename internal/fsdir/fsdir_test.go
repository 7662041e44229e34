package fsdir

import (
	"errors"
	"io"
	"io/fs"
	"testing"
	"testing/fstest"
)

func listing(t *testing.T) []fs.DirEntry {
	t.Helper()
	entries, err := fs.ReadDir(fstest.MapFS{"a": {}, "b": {}, "c": {}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestPages(t *testing.T) {
	calls := 0
	all := listing(t)
	p := &Pages{List: func() ([]fs.DirEntry, error) { calls++; return all, nil }}
	first, err := p.ReadDir(2)
	if err != nil || len(first) != 2 || first[0].Name() != "a" {
		t.Fatalf("first page %v %v", first, err)
	}
	rest, err := p.ReadDir(2)
	if err != nil || len(rest) != 1 || rest[0].Name() != "c" {
		t.Fatalf("second page %v %v", rest, err)
	}
	if end, err := p.ReadDir(2); len(end) != 0 || err != io.EOF {
		t.Fatalf("after the end %v %v, want io.EOF", end, err)
	}
	if none, err := p.ReadDir(-1); len(none) != 0 || err != nil {
		t.Fatalf("n <= 0 after the end %v %v, want nothing and no error", none, err)
	}
	if calls != 1 {
		t.Errorf("listed %d times, want once", calls)
	}
}

func TestPagesAll(t *testing.T) {
	p := &Pages{List: func() ([]fs.DirEntry, error) { return listing(t), nil }}
	if all, err := p.ReadDir(0); err != nil || len(all) != 3 {
		t.Fatalf("n = 0: %v %v", all, err)
	}
}

func TestPagesError(t *testing.T) {
	boom := errors.New("boom")
	p := &Pages{List: func() ([]fs.DirEntry, error) { return nil, boom }}
	if _, err := p.ReadDir(1); !errors.Is(err, boom) {
		t.Fatalf("err %v, want the listing's", err)
	}
}
