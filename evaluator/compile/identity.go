package compile

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// index answers the compiler's questions about a snapshot: which identities carry a
// name, which pods resolve to an identity, and which selectors pick exactly them.
type index struct {
	s *cluster.Snapshot
	// byName lists the identities of namespace/name, sorted by kind.
	byName   map[string][]cluster.WorkloadID
	podsOf   map[cluster.WorkloadID][]*cluster.Pod
	podsInNS map[string][]*cluster.Pod
	// sels memoizes selectorsOf: a rule names an identity once per caller, and
	// converting its selectors (LabelSelectorAsSelector validates every key and value
	// with regular expressions) was most of a compile.
	sels map[cluster.WorkloadID][]selector
	// usable memoizes usableSelectorsOf.
	usable map[cluster.WorkloadID][]selector
}

func newIndex(s *cluster.Snapshot) *index {
	ix := &index{
		s:        s,
		byName:   map[string][]cluster.WorkloadID{},
		podsOf:   map[cluster.WorkloadID][]*cluster.Pod{},
		podsInNS: map[string][]*cluster.Pod{},
		sels:     map[cluster.WorkloadID][]selector{},
		usable:   map[cluster.WorkloadID][]selector{},
	}
	ids := map[cluster.WorkloadID]bool{}
	for id := range s.Workloads {
		ids[id] = true
	}
	for _, p := range s.Pods {
		ix.podsInNS[p.Namespace] = append(ix.podsInNS[p.Namespace], p)
		if p.Workload.IsZero() {
			continue
		}
		ids[p.Workload] = true
		ix.podsOf[p.Workload] = append(ix.podsOf[p.Workload], p)
	}
	for id := range ids {
		k := id.Namespace + "/" + id.Name
		ix.byName[k] = append(ix.byName[k], id)
	}
	for _, l := range ix.byName {
		sort.Slice(l, func(i, j int) bool { return l[i].Kind < l[j].Kind })
	}
	return ix
}

// resolve returns the identities an intent's (namespace, name, kind) names. Without a
// kind every identity of that name matches, as Otterize does. An identity without a kind
// (a workload-name annotation) matches any kind, since the annotation is the identity.
func (ix *index) resolve(ns, name, kind string) []cluster.WorkloadID {
	var out []cluster.WorkloadID
	for _, id := range ix.byName[ns+"/"+name] {
		if kind == "" || id.Kind == "" || strings.EqualFold(id.Kind, kind) {
			out = append(out, id)
		}
	}
	return out
}

// sharesName reports whether another identity in the namespace has id's name, which is
// when policy names must carry the kind.
func (ix *index) sharesName(id cluster.WorkloadID) bool {
	return len(ix.byName[id.Namespace+"/"+id.Name]) > 1
}

// selector is a normalized label selector, its canonical key, and its compiled form
// (nil when it does not convert: it then matches nothing, as in the cluster).
type selector struct {
	sel *metav1.LabelSelector
	key string
	ls  labels.Selector
}

// selectorsOf returns the distinct selectors that together pick exactly the pods of id:
// the root controller's selector for controlled pods, the full label set for pods whose
// identity comes from the workload-name annotation or that have no controller. A
// workload with no pods in the snapshot falls back to its own selector. Sorted by key.
// The result is shared: callers copy before they modify.
func (ix *index) selectorsOf(id cluster.WorkloadID) []selector {
	if out, ok := ix.sels[id]; ok {
		return out
	}
	out := ix.computeSelectors(id)
	ix.sels[id] = out
	return out
}

// usableSelectorsOf is selectorsOf without the empty selector, which would pick every
// pod of the namespace. Shared like selectorsOf.
func (ix *index) usableSelectorsOf(id cluster.WorkloadID) []selector {
	if out, ok := ix.usable[id]; ok {
		return out
	}
	var out []selector
	for _, s := range ix.selectorsOf(id) {
		if !s.empty() {
			out = append(out, s)
		}
	}
	ix.usable[id] = out
	return out
}

