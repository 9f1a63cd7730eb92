//go:build race

package flows_test

// raceEnabled: the race detector slows everything several times and makes sync.Pool drop
// items, so heavy tests shrink and allocation counts are not checked.
const raceEnabled = true
