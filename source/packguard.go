package source

import (
	"bufio"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// DefaultMaxBlobSize bounds one object of a fetched pack when
// Options.MaxBlobSize is zero. go-git holds a fetched object in memory,
// about five times over, while it indexes the pack (a 200 MiB blob, which
// compresses to almost nothing, cost 1 GiB of heap), so a commit adding a
// huge file could otherwise exhaust the agent before any limit of the
// render is reached; at the default, a fetch costs at most about 100 MiB.
const DefaultMaxBlobSize = 16 << 20

// ErrBlobTooLarge: a fetched pack holds an object larger than
// Options.MaxBlobSize; nothing of the fetch was stored.
var ErrBlobTooLarge = errors.New("object too large")

// BlobTooLargeError names the object a pack was refused for.
type BlobTooLargeError struct {
	// Type is "blob", "tree", "commit" or "tag".
	Type string
	// Hash is the object's id, when it was cheap enough to compute (the
	// object is hashed while it streams by, only up to 8 × Max).
	Hash string
	// Size is its size once inflated; Max the limit.
	Size, Max int64
}

// Error names the object and the limit, and how to find its path.
func (e *BlobTooLargeError) Error() string {
	what := e.Type
	if e.Hash != "" {
		what += " " + e.Hash
	}
	msg := fmt.Sprintf("the fetched pack holds a %s of %.1f MiB: over the limit of %.1f MiB on one object (limits.maxBlobSize); nothing was stored",
		what, float64(e.Size)/(1<<20), float64(e.Max)/(1<<20))
	if e.Hash != "" {
		msg += " (its path: git log --all --find-object=" + e.Hash + " --name-only)"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrBlobTooLarge) work.
func (e *BlobTooLargeError) Unwrap() error { return ErrBlobTooLarge }

// Pack object types (git's pack format).
const (
	packCommit   = 1
	packTree     = 2
	packBlob     = 3
	packTag      = 4
	packOfsDelta = 6
	packRefDelta = 7
)

var packTypeNames = map[byte]string{packCommit: "commit", packTree: "tree", packBlob: "blob", packTag: "tag"}

// checkPack reads a downloaded pack and refuses it when an object, once
// inflated, would be larger than max — before go-git parses it. It reads
// each object's declared size from its header (a delta's result size from
// the start of the delta), inflating to find where each object ends, in
// constant memory.
func checkPack(r io.Reader, max int64) error {
	if max < 0 {
		return nil
	}
	// bufio.Reader is an io.ByteReader: the inflater then reads exactly its
	// stream and no further, so the next object header follows it.
	br := bufio.NewReaderSize(r, 64<<10)
	var head [12]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty pack: nothing to store
		}
		return fmt.Errorf("check pack: %w", err)
	}
	if string(head[:4]) != "PACK" {
		return errors.New("check pack: not a pack")
	}
	count := binary.BigEndian.Uint32(head[8:])
	for i := uint32(0); i < count; i++ {
		if err := checkPackObject(br, max); err != nil {
			return err
		}
	}
	return nil
}

func checkPackObject(br *bufio.Reader, max int64) error {
	typ, size, err := readObjectHeader(br)
	if err != nil {
		return fmt.Errorf("check pack: %w", err)
	}
	switch typ {
	case packOfsDelta:
		if _, err := readOffset(br); err != nil {
			return fmt.Errorf("check pack: %w", err)
		}
	case packRefDelta:
		if _, err := io.CopyN(io.Discard, br, 20); err != nil {
			return fmt.Errorf("check pack: %w", err)
		}
	}
	zr, err := zlib.NewReader(br)
	if err != nil {
		return fmt.Errorf("check pack: %w", err)
	}
	defer zr.Close()
	var body io.Reader = zr
	name := packTypeNames[typ]
	if typ == packOfsDelta || typ == packRefDelta {
		// A delta starts with its base's size and its result's size.
		zb := bufio.NewReader(io.LimitReader(zr, 32))
		if _, err := binaryUvarint(zb); err != nil {
			return fmt.Errorf("check pack: delta: %w", err)
		}
		if size, err = binaryUvarint(zb); err != nil {
			return fmt.Errorf("check pack: delta: %w", err)
		}
		name = "delta-encoded object"
		body = io.MultiReader(zb, zr)
	}
	if size > max {
		e := &BlobTooLargeError{Type: name, Size: size, Max: max}
		if name != "delta-encoded object" && size <= 8*max {
			h := sha1.New()
			fmt.Fprintf(h, "%s %d\x00", name, size)
			if _, err := io.Copy(h, body); err == nil {
				e.Hash = plumbing.Hash(h.Sum(nil)).String()
			}
		}
		return e
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("check pack: %w", err)
	}
	return nil
}

// readObjectHeader reads a pack object's type and inflated size: 3 bits
// of type and 4 of size in the first byte, then 7 bits of size a byte.
func readObjectHeader(br io.ByteReader) (byte, int64, error) {
	b, err := br.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	typ := (b >> 4) & 7
	size := int64(b & 15)
	for shift := 4; b&0x80 != 0; shift += 7 {
		if shift > 60 {
			return 0, 0, errors.New("object size overflows")
		}
		if b, err = br.ReadByte(); err != nil {
			return 0, 0, err
		}
		size |= int64(b&0x7f) << shift
	}
	return typ, size, nil
}

// readOffset reads an OFS_DELTA's base offset (git's offset encoding).
func readOffset(br io.ByteReader) (int64, error) {
	b, err := br.ReadByte()
	if err != nil {
		return 0, err
	}
	off := int64(b & 0x7f)
	for b&0x80 != 0 {
		if off > 1<<55 {
			return 0, errors.New("delta offset overflows")
		}
		if b, err = br.ReadByte(); err != nil {
			return 0, err
		}
		off = ((off + 1) << 7) | int64(b&0x7f)
	}
	return off, nil
}

// binaryUvarint reads a delta size: little-endian base-128.
func binaryUvarint(br io.ByteReader) (int64, error) {
	var v int64
	for shift := 0; ; shift += 7 {
		if shift > 60 {
			return 0, errors.New("delta size overflows " + strconv.Itoa(shift))
		}
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= int64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, nil
		}
	}
}

// checkSizes refuses objects larger than max among those a local fetch
// would copy (their sizes come from the source store's headers).
func checkSizes(src storer.EncodedObjectStorer, hashes []plumbing.Hash, max int64) error {
	if max < 0 {
		return nil
	}
	for _, h := range hashes {
		size, err := src.EncodedObjectSize(h)
		if err != nil {
			return err
		}
		if size > max {
			return &BlobTooLargeError{Type: "object", Hash: h.String(), Size: size, Max: max}
		}
	}
	return nil
}
