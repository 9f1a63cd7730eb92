//go:build race

package simulate_test

// updateRace shortens the randomized update tests, which the race detector slows tenfold.
const updateRace = true
