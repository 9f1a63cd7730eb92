package simulate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// TestFastPathJudgesAsEvaluate replays generated traffic twice: once as a replay reads it
// (one decoder, so names arrive as the same interned strings and hit the resolver's memo,
// both engines judge by Ref, explanations come from the verdict memos), and once with
// every line parsed on its own and judged through Evaluate. Every judgement and the
// report must be the same.
func TestFastPathJudgesAsEvaluate(t *testing.T) {
	for name, w := range map[string]*bench.World{"tiny": bench.Generate(tinyWorld, 3), "S": bench.Generate(bench.ProfileS, 1)} {
		t.Run(name, func(t *testing.T) {
			snap, err := w.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			n := 20_000
			if testing.Short() {
				n = 3_000
			}
			for _, egress := range []bool{false, true} {
				opts := simulate.DefaultOptions()
				opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
				opts.Compile.Egress = egress
				fast, err := simulate.New(snap, opts)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := simulate.New(snap, opts)
				if err != nil {
					t.Fatal(err)
				}
				simulate.JudgeByEvaluate(ref)
				var buf bytes.Buffer
				if err := w.WriteFlows(&buf, n); err != nil {
					t.Fatal(err)
				}
				lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
				// Twice over the same lines: the second pass runs on warm memos.
				evs := replayEvents(t, buf.Bytes())
				if len(evs) != len(lines) {
					t.Fatalf("%d events from %d lines", len(evs), len(lines))
				}
				evs = append(evs, evs...)
				for i, ev := range evs {
					got := fast.Observe(ev)
					own, ok := flows.ParseLine(lines[i%len(lines)])
					if !ok {
						t.Fatalf("line %d does not parse", i+1)
					}
					own.Line = ev.Line
					want := ref.Observe(own)
					if diff := cmp.Diff(judgementView(want), judgementView(got)); diff != "" {
						t.Fatalf("egress %v, event %d (-evaluate +fast):\n%s", egress, i, diff)
					}
				}
				if diff := cmp.Diff(reportJSON(t, ref.Report()), reportJSON(t, fast.Report())); diff != "" {
					t.Errorf("egress %v: report (-evaluate +fast):\n%s", egress, diff)
				}
			}
		})
	}
}

// judgementView is what a judgement says, without the flow pointer.
type judgement struct {
	Line              int
	Outcome, Reason   string
	Conn              string
	Current, Enforced evaluator.Verdict
	WouldDrop         bool
}

func judgementView(j simulate.Judgement) judgement {
	return judgement{Line: j.Line, Outcome: string(j.Outcome), Reason: j.Reason, Conn: j.Conn.String() + "/" + j.Conn.Src.Kind.String() + "/" + j.Conn.Dst.Kind.String(),
		Current: normalVerdict(j.Current), Enforced: normalVerdict(j.Enforced), WouldDrop: j.WouldDrop}
}

// replayEvents reads every event of data through one FileSource, as a replay does.
func replayEvents(t *testing.T, data []byte) []flows.Event {
	t.Helper()
	src := flows.NewReader("replay", bytes.NewReader(data))
	defer src.Close()
	var out []flows.Event
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

func reportJSON(t *testing.T, r *simulate.Report) string {
	t.Helper()
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
