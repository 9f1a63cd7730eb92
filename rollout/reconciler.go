package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// Event reasons. Every phase transition has one.
const (
	EventPromoted       = "Promoted"
	EventAutoPromote    = "AutomaticPromotion"
	EventRolledBack     = "RolledBack"
	EventAutoRollback   = "AutomaticRollback"
	EventBlocked        = "Blocked"
	EventReady          = "Ready"
	EventShadow         = "Shadow"
	EventPolicies       = "PoliciesApplied"
	EventDrift          = "DriftCorrected"
	EventApplyFailed    = "ApplyFailed"
	EventSoakStarted    = "SoakStarted"
	EventSoakResumed    = "SoakResumed"
	EventSoakLost       = "SoakSnapshotLost"
	EventSoakSaveFailed = "SoakSaveFailed"
)

// Reconciler drives NamespaceRollouts: it keeps each namespace's soak, evaluates its gate,
// applies or removes its policies as spec.mode asks, promotes and rolls back automatically
// when the rollout says so, and reports everything in status and Events.
//
// spec.mode is the one request: `shadowgate promote` and `shadowgate rollback` set it, and
// so does the controller for automatic transitions, so a reader of the object always sees
// what is asked. status.mode is what is in effect. Who asked and why travels in the
// shadowgate.dev/mode-request annotation, set in the same write as spec.mode.
type Reconciler struct {
	Client   client.Client
	Reader   client.Reader // uncached, for the policies a pass is about to change
	Recorder recorder.EventRecorder
	Clock    clock.PassiveClock
	Config   Config
	// Identity is who the controller is, as recorded for automatic transitions.
	Identity string
	Log      logr.Logger
	Metrics  *alerts.Metrics // nil: none

	soaks *Soaks
	drops *dropCounter
	model func() *model
}

