package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// TestGRPCIngestMatchesFileReplay sends generated flows through the Hubble test server
// and the real source into a Simulator, and requires every flow to arrive and the report
// to be the one a file replay of the same lines gives.
func TestGRPCIngestMatchesFileReplay(t *testing.T) {
	const n = 20_000
	w := bench.Generate(bench.ProfileS, 3)
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	opts := simulate.DefaultOptions()
	opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
	report := func(run func(*simulate.Simulator)) string {
		t.Helper()
		sim, err := simulate.New(snap, opts)
		if err != nil {
			t.Fatal(err)
		}
		run(sim)
		b, err := json.MarshalIndent(sim.Report(), "", " ")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	msgs, err := bench.EncodeFlows(w, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("EncodeFlows returned %d messages, want %d", len(msgs), n)
	}
	got := report(func(sim *simulate.Simulator) {
		res, err := bench.MeasureGRPC(context.Background(), sim, msgs, clock.RealClock{}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if res.Problem != "" || res.Received != n {
			t.Fatalf("received %d of %d: %s", res.Received, n, res.Problem)
		}
	})
	want := report(func(sim *simulate.Simulator) {
		var buf bytes.Buffer
		if err := w.WriteFlows(&buf, n); err != nil {
			t.Fatal(err)
		}
		src := flows.NewReader("flows", &buf)
		defer src.Close()
		if _, err := bench.MeasureReplay(context.Background(), sim, src, clock.RealClock{}, 0); err != nil {
			t.Fatal(err)
		}
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-file replay +gRPC):\n%s", diff)
	}
}
