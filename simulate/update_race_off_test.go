//go:build !race

package simulate_test

const updateRace = false
