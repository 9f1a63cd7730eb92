package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// digest hashes a written world: every file under dir, by relative path.
func digest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sum := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGenerateIsDeterministic: a profile and a seed give the same bytes, on every run and
// on every machine (the golden file pins them, so a change to the generator is a
// deliberate one: rerun with -update); another seed gives other bytes.
func TestGenerateIsDeterministic(t *testing.T) {
	const lines = 3000
	write := func(seed uint64) map[string]string {
		dir := t.TempDir()
		if err := bench.Generate(bench.ProfileS, seed).WriteDir(dir, lines); err != nil {
			t.Fatal(err)
		}
		return digest(t, dir)
	}
	first, again := write(1), write(1)
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("the same seed wrote different files (-first +second):\n%s", diff)
	}
	var one, two bytes.Buffer
	if err := bench.Generate(bench.ProfileS, 1).WriteFlows(&one, 100); err != nil {
		t.Fatal(err)
	}
	if err := bench.Generate(bench.ProfileS, 2).WriteFlows(&two, 100); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Error("seeds 1 and 2 wrote the same flows")
	}

	var b strings.Builder
	names := make([]string, 0, len(first))
	for name := range first {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "%s  %s\n", first[name], name)
	}
	golden := filepath.Join("testdata", "profile-S-seed-1.sha256")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("profile S seed 1 changed (-golden +now); if deliberate, rerun with -update:\n%s", diff)
	}
}

// TestFlowsArePrefixStable: the first N lines of a longer run are the N lines of a
// shorter one, so --flows picks a prefix and figures taken on different sizes compare.
func TestFlowsArePrefixStable(t *testing.T) {
	w := bench.Generate(bench.ProfileS, 5)
	var short, long bytes.Buffer
	if err := w.WriteFlows(&short, 500); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFlows(&long, 2000); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(long.Bytes(), short.Bytes()) {
		t.Error("the first 500 of 2000 lines differ from a 500-line run")
	}
}

// TestWrittenManifestsLoad: loading the written manifests gives the snapshot Snapshot
// builds in memory (which the Go benchmarks use), apart from where objects were read.
func TestWrittenManifestsLoad(t *testing.T) {
	w := bench.Generate(bench.ProfileS, 1)
	dir := t.TempDir()
	if err := w.WriteManifests(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := cluster.Load(dir)
	if err != nil {
		t.Fatalf("loading the written manifests: %v", err)
	}
	built, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	opts := []cmp.Option{
		cmpopts.IgnoreFields(cluster.Pod{}, "Origin"),
		cmpopts.IgnoreFields(cluster.Workload{}, "Origin"),
		cmpopts.IgnoreFields(cluster.Service{}, "Origin"),
		cmpopts.IgnoreUnexported(cluster.Snapshot{}),
		cmpopts.IgnoreFields(cluster.Snapshot{}, "Intents"),
		cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}),
		cmpopts.EquateEmpty(),
		cmp.Comparer(func(a, b intstr.IntOrString) bool { return a == b }),
	}
	if diff := cmp.Diff(built, loaded, opts...); diff != "" {
		t.Errorf("loaded snapshot differs from the built one (-built +loaded):\n%s", diff)
	}
	if len(loaded.Intents) != len(built.Intents) {
		t.Errorf("loaded %d ClientIntents, built %d", len(loaded.Intents), len(built.Intents))
	}
	for i := range built.Intents {
		b, l := built.Intents[i], loaded.Intents[i]
		if diff := cmp.Diff(b.Targets, l.Targets); b.Key() != l.Key() || diff != "" {
			t.Errorf("ClientIntents %s: loaded %s differs (-built +loaded):\n%s", b.Key(), l.Key(), diff)
		}
	}
	if len(loaded.Warnings) != 0 {
		t.Errorf("the generated cluster loads with warnings: %v", loaded.Warnings)
	}
}