func (ix *index) computeSelectors(id cluster.WorkloadID) []selector {
	seen := map[string]selector{}
	add := func(ls *metav1.LabelSelector) {
		s := newSelector(ls)
		seen[s.key] = s
	}
	// The pods of a controller carry equal copies of its selector: normalizing (and
	// validating) costs far more than comparing, so each distinct one is normalized once.
	var raw []*metav1.LabelSelector
	for _, p := range ix.podsOf[id] {
		if p.Selector == nil {
			add(&metav1.LabelSelector{MatchLabels: p.Labels})
			continue
		}
		if slices.ContainsFunc(raw, func(r *metav1.LabelSelector) bool { return reflect.DeepEqual(r, p.Selector) }) {
			continue
		}
		raw = append(raw, p.Selector)
		add(p.Selector)
	}
	if len(seen) == 0 {
		if w := ix.s.Workloads[id]; w != nil {
			switch {
			case w.Selector != nil:
				add(w.Selector)
			case len(w.Template) > 0:
				add(&metav1.LabelSelector{MatchLabels: w.Template})
			}
		}
	}
	out := make([]selector, 0, len(seen))
	for _, s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// newSelector copies ls into its normal form (sorted expressions and values, nil for
// empty parts), so that equal selectors render and compare equal.
func newSelector(ls *metav1.LabelSelector) selector {
	n := &metav1.LabelSelector{}
	if len(ls.MatchLabels) > 0 {
		n.MatchLabels = make(map[string]string, len(ls.MatchLabels))
		for k, v := range ls.MatchLabels {
			n.MatchLabels[k] = v
		}
	}
	for _, e := range ls.MatchExpressions {
		c := *e.DeepCopy()
		if len(c.Values) == 0 {
			c.Values = nil
		}
		sort.Strings(c.Values)
		n.MatchExpressions = append(n.MatchExpressions, c)
	}
	sort.Slice(n.MatchExpressions, func(i, j int) bool {
		a, b := n.MatchExpressions[i], n.MatchExpressions[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Operator != b.Operator {
			return a.Operator < b.Operator
		}
		return strings.Join(a.Values, ",") < strings.Join(b.Values, ",")
	})
	s := selector{sel: n, key: selectorKey(n)}
	if compiled, err := metav1.LabelSelectorAsSelector(n); err == nil {
		s.ls = compiled
	}
	return s
}

func selectorKey(ls *metav1.LabelSelector) string {
	// encoding/json sorts map keys, so equal selectors give equal bytes.
	b, err := json.Marshal(ls)
	if err != nil {
		// A LabelSelector holds only strings; Marshal cannot fail on it.
		panic(err)
	}
	return string(b)
}

func (s selector) empty() bool {
	return len(s.sel.MatchLabels) == 0 && len(s.sel.MatchExpressions) == 0
}

func (s selector) matches(set labels.Set) bool { return s.ls != nil && s.ls.Matches(set) }

func (s selector) String() string { return metav1.FormatLabelSelector(s.sel) }

// namespaceSelector selects namespace ns by the label the API server puts on every
// namespace, so the peer cannot drift with user-managed labels.
func namespaceSelector(ns string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}
}

// strays names the pods' owners, other than id, that s also selects in ns, sorted: the
// identities a policy built on s would cover without being asked to.
func (ix *index) strays(ns string, s selector, id cluster.WorkloadID) []string {
	found := map[string]bool{}
	for _, p := range ix.podsInNS[ns] {
		if p.Workload == id || !s.matches(p.Labels) {
			continue
		}
		if p.Workload.IsZero() {
			found["Pod "+p.Key()] = true
		} else {
			found[workloadObject(p.Workload)] = true
		}
	}
	out := make([]string, 0, len(found))
	for w := range found {
		out = append(out, w)
	}
	sort.Strings(out)
	return out
}

func sortIDs(ids []cluster.WorkloadID) {
	sort.Slice(ids, func(i, j int) bool { return idLess(ids[i], ids[j]) })
}

func idLess(a, b cluster.WorkloadID) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Kind < b.Kind
}

// workloadObject names an identity for warnings: "Deployment shop/cart".
func workloadObject(id cluster.WorkloadID) string {
	kind := id.Kind
	if kind == "" {
		kind = "Workload"
	}
	return kind + " " + id.Namespace + "/" + id.Name
}
