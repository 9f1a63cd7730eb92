package rollout

import (
	"context"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

// observe exports what one reconcile pass decided, once its status is written: a pass
// whose write conflicted runs again and would otherwise count its transition twice.
func (r *Reconciler) observe(p *pass) {
	m := r.Metrics
	if m == nil {
		return
	}
	ns, st, g := p.nsr.Spec.Namespace, p.st, p.gate
	m.SetPhase(ns, string(st.Phase))
	pass := 0.0
	if g.Pass {
		pass = 1
	}
	m.GatePass.WithLabelValues(ns).Set(pass)
	m.GateReasons.DeletePartialMatch(map[string]string{"namespace": ns})
	for _, reason := range g.Reasons {
		m.GateReasons.WithLabelValues(ns, reason.Code).Set(1)
	}
	m.UncoveredEdges.WithLabelValues(ns).Set(float64(g.Stats.UncoveredEdges))
	m.SoakCoverage.WithLabelValues(ns).Set(g.Stats.CoveredSeconds)
	m.SoakWindow.WithLabelValues(ns).Set(g.WindowSeconds)
	if !g.Stats.TrackedSince.IsZero() {
		m.SoakStart.WithLabelValues(ns).Set(float64(g.Stats.TrackedSince.UnixNano()) / 1e9)
	}
	// increase() cannot see a counter's first increment when the series is born with it:
	// the automatic-rollback alert needs the series at 0 before the first rollback.
	m.Rollbacks.WithLabelValues(ns, alerts.TriggerAuto)
	if t := st.LastPromotion; t != nil && !sameTransition(t, p.orig.LastPromotion) {
		trigger := alerts.TriggerManual
		switch {
		case t.Forced:
			trigger = alerts.TriggerForced
		case t.Automatic:
			trigger = alerts.TriggerAuto
		}
		m.Promotions.WithLabelValues(ns, trigger).Inc()
	}
	if t := st.LastRollback; t != nil && !sameTransition(t, p.orig.LastRollback) {
		trigger := alerts.TriggerManual
		if t.Automatic {
			trigger = alerts.TriggerAuto
		}
		m.Rollbacks.WithLabelValues(ns, trigger).Inc()
	}
}

func sameTransition(a, b *v1alpha1.Transition) bool {
	return b != nil && a.Time.Equal(&b.Time) && a.By == b.By
}

// leaderGauge sets shadowgate_controller_leader: 0 from the start, 1 once the manager
// is elected (at once without leader election), 0 again when the manager stops.
type leaderGauge struct {
	m       *alerts.Metrics
	elected <-chan struct{}
}

// NeedLeaderElection is false: the gauge must run on replicas that wait, too.
func (l leaderGauge) NeedLeaderElection() bool { return false }

func (l leaderGauge) Start(ctx context.Context) error {
	l.m.Leader(false)
	defer l.m.Leader(false)
	select {
	case <-l.elected:
		l.m.Leader(true)
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}

// forgetMetrics drops a namespace that is no longer governed: its stale gauges would
// keep alerts firing for a namespace nobody watches.
func (r *Reconciler) forgetMetrics(ns string) {
	if r.Metrics != nil {
		r.Metrics.Forget(ns)
	}
}
