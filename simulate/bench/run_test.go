package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/clock"
	testclock "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/simulate/bench"
)

// smallRun is a complete run on profile S with every count cut down, for tests.
func smallRun() bench.RunOptions {
	o := bench.DefaultRunOptions(bench.ProfileS)
	o.Flows, o.HotPathOps, o.OracleConns = 2_000, 20_000, 200
	o.PodEvents, o.PolicyEvents, o.IntentEvents = 6, 6, 1
	o.MemoryProfile, o.MemoryEdges, o.MemoryHours = bench.ProfileS, 2_000, 2
	o.Clock = clock.RealClock{}
	return o
}

// TestRun runs every measurement on profile S: the figures are all there, the Oracle and
// the Engine agree on every connection the replay judged, and the results render.
func TestRun(t *testing.T) {
	o := smallRun()
	o.TempDir = t.TempDir()
	o.Scaling, o.ScalingFlows = true, 1_000
	o.ScalingProfiles = []bench.Profile{
		{Name: "T1", Namespaces: 3, Workloads: 6, Pods: 12, IntentTargets: 6, Policies: 4},
		{Name: "T2", Namespaces: 4, Workloads: 10, Pods: 30, IntentTargets: 12, Policies: 10},
		{Name: "T3", Namespaces: 5, Workloads: 16, Pods: 60, IntentTargets: 20, Policies: 20},
	}
	var log bytes.Buffer
	o.Log = &log
	res, err := bench.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]bench.Figure{}
	for _, f := range res.Figures {
		names = append(names, f.Name)
		byName[f.Name] = f
	}
	want := []string{
		"generate world and build snapshot",
		"full compile from a loaded snapshot, 1 core",
		"end-to-end file replay (parse, resolve, evaluate, aggregate), 1 core",
		"verdict hot path (resolved connection, warm cache), 1 core",
		"optimized / oracle on the same connections",
		"incremental update: pod event (add a rollout replica, delete a pod)",
		"incremental update: policy event (one policy changed)",
		"incremental update: intent event (compile + engine)",
		"peak RSS (VmHWM)",
		"per-flow cost, profile T1 to T3",
		"per-flow cost, 1 to 100 existing policies",
		"gRPC ingest from the observer test server",
		"re-evaluate 1 M stored edges; memory per stored edge",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
	if f := byName["optimized / oracle on the same connections"]; f.Status != bench.Met {
		t.Errorf("the Engine disagrees with the Oracle: %s", f.Detail)
	}
	if f := byName["end-to-end file replay (parse, resolve, evaluate, aggregate), 1 core"]; f.Number <= 0 || !strings.Contains(f.Detail, "2000 lines") {
		t.Errorf("replay figure %+v: want 2000 lines at a positive rate", f)
	}
	for _, name := range []string{"per-flow cost, profile T1 to T3", "per-flow cost, 1 to 100 existing policies"} {
		if f := byName[name]; f.Number <= 0 || f.Status == bench.NotMeasured || !strings.Contains(f.Detail, "1000 lines") {
			t.Errorf("%s: %+v, want a positive ratio over 1000 lines", name, f)
		}
	}
	if f := byName["per-flow cost, 1 to 100 existing policies"]; !strings.Contains(f.Detail, "with 10 (profile T2)") {
		t.Errorf("the policy row does not vary the middle profile: %s", f.Detail)
	}
	if f := byName["verdict hot path (resolved connection, warm cache), 1 core"]; f.Allocs >= 0.05 {
		t.Errorf("hot path allocates %.3f times per verdict", f.Allocs)
	}
	if entries, _ := os.ReadDir(o.TempDir); len(entries) != 0 {
		t.Errorf("the run left %d files in its temporary directory", len(entries))
	}
	if !strings.Contains(log.String(), "replaying") {
		t.Errorf("no progress logged: %q", log.String())
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Results
	if err := json.Unmarshal(b, &back); err != nil || len(back.Figures) != len(res.Figures) {
		t.Errorf("results do not round-trip through JSON: %v", err)
	}
}

// TestRunReplaysAFile: --flows-file replays an existing file, stopping after Flows lines.
func TestRunReplaysAFile(t *testing.T) {
	dir := t.TempDir()
	w := bench.Generate(bench.ProfileS, 1)
	if err := w.WriteDir(dir, 1_000); err != nil {
		t.Fatal(err)
	}
	o := smallRun()
	o.FlowsFile = filepath.Join(dir, bench.FlowsFile)
	res, err := bench.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Figures {
		if strings.HasPrefix(f.Name, "end-to-end") && !strings.Contains(f.Detail, "1000 lines") {
			t.Errorf("replayed %q, want the file's 1000 lines", f.Detail)
		}
	}
}

func TestRunOptionsValidate(t *testing.T) {
	o := smallRun()
	o.Flows, o.PodEvents, o.Clock = 0, -1, nil
	err := o.Validate()
	for _, want := range []string{"flows 0", "pod events -1", "clock"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
	if _, err := bench.Run(context.Background(), o); err == nil {
		t.Error("Run accepted invalid options")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bench.Run(ctx, smallRun()); err == nil {
		t.Error("Run went on after its context was canceled")
	}
}

// TestResultsTable pins the table layout against a golden file (-update rewrites it).
func TestResultsTable(t *testing.T) {
	clk := testclock.NewFakePassiveClock(time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC))
	res := &bench.Results{
		Profile: "M", Seed: 1, Flows: 1_000_000, Date: clk.Now(),
		Machine: bench.Machine{CPUs: 2, Model: "AMD EPYC", GoVersion: "go1.26.8", LoadStart: "1.50", LoadEnd: "1.75"},
		Figures: []bench.Figure{
			{Name: "verdict hot path", Value: "12.00 M verdicts/s, 0.000 allocs", Target: "≥ 10 M/s, 0 allocs", Status: bench.Met, Detail: "10000000 verdicts"},
			{Name: "end-to-end file replay", Value: "420 k flows/s", Target: "≥ 500 k flows/s", Status: bench.Missed},
			{Name: "peak RSS (VmHWM)", Value: "512 MiB", Status: bench.Info},
			{Name: "gRPC ingest", Target: "≥ 300 k flows/s on 2 cores", Status: bench.NotMeasured, Detail: "flows/hubble benchmarks"},
		},
	}
	var b bytes.Buffer
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("table (-golden +got):\n%s", diff)
	}
	if missed := res.Missed(); len(missed) != 1 || missed[0].Name != "end-to-end file replay" {
		t.Errorf("Missed() = %v, want the replay alone", missed)
	}
}
