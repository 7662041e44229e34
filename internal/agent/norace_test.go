//go:build !race

package agent

// raceEnabled reports a -race build, whose memory figures include the
// detector's.
const raceEnabled = false
