package evaluator

import (
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// podIdent is everything a pod contributes to a verdict: its namespace, labels and named
// container ports. Pods that agree on those (the replicas of a workload) share one
// identity, and with it every cached verdict.
//
// The content fields are fixed at interning. The policy-derived fields (sels, isolating,
// isolated) change when policies do, under Engine.mu, which is also what judge holds
// while reading them; the hot path reads only id.
type podIdent struct {
	id     uint32 // never reused, so a cache key cannot outlive its meaning
	key    string
	ns     *nsIdent
	labels labels.Set
	// named holds the container ports that have a name, with the protocol defaulted.
	named []cluster.ContainerPort
	// sels are the pod selectors that select the identity, sorted.
	sels []int32
	// isolating[dir] lists the policies that select the identity and isolate it for
	// dir, sorted by name, and isolated[dir] their names, shared by every verdict and
	// therefore never modified once published (a change builds new slices).
	isolating [2][]*enginePolicy
	isolated  [2][]PolicyRef
	// pods counts the tracked pods (snapshot pods and their updates) with this
	// identity; identities of untracked pods alone are pruned when they pile up.
	pods int
}

func (id *podIdent) selectedBy(sel int) bool { return sortedHas(id.sels, sel) }

// nsIdent is a namespace with its labels and the namespace selectors that select it.
type nsIdent struct {
	name   string
	labels labels.Set
	sels   []int32
	idents map[*podIdent]struct{} // identities in the namespace
}

// identKey appends to buf an injective encoding of an identity: every string is
// length-prefixed, so no label value can forge a separator. keys is scratch space for
// sorting the label keys. Interning a snapshot's pods looks every pod up by this key,
// so it is built in reused buffers and becomes a string only for a new identity.
func identKey(buf []byte, keys []string, ns string, l labels.Set, named []cluster.ContainerPort) ([]byte, []string) {
	keys = keys[:0]
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	field := func(s string) {
		buf = strconv.AppendInt(buf, int64(len(s)), 10)
		buf = append(buf, ':')
		buf = append(buf, s...)
	}
	field(ns)
	buf = strconv.AppendInt(buf, int64(len(keys)), 10)
	for _, k := range keys {
		field(k)
		field(l[k])
	}
	for _, cp := range named {
		field(cp.Name)
		field(string(cp.Protocol))
		buf = strconv.AppendInt(buf, int64(cp.Port), 10)
		buf = append(buf, ';')
	}
	return buf, keys
}

// namedPorts appends to out the ports a named NetworkPolicy port can resolve to, in a
// canonical order without duplicates.
func namedPorts(out []cluster.ContainerPort, ports []cluster.ContainerPort) []cluster.ContainerPort {
	out = out[:0]
	for _, cp := range ports {
		if cp.Name != "" {
			out = append(out, cluster.ContainerPort{Name: cp.Name, Port: cp.Port, Protocol: containerProtocol(cp)})
		}
	}
	slices.SortFunc(out, func(a, b cluster.ContainerPort) int {
		if a.Name != b.Name {
			return strings.Compare(a.Name, b.Name)
		}
		if a.Protocol != b.Protocol {
			return strings.Compare(string(a.Protocol), string(b.Protocol))
		}
		return int(a.Port) - int(b.Port)
	})
	return slices.Compact(out)
}

func itoa(i int) string { return strconv.Itoa(i) }

// internLocked returns the identity of p, creating it when new. e.mu must be held.
func (e *Engine) internLocked(p *cluster.Pod) *podIdent {
	e.scratchPorts = namedPorts(e.scratchPorts, p.Ports)
	e.scratchKey, e.scratchKeys = identKey(e.scratchKey[:0], e.scratchKeys, p.Namespace, p.Labels, e.scratchPorts)
	if id, ok := e.idents[string(e.scratchKey)]; ok {
		return id
	}
	key := string(e.scratchKey)
	e.nextID++
	id := &podIdent{id: e.nextID, key: key, ns: e.namespaceLocked(p.Namespace), labels: p.Labels, named: slices.Clip(slices.Clone(e.scratchPorts))}
	id.sels = e.podSels.matching(p.Labels, nil)
	e.isolateLocked(id)
	e.idents[key] = id
	id.ns.idents[id] = struct{}{}
	for k, v := range p.Labels {
		addToSet(e.byLabel, labelKV{k, v}, id)
		addToSet(e.byLabelKey, k, id)
	}
	return id
}

func addToSet[K comparable](m map[K]map[*podIdent]struct{}, k K, id *podIdent) {
	set, ok := m[k]
	if !ok {
		set = map[*podIdent]struct{}{}
		m[k] = set
	}
	set[id] = struct{}{}
}

func removeFromSet[K comparable](m map[K]map[*podIdent]struct{}, k K, id *podIdent) {
	if set, ok := m[k]; ok {
		delete(set, id)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// isolateLocked recomputes which policies isolate id. It builds new slices: the old ones
// may be held by verdicts callers still read.
func (e *Engine) isolateLocked(id *podIdent) {
	var isolating [2][]*enginePolicy
	var isolated [2][]PolicyRef
	for _, pol := range e.byNamespace[id.ns.name] {
		if pol.podSel < 0 || !id.selectedBy(pol.podSel) {
			continue
		}
		for dir := range 2 {
			if pol.isolates[dir] {
				isolating[dir] = append(isolating[dir], pol)
				isolated[dir] = append(isolated[dir], pol.ref)
			}
		}
	}
	for dir := range 2 {
		// Clipped so that a caller appending to a verdict's Isolated gets a copy
		// instead of writing into storage that other verdicts share.
		id.isolating[dir] = isolating[dir]
		id.isolated[dir] = slices.Clip(isolated[dir])
	}
}

// namespaceLocked returns the namespace called name, creating it from the known labels
// (or the metadata.name label alone, as for namespaces the snapshot does not list).
func (e *Engine) namespaceLocked(name string) *nsIdent {
	if ns, ok := e.namespaces[name]; ok {
		return ns
	}
	l, ok := e.nsLabels[name]
	if !ok {
		l = cluster.SynthesizeNamespace(name).Labels
	}
	ns := &nsIdent{name: name, labels: l, idents: map[*podIdent]struct{}{}}
	ns.sels = e.nsSels.matching(l, nil)
	e.namespaces[name] = ns
	return ns
}

// pruneLocked drops identities no tracked pod has, once they outnumber the tracked
// ones: pods outside the snapshot (created after it, or copies) are interned on sight,
// and a long-running engine must not keep every identity it ever saw. Untracked pods
// are forgotten with them and interned again on their next evaluation.
func (e *Engine) pruneLocked() {
	tracked := 0
	for _, id := range e.idents {
		if id.pods > 0 {
			tracked++
		}
	}
	if len(e.idents) <= 2*tracked+minPrunable {
		return
	}
	e.pods.dropUntracked()
	for key, id := range e.idents {
		if id.pods == 0 {
			delete(e.idents, key)
			delete(id.ns.idents, id)
			for k, v := range id.labels {
				removeFromSet(e.byLabel, labelKV{k, v}, id)
				removeFromSet(e.byLabelKey, k, id)
			}
		}
	}
}

// minPrunable is how many untracked identities the engine keeps regardless.
const minPrunable = 1 << 12
