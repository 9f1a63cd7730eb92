package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// ErrRebuild says that a change cannot be applied to a Simulator in place (other
// options, or evaluators that cannot be updated): build a new one with New.
var ErrRebuild = errors.New("simulate: the change needs a new simulator")

// Updates move a Simulator to a new snapshot without rebuilding it: the compilation
// follows through compile.Compiler (incremental for ClientIntents, a full compile that
// reports only what changed otherwise), and both engines take only the changed pods,
// namespaces and policies. Afterwards the Simulator judges every flow as New on the new
// snapshot would (update_test.go holds it to that); the report keeps counting across
// the update.

// UpdateIntents applies ClientIntents events: upsert adds or replaces (by
// namespace/name), remove names ClientIntents gone. Nothing else in the snapshot changes.
// The snapshot's ClientIntents must be sorted by key, as cluster.Build leaves them (see
// compile.ReplaceIntents).
func (s *Simulator) UpdateIntents(upsert []*intents.ClientIntents, remove []string) error {
	_, err := s.updateIntents(upsert, remove)
	return err
}

func (s *Simulator) updateIntents(upsert []*intents.ClientIntents, remove []string) (impact, error) {
	_, enf, err := s.engines()
	if err != nil {
		return impact{}, err
	}
	next, keys := compile.ReplaceIntents(s.snap, upsert, remove)
	if !s.compiling() {
		s.snap = next
		return impact{}, nil
	}
	k, err := s.compilerFor()
	if err != nil {
		return impact{}, err
	}
	d, err := k.UpdateIntents(next, keys)
	if err != nil {
		return impact{}, fmt.Errorf("compile: %w", err)
	}
	s.snap = next
	var imp impact
	s.applyCompiled(k, enf, d, nil, &imp)
	return imp, nil
}

// impact is what an update can have changed in the verdicts of stored edges. A
// NetworkPolicy selects pods of its own namespace only, so a connection's verdict depends
// on the egress policies of its source's namespace, the ingress policies of its
// destination's, and on nothing else but pods, nodes and namespace labels: when only
// policies changed, only edges from a namespace whose egress policies changed or into
// one whose ingress policies changed need judging again.
type impact struct {
	// all: pods, nodes or namespaces changed, so any verdict may have.
	all bool
	// ingress and egress: namespaces where a changed policy, before or after the
	// change, isolated in that direction, in either policy set.
	ingress, egress map[string]bool
}

// note records the directions the policies named in refs isolate in e. Called before
// and after e takes the change, it covers policies removed, added and retyped.
func (i *impact) note(e *evaluator.Engine, refs []evaluator.PolicyRef) {
	for _, r := range refs {
		in, out, ok := e.Isolates(r)
		if !ok {
			continue
		}
		if in {
			i.ingress = addTo(i.ingress, r.Namespace)
		}
		if out {
			i.egress = addTo(i.egress, r.Namespace)
		}
	}
}

func addTo(m map[string]bool, ns string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[ns] = true
	return m
}

func (i impact) some() bool { return i.all || len(i.ingress) > 0 || len(i.egress) > 0 }

// asSource and asDestination report whether an edge from, or to, p may have a new
// verdict.
func (i impact) asSource(p soak.Peer) bool {
	return i.all || (p.Namespace != "" && i.egress[p.Namespace])
}

func (i impact) asDestination(p soak.Peer) bool {
	return i.all || (p.Namespace != "" && i.ingress[p.Namespace])
}

// Update moves the Simulator to next, whatever changed, with opts (ErrRebuild when they
// differ from the Simulator's: they can change what is enforced). On an error the
// Simulator is unchanged.
func (s *Simulator) Update(next *cluster.Snapshot, opts Options) error {
	_, err := s.update(next, opts)
	return err
}

