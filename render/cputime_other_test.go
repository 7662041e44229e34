//go:build !unix

package render

import "time"

// processCPU is not measured off unix; the benchmarks report zero.
func processCPU() time.Duration { return 0 }