// modeRequest returns the request annotation when it describes the current spec.mode.
func modeRequest(nsr *v1alpha1.NamespaceRollout) (v1alpha1.ModeRequest, bool) {
	var req v1alpha1.ModeRequest
	raw, ok := nsr.Annotations[v1alpha1.AnnotationModeRequest]
	if !ok || json.Unmarshal([]byte(raw), &req) != nil || req.Mode != nsr.Spec.Mode {
		return v1alpha1.ModeRequest{}, false
	}
	return req, true
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var nsr v1alpha1.NamespaceRollout
	if err := r.Client.Get(ctx, req.NamespacedName, &nsr); err != nil {
		if apierrors.IsNotFound(err) {
			// The policies and the soak Secret carry owner references: the garbage
			// collector removes them.
			r.soaks.Forget(req.Name)
			r.drops.Disarm(req.Name)
			r.forgetMetrics(req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !nsr.DeletionTimestamp.IsZero() {
		r.soaks.Forget(nsr.Spec.Namespace)
		r.drops.Disarm(nsr.Spec.Namespace)
		r.forgetMetrics(nsr.Spec.Namespace)
		return ctrl.Result{}, nil
	}
	m := r.model()
	if m == nil {
		// The cluster model is built once the caches sync; the rebuild requeues every
		// rollout.
		return ctrl.Result{}, nil
	}
	p := &pass{r: r, ctx: ctx, nsr: &nsr, m: m, now: r.Clock.Now(), orig: nsr.Status.DeepCopy()}
	p.st = nsr.Status.DeepCopy()
	result, err := p.run()
	if p.store == nil {
		// Nothing was evaluated: the status stays as it was.
		return result, err
	}
	if uerr := p.writeStatus(); uerr != nil {
		if apierrors.IsConflict(uerr) && err == nil {
			// The cache had not caught up with the last write; the next pass reads the
			// newer object.
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, errors.Join(err, uerr)
	}
	r.observe(p)
	return result, err
}

// pass is one reconcile of one rollout.
type pass struct {
	r    *Reconciler
	ctx  context.Context
	nsr  *v1alpha1.NamespaceRollout
	m    *model
	now  time.Time
	orig *v1alpha1.NamespaceRolloutStatus
	st   *v1alpha1.NamespaceRolloutStatus

	store   *soak.Store
	gate    soak.Result
	windows *Windows
	// phaseEvent is set when the pass already explained the phase change with its own
	// event.
	phaseEvent bool
	// applyErr is why the policies could not be applied; blockedBecause why a promotion
	// cannot happen, when it is not the gate.
	applyErr       error
	blockedBecause string
}

func (p *pass) event(obj *v1alpha1.NamespaceRollout, warning bool, reason, action, format string, args ...any) {
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	p.r.Recorder.Eventf(obj, nil, typ, reason, action, format, args...)
}

func (p *pass) run() (ctrl.Result, error) {
	nsr, st := p.nsr, p.st
	ns := nsr.Spec.Namespace
	st.ObservedGeneration = nsr.Generation
	if st.Mode == "" {
		st.Mode = v1alpha1.Shadow
	}

	gateCfg, specErr := p.parseSpec()

	store, resumed, err := p.r.soaks.Ensure(p.ctx, nsr)
	if err != nil {
		return ctrl.Result{}, err
	}
	p.store = store
	p.reportResumed(resumed)
	p.evaluateGate(gateCfg, specErr)

	_, nsExists := p.m.snap.Namespaces[ns]
	nsExists = nsExists && !p.m.snap.Namespaces[ns].Synthesized

	var err2 error
	switch nsr.Spec.Mode {
	case v1alpha1.Enforce:
		err2 = p.enforceMode(nsExists)
	default:
		err2 = p.shadowMode(nsExists, specErr == nil)
	}
	p.conditions()
	p.phaseEvents()
	after := p.r.Config.Resync
	if t := st.NextPromotionWindow; t != nil && t.After(p.now) && t.Sub(p.now) < after {
		after = t.Sub(p.now)
	}
	return ctrl.Result{RequeueAfter: after}, err2
}

// parseSpec checks what the schema cannot: the promotion windows and the soak window
// against the history the stores keep.
func (p *pass) parseSpec() (soak.GateConfig, error) {
	spec := p.nsr.Spec
	var errs []error
	w, err := ParseWindows(spec.Promotion)
	if err != nil {
		errs = append(errs, err)
	}
	p.windows = w
	cfg := soak.GateConfig{
		Window:              spec.Soak.WindowOrDefault(),
		MinConnections:      spec.Soak.MinConnectionsOrDefault(),
		MaxGap:              spec.Soak.MaxGapOrDefault(),
		LostEventsThreshold: uint64(max(0, spec.Soak.LostEventsThreshold)),
		TopN:                v1alpha1.MaxUncoveredEdges,
	}
	if cfg.Window > p.r.Config.SoakHistory {
		errs = append(errs, fmt.Errorf("spec.soak.window: %s exceeds the %s of history the controller keeps (--soak-history)",
			cfg.Window, p.r.Config.SoakHistory))
		cfg.Window = p.r.Config.SoakHistory
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("spec.soak: %w", err))
	}
	return cfg, errors.Join(errs...)
}

func (p *pass) reportResumed(res *Resumed) {
	if res == nil {
		return
	}
	switch res.Kind {
	case "new":
		p.event(p.nsr, false, EventSoakStarted, "Soak", "soak of namespace %s started", p.nsr.Spec.Namespace)
	case "resumed":
		p.event(p.nsr, false, EventSoakResumed, "Soak", "soak of namespace %s resumed from its Secret; %s of downtime recorded as a gap",
			p.nsr.Spec.Namespace, res.Down.Round(time.Second))
	case "lost":
		p.event(p.nsr, true, EventSoakLost, "Soak", "the soak snapshot could not be read and was kept aside as Secret %s/%s; the soak starts over: %v",
			p.r.Config.Namespace, res.AsideName, res.Err)
	}
}

// evaluateGate asks the store and copies the answer into status.
func (p *pass) evaluateGate(cfg soak.GateConfig, specErr error) {
	ns := p.nsr.Spec.Namespace
	res, err := p.store.Gate(ns, p.now, cfg)
	if err != nil {
		specErr = errors.Join(specErr, err)
		res = soak.Result{Namespace: ns}
	}
	if specErr != nil {
		res.Pass = false
		res.Reasons = append(res.Reasons, soak.Reason{Code: "spec", Message: specErr.Error()})
	}
	if ex := p.m.snap.excludedIn(ns); len(ex) > 0 {
		// A ClientIntents the model had to leave out may be exactly the one that covers
		// an edge: the gate cannot vouch for the namespace until it is fixed.
		res.Pass = false
		res.Reasons = append(res.Reasons, soak.Reason{Code: "excluded-objects", Message: fmt.Sprintf(
			"%d objects could not be read and were left out, e.g. %s", len(ex), ex[0])})
	}
	p.gate = res
	st := p.st
	gs := &v1alpha1.GateStatus{Passed: res.Pass, EvaluatedAt: metav1.NewTime(p.now)}
	for i, rsn := range res.Reasons {
		if i == v1alpha1.MaxReasons {
			break
		}
		gs.Reasons = append(gs.Reasons, v1alpha1.GateReason{Code: rsn.Code, Message: truncate(rsn.Message, 1024)})
	}
	st.Gate = gs
	stats := res.Stats
	if !stats.TrackedSince.IsZero() {
		t := metav1.NewTime(stats.TrackedSince)
		st.SoakStart = &t
	}
	st.ObservedConnections = stats.Connections
	st.UncoveredEdges = int32(stats.UncoveredEdges)
	st.TopUncoveredEdges = nil
	for i, e := range stats.Uncovered {
		if i == v1alpha1.MaxUncoveredEdges {
			break
		}
		ue := v1alpha1.UncoveredEdge{Source: e.Source.String(), Destination: e.Destination.String(),
			Protocol: e.Protocol, Port: e.Port, Count: e.Count, Reason: truncate(e.Reason, 1024)}
		if !e.LastSeen.IsZero() {
			t := metav1.NewTime(e.LastSeen)
			ue.LastSeen = &t
		}
		st.TopUncoveredEdges = append(st.TopUncoveredEdges, ue)
	}
	st.Gaps = nil
	gaps := stats.Gaps
	if len(gaps) > v1alpha1.MaxGaps {
		gaps = gaps[len(gaps)-v1alpha1.MaxGaps:]
	}
	var total time.Duration
	for _, g := range stats.Gaps {
		total += g.Duration()
	}
	for _, g := range gaps {
		sg := v1alpha1.Gap{Start: metav1.NewTime(g.Start)}
		if !g.Ongoing {
			t := metav1.NewTime(g.End)
			sg.End = &t
		}
		var reasons, msgs []string
		for _, c := range g.Causes {
			if !contains(reasons, string(c.Reason)) {
				reasons = append(reasons, string(c.Reason))
			}
			if c.Message != "" && len(msgs) < 3 {
				msgs = append(msgs, c.Message)
			}
		}
		sg.Reason = strings.Join(reasons, ",")
		sg.Message = truncate(strings.Join(msgs, "; "), 1024)
		st.Gaps = append(st.Gaps, sg)
	}
	st.GapTotal = nil
	if total > 0 {
		st.GapTotal = &metav1.Duration{Duration: total.Round(time.Second)}
	}
}

// enforceMode handles spec.mode Enforce: promote when allowed, else keep the policies in
// sync and watch for drop storms.
func (p *pass) enforceMode(nsExists bool) error {
	nsr, st := p.nsr, p.st
	ns := nsr.Spec.Namespace
	req, hasReq := modeRequest(nsr)
	if st.Mode != v1alpha1.Enforce {
		switch {
		case !p.gate.Pass && !req.Force:
			st.Phase = v1alpha1.PhaseBlocked
			return nil
		case !nsExists:
			st.Phase = v1alpha1.PhaseBlocked
			p.blockedBecause = fmt.Sprintf("namespace %s does not exist", ns)
			return nil
		}
		if err := p.apply(); err != nil {
			st.Phase = v1alpha1.PhaseBlocked
			return p.applyError(err)
		}
		st.Mode = v1alpha1.Enforce
		st.Phase = v1alpha1.PhaseEnforcing
		t := &v1alpha1.Transition{Time: metav1.NewTime(p.now), Forced: !p.gate.Pass}
		if hasReq {
			t.By, t.Reason, t.Automatic = req.By, req.Reason, req.Automatic
		} else {
			t.By = "unknown: spec.mode was set without a " + v1alpha1.AnnotationModeRequest + " annotation"
		}
		st.LastPromotion = t
		p.r.soaks.SetEnforcing(ns, true)
		p.arm()
		p.phaseEvent = true
		forced := ""
		if t.Forced {
			forced = " (forced: the gate did not pass)"
		}
		n := 0
		if st.Applied != nil {
			n = len(st.Applied.Names)
		}
		p.event(nsr, false, EventPromoted, "Promote", "namespace %s enforced by %s%s: %s; %d policies applied",
			ns, t.By, forced, orDefault(t.Reason, "no reason given"), n)
		return nil
	}

	p.r.soaks.SetEnforcing(ns, true)
	p.arm()
	if tr, ok := p.r.drops.Tripped(ns); ok && nsr.Spec.Rollback.Policy != v1alpha1.RollBackManually {
		return p.autoRollback(tr)
	}
	st.Phase = v1alpha1.PhaseEnforcing
	if !nsExists {
		// Its policies went with it; there is nothing to apply until it comes back.
		p.applyErr = fmt.Errorf("namespace %s does not exist", ns)
		return nil
	}
	if err := p.apply(); err != nil {
		return p.applyError(err)
	}
	return nil
}

// arm starts drop counting for automatic rollback from the promotion on.
func (p *pass) arm() {
	ns := p.nsr.Spec.Namespace
	rb := p.nsr.Spec.Rollback
	if rb.Policy == v1alpha1.RollBackManually {
		p.r.drops.Disarm(ns)
		return
	}
	since := p.now
	if lp := p.st.LastPromotion; lp != nil {
		since = lp.Time.Time
	}
	p.r.drops.Arm(ns, int(rb.DropsOrDefault()), rb.PeriodOrDefault(), since)
}

// apply compiles and applies the namespace's policies and records them in status.
func (p *pass) apply() error {
	nsr, st := p.nsr, p.st
	g := governed{namespace: nsr.Spec.Namespace, egress: nsr.Spec.Egress}
	res, err := p.m.policies(g)
	if err != nil {
		return &compileError{err: err}
	}
	var previously []string
	if st.Applied != nil {
		previously = st.Applied.Names
	}
	out, err := applyPolicies(p.ctx, p.r.Client, p.r.Reader, nsr, res.Policies, previously)
	if err != nil {
		return err
	}
	names := out.Names
	if len(names) > v1alpha1.MaxAppliedPolicies {
		names = names[:v1alpha1.MaxAppliedPolicies]
	}
	if st.Applied == nil || st.Applied.Hash != out.Hash || st.Applied.Generation != nsr.Generation || !equality.Semantic.DeepEqual(st.Applied.Names, names) {
		st.Applied = &v1alpha1.AppliedPolicies{Names: names, Generation: nsr.Generation, Hash: out.Hash, Time: metav1.NewTime(p.now)}
		if p.orig.Mode == v1alpha1.Enforce {
			p.event(nsr, false, EventPolicies, "Apply", "compiled policies changed (set %s): applied %s, pruned %s",
				out.Hash, listOrNone(append(out.Created, out.Corrected...)), listOrNone(out.Pruned))
		}
	}
	if p.orig.Mode == v1alpha1.Enforce && (len(out.Restored) > 0 || (len(out.Corrected) > 0 && p.orig.Applied != nil && p.orig.Applied.Hash == out.Hash)) {
		p.event(nsr, true, EventDrift, "Apply", "managed NetworkPolicies changed outside shadowgate were put back: restored %s, corrected %s",
			listOrNone(out.Restored), listOrNone(out.Corrected))
	}
	return nil
}

type compileError struct{ err error }

func (e *compileError) Error() string { return "compile the namespace's policies: " + e.err.Error() }
func (e *compileError) Unwrap() error { return e.err }

// applyError records a failed apply. Compile errors and name conflicts wait for the
// cluster to change (the model rebuild requeues); API errors are retried.
func (p *pass) applyError(err error) error {
	p.applyErr = err
	p.event(p.nsr, true, EventApplyFailed, "Apply", "%v", err)
	var ce *compileError
	var conflict *conflictError
	if errors.As(err, &ce) || errors.As(err, &conflict) {
		return nil
	}
	return err
}

// autoRollback undoes enforcement after a drop storm: it records the request in spec
// (so spec.mode reads Shadow and nothing promotes it again behind the operator's back),
// then removes the policies at once.
func (p *pass) autoRollback(tr trip) error {
	nsr := p.nsr
	reason := "automatic rollback: " + tr.String()
	if err := p.r.requestMode(p.ctx, nsr, v1alpha1.ModeRequest{Mode: v1alpha1.Shadow, By: p.r.Identity, Reason: reason,
		Time: metav1.NewTime(p.now), Automatic: true}); err != nil {
		return fmt.Errorf("record the automatic rollback in spec: %w", err)
	}
	p.event(nsr, true, EventAutoRollback, "Rollback", "%s", reason)
	p.phaseEvent = true
	return p.rollback(true)
}

// rollback removes every managed policy and returns the namespace to shadow.
func (p *pass) rollback(automaticEvent bool) error {
	nsr, st := p.nsr, p.st
	ns := nsr.Spec.Namespace
	deleted, err := removePolicies(p.ctx, p.r.Client, p.r.Reader, nsr)
	if err != nil {
		return err
	}
	wasEnforcing := st.Mode == v1alpha1.Enforce
	st.Mode = v1alpha1.Shadow
	st.Applied = nil
	p.r.soaks.SetEnforcing(ns, false)
	p.r.drops.Disarm(ns)
	if !wasEnforcing {
		return nil
	}
	req, hasReq := modeRequest(nsr)
	t := &v1alpha1.Transition{Time: metav1.NewTime(p.now)}
	if hasReq {
		t.By, t.Reason, t.Automatic = req.By, req.Reason, req.Automatic
	} else {
		t.By = "unknown: spec.mode was set without a " + v1alpha1.AnnotationModeRequest + " annotation"
	}
	st.LastRollback = t
	if !automaticEvent {
		p.phaseEvent = true
		p.event(nsr, false, EventRolledBack, "Rollback", "namespace %s returned to shadow by %s: %s; %d policies removed",
			ns, t.By, orDefault(t.Reason, "no reason given"), len(deleted))
	}
	return nil
}

// shadowMode handles spec.mode Shadow: make sure nothing is applied, then consider an
// automatic promotion.
func (p *pass) shadowMode(nsExists, specValid bool) error {
	nsr, st := p.nsr, p.st
	owned, err := managedPolicies(p.ctx, p.r.Reader, nsr)
	if err != nil {
		return err
	}
	if st.Mode == v1alpha1.Enforce || len(owned) > 0 {
		if err := p.rollback(false); err != nil {
			return err
		}
	}
	p.r.soaks.SetEnforcing(nsr.Spec.Namespace, false)
	p.r.drops.Disarm(nsr.Spec.Namespace)

	st.NextPromotionWindow = nil
	switch {
	case p.gate.Pass:
		st.Phase = v1alpha1.PhaseReady
	case st.LastRollback != nil && (st.LastPromotion == nil || !st.LastRollback.Time.Before(&st.LastPromotion.Time)):
		st.Phase = v1alpha1.PhaseRolledBack
	default:
		st.Phase = v1alpha1.PhaseShadow
	}
	if nsr.Spec.Promotion.Policy != v1alpha1.PromoteAutomatically || !specValid {
		return nil
	}
	if next := p.windows.NextOpen(p.now); !next.IsZero() {
		t := metav1.NewTime(next)
		st.NextPromotionWindow = &t
	}
	if !p.gate.Pass || !nsExists {
		return nil
	}
	open, schedule, closes := p.windows.Open(p.now)
	if !open {
		return nil
	}
	if lr := st.LastRollback; lr != nil {
		// After a rollback the namespace soaks a full window again before the controller
		// promotes it by itself; an operator can still promote at any time.
		if resume := lr.Time.Add(p.gateWindow()); p.now.Before(resume) {
			st.Phase = v1alpha1.PhaseRolledBack
			return nil
		}
	}
	reason := fmt.Sprintf("automatic promotion: the gate passes and the promotion window %q is open until %s",
		schedule, closes.UTC().Format(time.RFC3339))
	if err := p.r.requestMode(p.ctx, nsr, v1alpha1.ModeRequest{Mode: v1alpha1.Enforce, By: p.r.Identity, Reason: reason,
		Time: metav1.NewTime(p.now), Automatic: true}); err != nil {
		return fmt.Errorf("request the automatic promotion: %w", err)
	}
	p.phaseEvent = true
	p.event(nsr, false, EventAutoPromote, "Promote", "%s", reason)
	// The spec change requeues the rollout, and that pass applies the policies.
	return nil
}

func (p *pass) gateWindow() time.Duration { return p.nsr.Spec.Soak.WindowOrDefault() }

// requestMode writes spec.mode and the request annotation in one patch, guarded by the
// resourceVersion the pass read, so it never overwrites an operator's concurrent request.
func (r *Reconciler) requestMode(ctx context.Context, nsr *v1alpha1.NamespaceRollout, req v1alpha1.ModeRequest) error {
	orig := nsr.DeepCopy()
	raw, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if nsr.Annotations == nil {
		nsr.Annotations = map[string]string{}
	}
	nsr.Annotations[v1alpha1.AnnotationModeRequest] = string(raw)
	nsr.Spec.Mode = req.Mode
	status := nsr.Status.DeepCopy()
	if err := r.Client.Patch(ctx, nsr, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	// The patch response carries the stored status; the pass's status is written next.
	nsr.Status = *status
	return nil
}

// conditions sets GatePassed, Enforced and SpecValid.
func (p *pass) conditions() {
	st, gen := p.st, p.nsr.Generation
	set := func(typ string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: s, Reason: reason,
			Message: truncate(msg, 32768), ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(p.now)})
	}
	if p.gate.Pass {
		set(v1alpha1.ConditionGatePassed, true, "GatePassed", "the soak is clean")
	} else {
		var msgs []string
		for _, r := range p.gate.Reasons {
			msgs = append(msgs, r.Message)
		}
		set(v1alpha1.ConditionGatePassed, false, "GateFailed", strings.Join(msgs, "; "))
	}
	specMsg := ""
	for _, r := range p.gate.Reasons {
		if r.Code == "spec" {
			specMsg = r.Message
		}
	}
	if specMsg == "" {
		set(v1alpha1.ConditionSpecValid, true, "Valid", "")
	} else {
		set(v1alpha1.ConditionSpecValid, false, "InvalidSpec", specMsg)
	}
	switch {
	case p.applyErr != nil:
		var ce *compileError
		var conflict *conflictError
		reason := "ApplyFailed"
		if errors.As(p.applyErr, &ce) {
			reason = "CompileFailed"
		} else if errors.As(p.applyErr, &conflict) {
			reason = "NameConflict"
		}
		set(v1alpha1.ConditionEnforced, false, reason, p.applyErr.Error())
	case st.Mode == v1alpha1.Enforce:
		n := 0
		if st.Applied != nil {
			n = len(st.Applied.Names)
		}
		set(v1alpha1.ConditionEnforced, true, "PoliciesApplied", fmt.Sprintf("%d policies applied and in sync", n))
	case st.Phase == v1alpha1.PhaseBlocked:
		set(v1alpha1.ConditionEnforced, false, "Blocked", p.blockedMessage())
	default:
		set(v1alpha1.ConditionEnforced, false, "Shadow", "shadow mode: nothing is applied")
	}
}

func (p *pass) blockedMessage() string {
	if p.blockedBecause != "" {
		return p.blockedBecause
	}
	if p.applyErr != nil {
		return p.applyErr.Error()
	}
	var msgs []string
	for _, r := range p.gate.Reasons {
		msgs = append(msgs, r.Message)
	}
	return "enforcement was requested but the gate does not pass and the request was not forced: " + strings.Join(msgs, "; ")
}

// phaseEvents emits an Event for a phase change the pass did not already explain.
func (p *pass) phaseEvents() {
	from, to := p.orig.Phase, p.st.Phase
	if from == to || p.phaseEvent {
		return
	}
	switch to {
	case v1alpha1.PhaseBlocked:
		p.event(p.nsr, true, EventBlocked, "Block", "%s", p.blockedMessage())
	case v1alpha1.PhaseReady:
		how := "waiting for `shadowgate promote`"
		if p.nsr.Spec.Promotion.Policy == v1alpha1.PromoteAutomatically {
			how = "waiting for a promotion window"
			if t := p.st.NextPromotionWindow; t != nil {
				how += " (next opens " + t.UTC().Format(time.RFC3339) + ")"
			}
		}
		p.event(p.nsr, false, EventReady, "Gate", "the gate passes; %s", how)
	case v1alpha1.PhaseShadow, v1alpha1.PhaseRolledBack:
		var msgs []string
		for _, r := range p.gate.Reasons {
			msgs = append(msgs, r.Message)
		}
		p.event(p.nsr, false, EventShadow, "Gate", "phase %s: %s", to, orDefault(strings.Join(msgs, "; "), "soaking"))
	}
}

// writeStatus writes status when it changed in more than the gate's evaluation time.
func (p *pass) writeStatus() error {
	a, b := p.orig.DeepCopy(), p.st.DeepCopy()
	for _, s := range []*v1alpha1.NamespaceRolloutStatus{a, b} {
		if s.Gate != nil {
			s.Gate.EvaluatedAt = metav1.Time{}
		}
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
	}
	if equality.Semantic.DeepEqual(a, b) {
		return nil
	}
	p.nsr.Status = *p.st
	if err := p.r.Client.Status().Update(p.ctx, p.nsr); err != nil {
		return fmt.Errorf("update status of NamespaceRollout %s: %w", p.nsr.Name, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
