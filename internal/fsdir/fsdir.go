// Package fsdir hands out a folder's listing in pages, as
// fs.ReadDirFile.ReadDir says, for the fs.FS implementations that list a
// folder in one call (the worker's remote snapshot, a working tree).
package fsdir

import (
	"io"
	"io/fs"
)

// Pages lists a folder once, on the first ReadDir, with List.
type Pages struct {
	List    func() ([]fs.DirEntry, error)
	entries []fs.DirEntry
	read    bool
}

// ReadDir returns at most n entries per call and io.EOF at the end when
// n > 0; the rest, and no error, when n <= 0.
func (p *Pages) ReadDir(n int) ([]fs.DirEntry, error) {
	if !p.read {
		entries, err := p.List()
		if err != nil {
			return nil, err
		}
		p.entries, p.read = entries, true
	}
	if n <= 0 {
		out := p.entries
		p.entries = nil
		return out, nil
	}
	if len(p.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(p.entries))
	out := p.entries[:n]
	p.entries = p.entries[n:]
	return out, nil
}
