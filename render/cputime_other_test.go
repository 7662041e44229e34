//go:build !unix

package render

import (
	"os"
	"time"
)

// processCPU is not measured off unix; the benchmarks report zero.
func processCPU() time.Duration { return 0 }

// peakRSS is not measured off unix; the benchmarks report zero.
func peakRSS(*os.ProcessState) int64 { return 0 }