// TestGeneratedTraffic checks the mix of issue 7 on every profile's first lines: every
// line parses, every flow resolves to the snapshot, most judged connections are covered
// by the intents, and there is a tail of uncovered ones, replies, probes, external
// traffic and DNS.
func TestGeneratedTraffic(t *testing.T) {
	for _, p := range []bench.Profile{bench.ProfileS, bench.ProfileM} {
		t.Run("profile="+p.Name, func(t *testing.T) {
			if raceEnabled && p.Name != "S" {
				t.Skip("profile M takes too long under the race detector; profile S runs")
			}
			w := bench.Generate(p, 1)
			snap, err := w.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			opts := simulate.DefaultOptions()
			opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
			sim, err := simulate.New(snap, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(sim.Compiled().Warnings) != 0 {
				t.Errorf("compiling the generated intents warns: %v", sim.Compiled().Warnings[:min(3, len(sim.Compiled().Warnings))])
			}
			lines := 20_000
			if raceEnabled {
				lines = 5_000
			}
			var buf bytes.Buffer
			if err := w.WriteFlows(&buf, lines); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(&buf)
			sc.Buffer(nil, 1<<20)
			var dnsL7, probes, external int
			for n := 1; sc.Scan(); n++ {
				ev, ok := flows.ParseLine(sc.Bytes())
				if !ok || ev.Kind == flows.KindMalformed {
					t.Fatalf("line %d does not parse: %s %s", n, ev.Reason, ev.Detail)
				}
				ev.Line = n
				j := sim.Observe(ev)
				if ev.Kind != flows.KindFlow {
					continue
				}
				switch {
				case ev.Flow.Type == "L7":
					dnsL7++
				case j.Conn.Src.Kind == evaluator.Host:
					probes++
				case j.Conn.Src.Kind == evaluator.External || j.Conn.Dst.Kind == evaluator.External:
					external++
				}
			}
			rep := sim.Report()
			c := rep.Flows
			if c.Skipped[simulate.SkipUnresolvedSource]+c.Skipped[simulate.SkipUnresolvedDest] != 0 {
				t.Errorf("unresolved flows: %v", c.Skipped)
			}
			share := func(n int64) float64 { return float64(n) / float64(c.Read) }
			status := map[simulate.EdgeStatus]int64{}
			for _, e := range rep.Edges {
				status[e.Status] += e.Count
			}
			checks := []struct {
				what     string
				got      float64
				min, max float64
			}{
				{"replies", share(c.Skipped[simulate.SkipReply]), 0.15, 0.30},
				{"covered connections", share(status[simulate.StatusCovered]), 0.40, 0.80},
				{"connections enforcement would drop", share(status[simulate.StatusWouldDrop]), 0.001, 0.08},
				{"DNS L7 records", share(int64(dnsL7)), 0.01, 0.04},
				{"node probes", share(int64(probes)), 0.03, 0.10},
				{"external traffic", share(int64(external)), 0.05, 0.15},
				{"lost-events notices", share(c.LostEventLines), 0, 0.001},
			}
			for _, ch := range checks {
				if ch.got < ch.min || ch.got > ch.max {
					t.Errorf("%s: %.3f of the lines, want %.3f..%.3f", ch.what, ch.got, ch.min, ch.max)
				}
			}
		})
	}
}

func TestProfileValidate(t *testing.T) {
	cases := map[string]struct {
		p       bench.Profile
		wantErr string
	}{
		"S":                         {p: bench.ProfileS},
		"M":                         {p: bench.ProfileM},
		"L":                         {p: bench.ProfileL},
		"too few namespaces":        {p: bench.Profile{Name: "x", Namespaces: 2, Workloads: 10, Pods: 10}, wantErr: "namespaces 2"},
		"too few workloads":         {p: bench.Profile{Name: "x", Namespaces: 10, Workloads: 5, Pods: 10}, wantErr: "workloads 5"},
		"fewer pods than workloads": {p: bench.Profile{Name: "x", Namespaces: 3, Workloads: 10, Pods: 5}, wantErr: "pods 5"},
		"every problem at once": {
			p:       bench.Profile{Name: "x", Namespaces: 1, Workloads: 1, Pods: 0, Flows: -1},
			wantErr: "namespaces 1: need at least 3 (kube-system, monitoring and one application namespace); pods 0: need at least one per workload (1); intent targets, policies and flows must not be negative",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.p.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := bench.ProfileByName("xl"); err == nil {
		t.Error(`ProfileByName("xl") succeeded`)
	}
	if p, err := bench.ProfileByName("m"); err != nil || p.Name != "M" {
		t.Errorf(`ProfileByName("m") = %v, %v`, p.Name, err)
	}
}

// TestReportGolden pins `simulate -o json` on generated traffic (profile S, seed 1): the
// report is a contract, and every optimization of the path from a flow line to an edge
// must leave these bytes alone. Rewrite with -update only for a deliberate change.
func TestReportGolden(t *testing.T) {
	w := bench.Generate(bench.ProfileS, 1)
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, egress := range []bool{false, true} {
		name := "report-S-seed-1.golden.json"
		if egress {
			name = "report-S-seed-1-egress.golden.json"
		}
		t.Run(name, func(t *testing.T) {
			opts := simulate.DefaultOptions()
			opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
			opts.Compile.Egress = egress
			sim, err := simulate.New(snap, opts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := w.WriteFlows(&buf, 1_500); err != nil {
				t.Fatal(err)
			}
			src := flows.NewReader("generated", &buf)
			defer src.Close()
			for {
				ev, err := src.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				sim.Observe(ev)
			}
			got, err := json.MarshalIndent(sim.Report(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("report (-golden +got):\n%s", diff)
			}
		})
	}
}

// TestSmallProfilesGenerate: every profile Validate accepts generates a world and its
// traffic, the smallest included (one application namespace, two workloads), where the
// generator once looked forever for uncovered pairs that did not exist.
func TestSmallProfilesGenerate(t *testing.T) {
	cases := map[string]bench.Profile{
		"smallest":                  {Name: "min", Namespaces: 3, Workloads: 4, Pods: 4},
		"one application namespace": {Name: "one", Namespaces: 3, Workloads: 6, Pods: 12, IntentTargets: 6, Policies: 4},
		"no intents":                {Name: "bare", Namespaces: 4, Workloads: 10, Pods: 30, Policies: 10},
		"many policies, few pods":   {Name: "pol", Namespaces: 4, Workloads: 6, Pods: 6, IntentTargets: 12, Policies: 100},
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			var lines bytes.Buffer
			go func() {
				w := bench.Generate(p, 1)
				if _, err := w.Snapshot(); err != nil {
					done <- err
					return
				}
				done <- w.WriteFlows(&lines, 2_000)
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(time.Minute):
				t.Fatal("generating took over a minute: the generator loops")
			}
			if n := bytes.Count(lines.Bytes(), []byte("\n")); n != 2_000 {
				t.Errorf("wrote %d lines, want 2000", n)
			}
		})
	}
}
