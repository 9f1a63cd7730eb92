package simulate

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// TestLiveNamespaceLeavesGovernance reloads a simulator that no longer enforces one of its
// namespaces: the namespace leaves the report, the gates and the metrics (a stale gauge
// would keep an alert firing), its gate fails closed, and its soak data comes back when it
// is governed again.
func TestLiveNamespaceLeavesGovernance(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	snap := loadTestSnapshot(t)
	simFor := func(namespaces ...string) *Simulator {
		opts := DefaultOptions()
		opts.Compile.Namespaces = namespaces
		sim, err := New(snap, opts)
		if err != nil {
			t.Fatal(err)
		}
		return sim
	}
	m := alerts.New(0)
	sopts := soak.DefaultOptions()
	l, _, err := NewLive(simFor("api", "web"), sopts, LiveConfig{Gate: liveGate(), Clock: clk, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	reported := func() (namespaces, gates, soaks []string) {
		r := l.Report()
		for _, n := range r.Namespaces {
			namespaces = append(namespaces, n.Namespace)
		}
		for _, g := range r.Gates {
			gates = append(gates, g.Namespace)
		}
		for _, s := range r.Soak {
			soaks = append(soaks, s.Namespace)
		}
		return namespaces, gates, soaks
	}
	// labelled returns the namespaces that have a gate_pass series.
	labelled := func() []string {
		families, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range families {
			if f.GetName() != "shadowgate_gate_pass" {
				continue
			}
			for _, s := range f.Metric {
				for _, lp := range s.Label {
					if lp.GetName() == "namespace" {
						out = append(out, lp.GetValue())
					}
				}
			}
		}
		slices.Sort(out)
		return out
	}
	check := func(stage string, want []string) {
		t.Helper()
		ns, gates, soaks := reported()
		for what, got := range map[string][]string{"namespaces": ns, "gates": gates, "soak": soaks, "gate_pass series": labelled()} {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: %s (-want +got):\n%s", stage, what, diff)
			}
		}
	}
	check("both governed", []string{"api", "web"})
	tracked := l.store.Tracked()

	l.Swap(simFor("api"))
	check("web no longer governed", []string{"api"})
	if codes := gateCodes(t, l, "web"); !slices.Contains(codes, soak.CodeUntracked) {
		t.Errorf("gate of web, no longer governed: codes %v, want %s among them", codes, soak.CodeUntracked)
	}
	if res, _ := l.Gate("web"); res.Pass {
		t.Error("gate of web, no longer governed, passes")
	}
	if diff := cmp.Diff(tracked, l.store.Tracked()); diff != "" {
		t.Errorf("store lost a namespace's soak data (-before +after):\n%s", diff)
	}

	l.Swap(simFor("api", "web"))
	check("web governed again", []string{"api", "web"})
}
