package heappeak

import "testing"

var keep [][]byte

func TestDuringSeesAnAllocation(t *testing.T) {
	const size = 64 << 20
	peak := During(func() {
		keep = append(keep, make([]byte, size))
		for i := range keep[0] {
			keep[0][i] = 1
		}
	})
	keep = nil
	if peak < size {
		t.Fatalf("peak %d bytes, want at least the %d allocated", peak, size)
	}
}

func TestDuringOfNothingIsSmall(t *testing.T) {
	if peak := During(func() {}); peak > 8<<20 {
		t.Fatalf("peak %d bytes while doing nothing", peak)
	}
}