func (s *Simulator) update(next *cluster.Snapshot, opts Options) (impact, error) {
	if next == nil {
		return impact{}, errors.New("simulate: nil snapshot")
	}
	if !reflect.DeepEqual(opts, s.opts) {
		return impact{}, ErrRebuild
	}
	cur, enf, err := s.engines()
	if err != nil {
		return impact{}, err
	}
	var d *compile.Delta
	var k *compile.Compiler
	if s.compiling() {
		if k, err = s.compilerFor(); err != nil {
			return impact{}, err
		}
		if d, err = k.Update(next); err != nil {
			return impact{}, fmt.Errorf("compile: %w", err)
		}
	}
	prev := s.snap

	var changedPods, gonePods []*cluster.Pod
	cluster.DiffPods(prev.Pods, next.Pods, func(p *cluster.Pod) {
		changedPods = append(changedPods, p)
		cur.UpdatePod(p)
		enf.UpdatePod(p)
	}, func(p *cluster.Pod) {
		gonePods = append(gonePods, p)
		cur.DeletePod(p.Namespace, p.Name)
		enf.DeletePod(p.Namespace, p.Name)
	})
	podsChanged := len(changedPods) > 0 || len(gonePods) > 0

	nsChanged := false
	for name, ns := range next.Namespaces {
		if old, ok := prev.Namespaces[name]; !ok || !reflect.DeepEqual(old.Labels, ns.Labels) {
			nsChanged = true
			cur.UpdateNamespace(ns)
			enf.UpdateNamespace(ns)
		}
	}
	for name := range prev.Namespaces {
		if _, ok := next.Namespaces[name]; !ok {
			nsChanged = true
			cur.DeleteNamespace(name)
			enf.DeleteNamespace(name)
		}
	}

	// The cluster's own policies: both engines hold them, the enforced one under the
	// compiled ones of the same name (Merge).
	var upsert []*networkingv1.NetworkPolicy
	var remove []evaluator.PolicyRef
	if !slices.Equal(prev.NetworkPolicies, next.NetworkPolicies) {
		oldPolicies, newPolicies := policiesByRef(prev.NetworkPolicies), policiesByRef(next.NetworkPolicies)
		for ref, p := range newPolicies {
			if old, ok := oldPolicies[ref]; !ok || (old != p && !reflect.DeepEqual(old, p)) {
				upsert = append(upsert, p)
			}
		}
		for ref := range oldPolicies {
			if _, ok := newPolicies[ref]; !ok {
				remove = append(remove, ref)
			}
		}
	}
	changed := append([]evaluator.PolicyRef(nil), remove...)
	for _, p := range upsert {
		changed = append(changed, evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name})
	}
	var imp impact
	if len(changed) > 0 {
		imp.note(cur, changed)
		cur.UpdatePolicies(upsert, remove)
		imp.note(cur, changed)
	}
	s.snap = next
	if podsChanged {
		s.res = s.res.moved(next, changedPods, gonePods)
	}
	if d == nil {
		d = &compile.Delta{}
	}
	s.applyCompiled(k, enf, d, changed, &imp)
	// Nodes are known from the pods that run on them, so unchanged pods mean unchanged
	// nodes too.
	imp.all = podsChanged || nsChanged
	return imp, nil
}

// compiling reports whether the Simulator enforces any namespace, so has a compilation.
func (s *Simulator) compiling() bool { return len(s.opts.Compile.Namespaces) > 0 }

// engines returns the two evaluators as Engines, the only ones that update in place and
// judge by Ref; other Evaluators (the Oracle) answer ErrRebuild.
func (s *Simulator) engines() (cur, enf *evaluator.Engine, err error) {
	cur, ok1 := s.current.(*evaluator.Engine)
	enf, ok2 := s.enforce.(*evaluator.Engine)
	if !ok1 || !ok2 {
		return nil, nil, ErrRebuild
	}
	return cur, enf, nil
}

// compilerFor returns the Simulator's compiler, building it on first use from the
// snapshot New compiled (which gives the same result, so no policy changes).
func (s *Simulator) compilerFor() (*compile.Compiler, error) {
	if s.compiler == nil {
		k, err := compile.NewCompiler(s.snap, s.opts.Compile)
		if err != nil {
			return nil, fmt.Errorf("compile: %w", err)
		}
		s.compiler = k
	}
	return s.compiler, nil
}

