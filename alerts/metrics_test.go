package alerts

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestWouldDropEdgeSeriesAreCapped(t *testing.T) {
	m := New(2)
	m.ObserveWouldDropEdge("shop", "shop", "a", "cart", 8080, "TCP")
	m.ObserveWouldDropEdge("shop", "shop", "b", "cart", 8080, "TCP")
	m.ObserveWouldDropEdge("shop", "shop", "a", "cart", 8080, "TCP") // known series: no overflow
	m.ObserveWouldDropEdge("shop", "shop", "c", "cart", 8080, "TCP") // third series: overflow
	if got := testutil.CollectAndCount(m.WouldDropEdge); got != 2 {
		t.Errorf("edge series = %d, want 2", got)
	}
	if got := testutil.ToFloat64(m.WouldDropEdge.WithLabelValues("shop", "shop", "a", "cart", "8080", "TCP")); got != 2 {
		t.Errorf("a->cart = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.SeriesOverflow.WithLabelValues("would_drop_edge_connections_total")); got != 1 {
		t.Errorf("overflow = %v, want 1", got)
	}
}

func TestEveryMetricIsNamespacedAndDocumented(t *testing.T) {
	m := New(0)
	// Touch one series of every vector so Gather returns them all.
	m.FlowsRead.WithLabelValues("file", "evaluated").Inc()
	m.GatePass.WithLabelValues("shop").Set(1)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.HasPrefix(name, "shadowgate_") {
			t.Errorf("metric %s is not under shadowgate_", name)
		}
		if mf.GetHelp() == "" {
			t.Errorf("metric %s has no help", name)
		}
	}
}

func TestRegisterOnHostRegistry(t *testing.T) {
	host := prometheus.NewRegistry()
	// The host already has the Go collector, as controller-runtime's registry does: only
	// shadowgate's own collectors may be added.
	host.MustRegister(collectors.NewGoCollector())
	m := New(0)
	unregister, err := m.RegisterOn(host)
	if err != nil {
		t.Fatalf("first registration: %v", err)
	}
	m.UncoveredEdges.WithLabelValues("shop").Set(2)
	if got := testutil.ToFloat64(m.UncoveredEdges.WithLabelValues("shop")); got != 2 {
		t.Fatalf("uncovered = %v", got)
	}
	if n, err := testutil.GatherAndCount(host, "shadowgate_uncovered_edges"); err != nil || n != 1 {
		t.Errorf("host gathers %d shadowgate_uncovered_edges series (%v), want 1", n, err)
	}
	if _, err := New(0).RegisterOn(host); err == nil || !strings.Contains(err.Error(), "one per process") {
		t.Errorf("second set registered on the same host: err = %v, want an already-registered error", err)
	}
	unregister()
	if n, _ := testutil.GatherAndCount(host, "shadowgate_uncovered_edges"); n != 0 {
		t.Errorf("after unregister the host still gathers %d series", n)
	}
	if _, err := New(0).RegisterOn(host); err != nil {
		t.Errorf("registering after unregister: %v", err)
	}
}

func TestSetPhaseMarksExactlyOne(t *testing.T) {
	m := New(0)
	m.SetPhase("shop", "Shadow")
	m.SetPhase("shop", "Enforcing")
	for _, p := range Phases {
		want := 0.0
		if p == "Enforcing" {
			want = 1
		}
		if got := testutil.ToFloat64(m.Phase.WithLabelValues("shop", p)); got != want {
			t.Errorf("phase %s = %v, want %v", p, got, want)
		}
	}
}

// A simulate exporting shadowgate_controller_leader would hide a missing controller from
// ShadowgateControllerDown and fire ShadowgateControllerNotLeading.
func TestControllerLeaderOnlyOnceSet(t *testing.T) {
	m := New(0)
	if n, err := testutil.GatherAndCount(m.Registry, "shadowgate_controller_leader"); err != nil || n != 0 {
		t.Fatalf("fresh metrics export %d leader series (%v), want 0", n, err)
	}
	m.Leader(true)
	if got := testutil.ToFloat64(m.ControllerLeader.WithLabelValues()); got != 1 {
		t.Errorf("leader = %v, want 1", got)
	}
}
