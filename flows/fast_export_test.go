package flows

// Hooks for the fast decoder's differential tests, which live in package flows_test so
// that they can draw lines from the workload generator (simulate/bench).
var (
	ParseFast = parseFast
	ParseSlow = parseSlow
	JSONSpace = jsonSpace
)
