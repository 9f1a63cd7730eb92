package alerts

import (
	"strings"
	"testing"

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