// applyCompiled hands the enforced engine the compiled policies in d and the cluster
// policies named in changed, resolved as Merge does: a compiled policy wins over the
// cluster's of the same name, and a compiled policy gone uncovers the cluster's.
func (s *Simulator) applyCompiled(k *compile.Compiler, enf *evaluator.Engine, d *compile.Delta, changed []evaluator.PolicyRef, imp *impact) {
	refs := make(map[evaluator.PolicyRef]bool, len(d.Upsert)+len(d.Remove)+len(changed))
	for _, p := range d.Upsert {
		refs[evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}] = true
	}
	for _, ref := range d.Remove {
		refs[ref] = true
	}
	for _, ref := range changed {
		refs[ref] = true
	}
	if len(refs) == 0 {
		return
	}
	var snapshot map[evaluator.PolicyRef]*networkingv1.NetworkPolicy
	var upsert []*networkingv1.NetworkPolicy
	var remove []evaluator.PolicyRef
	for ref := range refs {
		var p *networkingv1.NetworkPolicy
		if k != nil {
			p = k.Policy(ref.Namespace, ref.Name)
		}
		if p == nil {
			if snapshot == nil {
				snapshot = policiesByRef(s.snap.NetworkPolicies)
			}
			p = snapshot[ref]
		}
		if p == nil {
			remove = append(remove, ref)
		} else {
			upsert = append(upsert, p)
		}
	}
	all := slices.Collect(maps.Keys(refs))
	imp.note(enf, all)
	enf.UpdatePolicies(upsert, remove)
	imp.note(enf, all)

	if k == nil || (len(d.Upsert) == 0 && len(d.Remove) == 0) {
		return
	}
	s.compiled = k.Result()
	for _, ref := range d.Remove {
		delete(s.origins, ref)
	}
	for _, p := range d.Upsert {
		ref := evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}
		delete(s.origins, ref)
		var origins []compile.RuleOrigin
		if raw, ok := p.Annotations[compile.RulesAnnotation]; ok && json.Unmarshal([]byte(raw), &origins) == nil {
			s.origins[ref] = origins
		}
	}
}

func policiesByRef(ps []*networkingv1.NetworkPolicy) map[evaluator.PolicyRef]*networkingv1.NetworkPolicy {
	out := make(map[evaluator.PolicyRef]*networkingv1.NetworkPolicy, len(ps))
	for _, p := range ps {
		out[evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}] = p
	}
	return out
}

// Reload says what Live.Update did.
type Reload struct {
	// Took is the whole update: recompilation, engine updates and re-judging.
	Took time.Duration
	// Rejudged stored edges, of Stored.
	Rejudged, Stored int
}

// Update moves the live simulator to next in place (see Simulator.Update) and re-judges
// the stored edges whose verdicts the change can have moved: all of them when pods, nodes
// or namespaces changed, else those with a peer in a namespace whose policies changed (a
// ClientIntents event recompiles the policies of its servers' and clients' namespaces
// only). On ErrRebuild, or any error, the simulator is unchanged: build one with New and
// Swap it in. Flows wait meanwhile, so none is judged by a half-updated simulator.
func (l *Live) Update(next *cluster.Snapshot, opts Options) (Reload, error) {
	start := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	imp, err := l.sim.update(next, opts)
	if err != nil {
		return Reload{}, err
	}
	l.swapLocked(l.sim)
	r := Reload{Stored: l.store.Usage().Edges}
	r.Rejudged = imp.rejudge(l.store, l.sim.JudgeEdge)
	r.Took = l.loadedLocked(start)
	return r, nil
}

// UpdateStore moves s to next in place, as Update does, and re-judges the edges of store
// whose verdicts the change can have moved, as Live.Update does: it is for callers that
// keep a store of their own per Simulator (the rollout controller). It returns how many
// edges it re-judged. On ErrRebuild, or any error, s and store are unchanged.
func (s *Simulator) UpdateStore(next *cluster.Snapshot, opts Options, store *soak.Store) (int, error) {
	imp, err := s.update(next, opts)
	if err != nil {
		return 0, err
	}
	return imp.rejudge(store, s.JudgeEdge), nil
}

// rejudge re-judges the edges of store the change can have moved.
func (i impact) rejudge(store *soak.Store, judge soak.Judge) int {
	switch {
	case i.all:
		store.Reevaluate(judge)
		return store.Usage().Edges
	case i.some():
		return store.ReevaluateWhere(judge, i.asSource, i.asDestination)
	}
	return 0
}
