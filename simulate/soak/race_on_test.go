//go:build race

package soak

// raceEnabled shrinks the memory test: the race detector slows the store down ~10×.
const raceEnabled = true
