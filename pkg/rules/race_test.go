//go:build race

package rules_test

// raceEnabled: the race detector slows the pure simulations about
// twentyfold; they start no goroutines, so a few runs exercise them enough.
const raceEnabled = true
