package flows_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// TestFileSourceAgreesWithParseLine reads megabytes of generated traffic through every
// kind of FileSource and holds each event to ParseLine of its line. The events are
// compared only after the whole stream was read, over many refills of the source's read
// buffer, in which lines are parsed in place: anything an event kept of that buffer
// would have been overwritten by then.
func TestFileSourceAgreesWithParseLine(t *testing.T) {
	n := 4000
	if raceEnabled {
		n /= 4
	}
	lines := profileLines(t, bench.ProfileM, n)
	// A blank line and a malformed one, so that line numbers and the slow path are
	// covered too.
	lines = append(lines[:n/2:n/2], append([][]byte{{}, []byte(`{"flow":`)}, lines[n/2:]...)...)
	data := bytes.Join(lines, []byte("\n"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	var want []flows.Event
	for i, line := range lines {
		ev, ok := flows.ParseLine(line)
		if !ok {
			continue
		}
		ev.Line = i + 1
		want = append(want, ev)
	}
	cases := map[string]io.Reader{
		"memory, inline":     bytes.NewReader(data),
		"gzip, inline":       bytes.NewReader(gz.Bytes()),
		"a reader goroutine": struct{ io.Reader }{bytes.NewReader(data)},
		"gzip, a goroutine":  struct{ io.Reader }{bytes.NewReader(gz.Bytes())},
		"one byte at a time": struct{ io.Reader }{&oneByteReader{data}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			src := flows.NewReader(name, r)
			defer src.Close()
			var got []flows.Event
			for {
				ev, err := src.Next(t.Context())
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Next after %d events: %v", len(got), err)
				}
				got = append(got, ev)
			}
			if diff := cmp.Diff(want, got, eventOpts...); diff != "" {
				t.Errorf("events (-ParseLine +FileSource):\n%s", diff)
			}
		})
	}
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}
