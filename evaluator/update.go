package evaluator

import (
	"slices"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Incremental updates keep an Engine equal to NewEngine over the changed snapshot and
// policy set (update_test.go holds it to that, and to the Oracle, after random sequences
// of changes) at the cost of the change rather than of the cluster:
//
//   - A pod event interns the pod's identity (matching only the selectors filed under
//     its labels) and copies one shard of the pod table. Verdicts are keyed by identity,
//     so no cached verdict changes and the cache is kept.
//   - A namespace event rematches the namespace selectors against one namespace.
//   - A policy event compiles the changed policies, matches selectors that are new to
//     the engine against the existing identities, and recomputes which policies isolate
//     the identities of the namespaces involved.
//
// Namespace and policy events can change any verdict that involves the namespace, and
// start a new verdict cache. Updates serialize with each other and with the miss path;
// the hot path keeps reading the previous state until the new one is published.

// UpdatePod adds p, or replaces the pod with its namespace and name. The engine keeps p:
// it must not be modified afterwards.
func (e *Engine) UpdatePod(p *cluster.Pod) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := podName{p.Namespace, p.Name}
	if old, ok := e.tracked[key]; ok {
		e.untrackLocked(old)
	}
	e.tracked[key] = p
	if p.HostNetwork {
		return // judged as its node, never as a pod
	}
	id := e.internLocked(p)
	id.pods++
	e.pods.set(p, e.entryLocked(p, id, true))
}

// DeletePod forgets the pod namespace/name. Connections that still name it are judged
// by its content, like any pod the engine does not track.
func (e *Engine) DeletePod(namespace, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := podName{namespace, name}
	if old, ok := e.tracked[key]; ok {
		e.untrackLocked(old)
		delete(e.tracked, key)
	}
}

func (e *Engine) untrackLocked(p *cluster.Pod) {
	if pe, ok := e.pods.get(p); ok && pe.tracked {
		pe.ident.pods--
		e.pods.remove(p)
	}
}

// UpdateNamespace sets the labels of namespace ns.Name.
func (e *Engine) UpdateNamespace(ns *cluster.Namespace) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nsLabels[ns.Name] = ns.Labels
	e.relabelLocked(ns.Name)
}

// DeleteNamespace forgets the labels of namespace name: like a namespace the snapshot
// does not list, it keeps only the kubernetes.io/metadata.name label.
func (e *Engine) DeleteNamespace(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.nsLabels, name)
	e.relabelLocked(name)
}

func (e *Engine) relabelLocked(name string) {
	ns, ok := e.namespaces[name]
	if !ok {
		return // no identity refers to it yet; it is created with the new labels
	}
	l, ok := e.nsLabels[name]
	if !ok {
		l = cluster.SynthesizeNamespace(name).Labels
	}
	ns.labels = l
	ns.sels = e.nsSels.matching(l, nil)
	e.publishLocked(true)
}

// UpdatePolicies removes the policies named in remove, then adds or replaces (by
// namespace/name) the policies in upsert; when upsert names a policy twice, the last
// one wins, as in NewEngine. Nil entries are ignored. The engine keeps the policies:
// they must not be modified afterwards.
func (e *Engine) UpdatePolicies(upsert []*networkingv1.NetworkPolicy, remove []PolicyRef) {
	e.mu.Lock()
	defer e.mu.Unlock()
	affected := map[string]bool{}
	for _, ref := range remove {
		if _, ok := e.policies[ref]; !ok {
			continue
		}
		delete(e.policies, ref)
		list := e.byNamespace[ref.Namespace]
		i := slices.IndexFunc(list, func(p *enginePolicy) bool { return p.ref == ref })
		e.setNamespacePolicies(ref.Namespace, slices.Delete(slices.Clone(list), i, i+1))
		affected[ref.Namespace] = true
	}
	for _, p := range dedupe(upsert) {
		pol := e.compilePolicy(p)
		e.policies[pol.ref] = pol
		list := slices.Clone(e.byNamespace[p.Namespace])
		i, found := slices.BinarySearchFunc(list, pol.ref, func(q *enginePolicy, r PolicyRef) int {
			switch {
			case q.ref.Name < r.Name:
				return -1
			case q.ref.Name > r.Name:
				return 1
			}
			return 0
		})
		if found {
			list[i] = pol
		} else {
			list = slices.Insert(list, i, pol)
		}
		e.setNamespacePolicies(p.Namespace, list)
		affected[p.Namespace] = true
	}
	if len(affected) == 0 {
		return
	}
	for name := range affected {
		if ns, ok := e.namespaces[name]; ok {
			for id := range ns.idents {
				e.isolateLocked(id)
			}
		}
	}
	e.publishLocked(true)
}

func (e *Engine) setNamespacePolicies(ns string, list []*enginePolicy) {
	if len(list) == 0 {
		delete(e.byNamespace, ns)
		return
	}
	e.byNamespace[ns] = list
}

// Isolates reports the directions the policy named ref isolates in e (its effective
// policyTypes), and ok false when e holds no such policy. A caller that knows which
// directions a policy change touched knows which connections it can have re-judged: an
// ingress-only policy never changes a verdict on egress, and the reverse.
func (e *Engine) Isolates(ref PolicyRef) (in, out, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.policies[ref]
	if !ok {
		return false, false, false
	}
	return p.isolates[ingress], p.isolates[egress], true
}
