package flows_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/flows"
)

// owned copies what Next's event may share with the source under ReuseFlows (the Flow,
// its IsReply and its UUID), so that it can be compared after later calls to Next.
func owned(ev flows.Event) flows.Event {
	if ev.Flow == nil {
		return ev
	}
	f := *ev.Flow
	f.UUID = strings.Clone(f.UUID)
	if f.IsReply != nil {
		r := *f.IsReply
		f.IsReply = &r
	}
	ev.Flow = &f
	return ev
}

// drainOwned reads src to the end, copying every event before the next Next.
func drainOwned(t *testing.T, src *flows.FileSource) []flows.Event {
	t.Helper()
	defer src.Close()
	var out []flows.Event
	for {
		ev, err := src.Next(t.Context())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d events: %v", len(out), err)
		}
		out = append(out, owned(ev))
	}
}

// reuseInput mixes generated flows (fast path, most with a UUID and is_reply) with the
// fixtures: lines only protojson reads, malformed lines, lost events and node status.
func reuseInput(t *testing.T) []byte {
	t.Helper()
	lines := generatedLines(t, 300)
	lines = append(lines, fixtureLines(t, "capture.good.jsonl")...)
	lines = append(lines, fixtureLines(t, "capture.bad.jsonl")...)
	lines = append(lines, generatedLines(t, 50)...)
	return bytes.Join(lines, []byte("\n"))
}

// readModes open a FileSource read on Next's goroutine and one read by a goroutine.
var reuseModes = map[string]func(data []byte) *flows.FileSource{
	"inline": func(data []byte) *flows.FileSource { return flows.NewReader("reuse", bytes.NewReader(data)) },
	"goroutine": func(data []byte) *flows.FileSource {
		return flows.NewReader("reuse", struct{ io.Reader }{bytes.NewReader(data)})
	},
}

// TestFileSourceReuseFlowsSameEvents: each event, read before the next Next, is the same
// with and without ReuseFlows, whichever way the source reads.
func TestFileSourceReuseFlowsSameEvents(t *testing.T) {
	data := reuseInput(t)
	for name, open := range reuseModes {
		t.Run(name, func(t *testing.T) {
			want := drainOwned(t, open(data))
			src := open(data)
			src.ReuseFlows()
			got := drainOwned(t, src)
			if diff := cmp.Diff(want, got, eventOpts...); diff != "" {
				t.Errorf("events with ReuseFlows (-without +with):\n%s", diff)
			}
		})
	}
}

// TestFileSourceReuseFlowsOverwrites: under ReuseFlows an inline source hands out one
// Flow, which the next Next overwrites (UUID and IsReply included); a goroutine-read
// source ignores the option and the first Flow stays as it was.
func TestFileSourceReuseFlowsOverwrites(t *testing.T) {
	a := strings.Replace(base, `"is_reply":false`, `"is_reply":true`, 1)
	b := strings.Replace(base, "6513270e-269e-4d37-b2a7-4de452e6b438", "00000000-0000-4000-8000-000000000001", 1)
	b = strings.Replace(b, "51234", "40000", 1)
	data := []byte(a + "\n" + b + "\n")
	cases := map[string]struct {
		reuse     bool
		wantReuse bool
	}{
		"inline":               {reuse: true, wantReuse: true},
		"inline without reuse": {reuse: false},
		"goroutine":            {reuse: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			open := reuseModes["inline"]
			if strings.HasPrefix(name, "goroutine") {
				open = reuseModes["goroutine"]
			}
			src := open(data)
			defer src.Close()
			if tc.reuse {
				src.ReuseFlows()
			}
			first, err := src.Next(t.Context())
			if err != nil || first.Kind != flows.KindFlow {
				t.Fatalf("first Next = %v, %v; want a flow", first.Kind, err)
			}
			before := owned(first)
			second, err := src.Next(t.Context())
			if err != nil || second.Kind != flows.KindFlow {
				t.Fatalf("second Next = %v, %v; want a flow", second.Kind, err)
			}
			if got := first.Flow == second.Flow; got != tc.wantReuse {
				t.Errorf("second Next returned the first Flow = %v, want %v", got, tc.wantReuse)
			}
			want := before
			if tc.wantReuse {
				want = owned(second)
				if want.Flow.UUID == before.Flow.UUID || *want.Flow.IsReply == *before.Flow.IsReply || want.Flow.SourcePort == before.Flow.SourcePort {
					t.Fatalf("test lines do not differ in UUID, is_reply and port: %+v", want.Flow)
				}
			}
			// The first event's Flow as the consumer sees it now.
			if diff := cmp.Diff(want.Flow, owned(first).Flow, eventOpts...); diff != "" {
				t.Errorf("first Flow after the second Next (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFileSourceReuseFlowsAllocations: replaying a file with ReuseFlows allocates nothing
// per line once the decoder knows the traffic; without it, the Flow per line.
func TestFileSourceReuseFlowsAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates and empties sync.Pool at random")
	}
	lines := generatedLines(t, 2000)
	data := bytes.Join(lines, []byte("\n"))
	for _, reuse := range []bool{false, true} {
		perRun := testing.AllocsPerRun(5, func() {
			src := flows.NewReader("reuse", bytes.NewReader(data))
			if reuse {
				src.ReuseFlows()
			}
			for {
				if _, err := src.Next(t.Context()); err != nil {
					break
				}
			}
			src.Close()
		})
		perLine := perRun / float64(len(lines))
		if reuse && perLine > 0.05 {
			t.Errorf("with ReuseFlows: %.3f allocations per line, want about 0", perLine)
		}
		if !reuse && perLine < 0.9 {
			t.Errorf("without ReuseFlows: %.3f allocations per line, want about 1 (is the test measuring?)", perLine)
		}
	}
}
