package rollout

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

func TestObserveExportsTransitionsOnce(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	promotion := &v1alpha1.Transition{Time: metav1.NewTime(t0), By: "alice"}
	autoRollback := &v1alpha1.Transition{Time: metav1.NewTime(t0.Add(time.Hour)), By: "system:serviceaccount:shadowgate-system:shadowgate", Automatic: true}
	forced := &v1alpha1.Transition{Time: metav1.NewTime(t0), By: "bob", Forced: true}
	blocked := soak.Result{Reasons: []soak.Reason{{Code: "uncovered"}, {Code: "gap"}}, WindowSeconds: 3600,
		Stats: soak.Summary{UncoveredEdges: 2, CoveredSeconds: 1800, TrackedSince: t0}}
	cases := map[string]struct {
		orig, st v1alpha1.NamespaceRolloutStatus
		gate     soak.Result
		only     string // compare only the series of this metric
		want     string
	}{
		"a manual promotion counts once, with the phase and a passing gate": {
			st:   v1alpha1.NamespaceRolloutStatus{Phase: v1alpha1.PhaseEnforcing, LastPromotion: promotion},
			gate: soak.Result{Pass: true, WindowSeconds: 3600},
			want: `
shadowgate_gate_pass{namespace="shop"} 1
shadowgate_namespace_phase{namespace="shop",phase="Blocked"} 0
shadowgate_namespace_phase{namespace="shop",phase="Enforcing"} 1
shadowgate_namespace_phase{namespace="shop",phase="Ready"} 0
shadowgate_namespace_phase{namespace="shop",phase="RolledBack"} 0
shadowgate_namespace_phase{namespace="shop",phase="Shadow"} 0
shadowgate_promotions_total{namespace="shop",trigger="manual"} 1
shadowgate_rollbacks_total{namespace="shop",trigger="auto"} 0
shadowgate_soak_coverage_seconds{namespace="shop"} 0
shadowgate_soak_window_seconds{namespace="shop"} 3600
shadowgate_uncovered_edges{namespace="shop"} 0
`,
		},
		"an old promotion is not counted again; an automatic rollback is": {
			orig: v1alpha1.NamespaceRolloutStatus{LastPromotion: promotion},
			st:   v1alpha1.NamespaceRolloutStatus{Phase: v1alpha1.PhaseRolledBack, LastPromotion: promotion, LastRollback: autoRollback},
			gate: blocked,
			want: `
shadowgate_gate_pass{namespace="shop"} 0
shadowgate_gate_reasons{code="gap",namespace="shop"} 1
shadowgate_gate_reasons{code="uncovered",namespace="shop"} 1
shadowgate_namespace_phase{namespace="shop",phase="Blocked"} 0
shadowgate_namespace_phase{namespace="shop",phase="Enforcing"} 0
shadowgate_namespace_phase{namespace="shop",phase="Ready"} 0
shadowgate_namespace_phase{namespace="shop",phase="RolledBack"} 1
shadowgate_namespace_phase{namespace="shop",phase="Shadow"} 0
shadowgate_rollbacks_total{namespace="shop",trigger="auto"} 1
shadowgate_soak_coverage_seconds{namespace="shop"} 1800
shadowgate_soak_start_timestamp_seconds{namespace="shop"} 1.7723664e+09
shadowgate_soak_window_seconds{namespace="shop"} 3600
shadowgate_uncovered_edges{namespace="shop"} 2
`,
		},
		"a forced promotion is counted as forced": {
			st:   v1alpha1.NamespaceRolloutStatus{Phase: v1alpha1.PhaseEnforcing, LastPromotion: forced},
			gate: blocked,
			only: "shadowgate_promotions_total",
			want: `
shadowgate_promotions_total{namespace="shop",trigger="forced"} 1
`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := alerts.New(0)
			r := &Reconciler{Metrics: m}
			nsr := &v1alpha1.NamespaceRollout{Spec: v1alpha1.NamespaceRolloutSpec{Namespace: "shop"}}
			r.observe(&pass{nsr: nsr, orig: &tc.orig, st: &tc.st, gate: tc.gate})
			got := gathered(t, m)
			if tc.only != "" {
				got = only(got, tc.only)
			}
			if diff := cmp.Diff(strings.TrimSpace(tc.want), got); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForgetDropsTheNamespacesSeries(t *testing.T) {
	m := alerts.New(0)
	r := &Reconciler{Metrics: m}
	for _, ns := range []string{"shop", "bank"} {
		nsr := &v1alpha1.NamespaceRollout{Spec: v1alpha1.NamespaceRolloutSpec{Namespace: ns}}
		r.observe(&pass{nsr: nsr, orig: &v1alpha1.NamespaceRolloutStatus{}, st: &v1alpha1.NamespaceRolloutStatus{Phase: v1alpha1.PhaseShadow}, gate: soak.Result{}})
	}
	r.forgetMetrics("shop")
	if got := gathered(t, m); strings.Contains(got, `"shop"`) || !strings.Contains(got, `"bank"`) {
		t.Errorf("after forgetting shop:\n%s", got)
	}
}

func TestLeaderGauge(t *testing.T) {
	m := alerts.New(0)
	elected := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- leaderGauge{m: m, elected: elected}.Start(ctx) }()
	waitGauge(t, m, 0)
	close(elected)
	waitGauge(t, m, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.ControllerLeader.WithLabelValues()); got != 0 {
		t.Errorf("leader after stop = %v, want 0", got)
	}
}

// waitGauge polls, bounded: the gauge is set on the runnable's goroutine.
func waitGauge(t *testing.T, m *alerts.Metrics, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.ControllerLeader.WithLabelValues()) != want {
		if time.Now().After(deadline) {
			t.Fatalf("shadowgate_controller_leader = %v, want %v", testutil.ToFloat64(m.ControllerLeader.WithLabelValues()), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// gathered renders the per-namespace shadowgate_ series as "name{labels} value" lines, sorted.
func gathered(t *testing.T, m *alerts.Metrics) string {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "shadowgate_") || mf.GetName() == "shadowgate_controller_leader" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			if len(mt.GetLabel()) == 0 {
				continue
			}
			var ls []string
			for _, l := range mt.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			v := mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
			lines = append(lines, mf.GetName()+"{"+strings.Join(ls, ",")+"} "+strconvFloat(v))
		}
	}
	return strings.Join(lines, "\n")
}

func only(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func strconvFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// The phase gauge's label values are the API's phases: a phase added to one must be added
// to the other, or namespace_phase would miss it.
func TestMetricPhasesAreTheAPIPhases(t *testing.T) {
	api := []string{string(v1alpha1.PhaseShadow), string(v1alpha1.PhaseReady), string(v1alpha1.PhaseEnforcing),
		string(v1alpha1.PhaseRolledBack), string(v1alpha1.PhaseBlocked)}
	if diff := cmp.Diff(api, alerts.Phases); diff != "" {
		t.Errorf("alerts.Phases (-api +metrics):\n%s", diff)
	}
}
