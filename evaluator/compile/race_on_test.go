//go:build race

package compile

// raceEnabled shortens the randomized tests, which the race detector slows tenfold.
const raceEnabled = true
