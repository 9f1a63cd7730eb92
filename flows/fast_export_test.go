package flows

// Hooks for the fast decoder's differential tests, which live in package flows_test so
// that they can draw lines from the workload generator (simulate/bench).
var (
	ParseFast = parseFast
	ParseSlow = parseSlow
	JSONSpace = jsonSpace
)

// NewFastDecoder returns the fast path bound to one decoder of its own, so that a test
// controls what its tables remember from earlier lines.
func NewFastDecoder() func(line []byte) (Event, bool) {
	d := &fastDecoder{}
	return func(line []byte) (Event, bool) {
		ev, ok := d.parse(line)
		d.lineState = lineState{}
		return ev, ok
	}
}
