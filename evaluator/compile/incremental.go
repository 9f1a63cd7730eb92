package compile

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// Compiler is a compilation kept up to date as ClientIntents change, at the cost of the
// change rather than of the cluster. Its Result after any sequence of updates is
// byte-identical to Compile of the latest snapshot (incremental_test.go holds it to
// that).
//
// A compilation is a sum of independent parts, and the Compiler keeps each part with
// what it depends on:
//
//   - each ClientIntents contributes rules to the servers and clients it names, and
//     warnings; they are kept per ClientIntents, so one can be withdrawn;
//   - each server's allow policies (and each client's egress policies) are rendered from
//     the union of the contributions naming it, and redone only when one of them changes;
//   - the external allowances of a namespace depend only on the policies of that
//     namespace, so they are redone for the namespaces whose allow policies changed;
//   - names depend only on the plans that want the same name, so only those groups are
//     renamed;
//   - warnings are counted by how many parts raise them, since a set cannot forget.
//
// The cluster's own NetworkPolicies are read only by the external check of their
// namespace: Update redoes those namespaces' external allowances. Anything else (pods,
// workloads, Services, namespaces) can move identities and selectors under every part:
// Update recompiles then, and still reports only the policies that changed.
//
// A Compiler is not safe for concurrent use. Policies it has returned are never modified
// afterwards: a renamed policy is a new object.
type Compiler struct {
	s  *cluster.Snapshot
	o  Options // with defaults
	c  *compiler
	ns []string // enforced, sorted

	cis     map[string]*ciPart // by ClientIntents key
	servers map[cluster.WorkloadID]*identityPart
	clients map[cluster.WorkloadID]*identityPart
	// serverCIs and clientCIs index the ClientIntents contributing to an identity.
	serverCIs map[cluster.WorkloadID]map[string]bool
	clientCIs map[cluster.WorkloadID]map[string]bool
	externals map[string]*identityPart // by namespace
	exposed   map[string][]*exposure   // by namespace
	// snapshotPolicies are the snapshot's policies by namespace, for the external check.
	snapshotPolicies map[string][]*networkingv1.NetworkPolicy
	// byNS are the non-external plans of each namespace, for the external check.
	byNS map[string]map[*plan]bool

	consulted  map[cluster.WorkloadID]int
	idWarnings map[cluster.WorkloadID][]Warning
	warnings   map[Warning]int
	groups     map[string]*nameGroup // by namespace/base name
	// named is the plan holding each name; out what was last handed out under it.
	named map[evaluator.PolicyRef]*plan
	out   map[evaluator.PolicyRef]*networkingv1.NetworkPolicy
	// result is the last Result built, patched with each delta rather than sorted
	// again; warningsMoved says a warning came or went since it was built.
	result        *Result
	warningsMoved bool

	// Per update: groups to rename, names that may have changed hands.
	dirtyGroups map[string]bool
	candidates  map[evaluator.PolicyRef]bool
}

// ciPart is what the ClientIntents of one namespace/name contribute.
type ciPart struct {
	servers  map[cluster.WorkloadID]*ruleSet
	clients  map[cluster.WorkloadID]*egressSet
	warnings []Warning
}

// identityPart is a rendered part: plans, the identities whose selectors they use, and
// the warnings they raised.
type identityPart struct {
	plans     []*plan
	consulted []cluster.WorkloadID
	warnings  []Warning
}

type nameGroup struct {
	plans   map[*plan]bool
	warning *Warning
}

// Delta is what an update changed in the compiled policy set: what to hand to
// evaluator.Engine.UpdatePolicies.
type Delta struct {
	// Upsert are the new and changed policies, sorted by namespace/name.
	Upsert []*networkingv1.NetworkPolicy
	// Remove names the policies gone, sorted.
	Remove []evaluator.PolicyRef
}

// Empty reports whether nothing changed.
func (d *Delta) Empty() bool { return len(d.Upsert) == 0 && len(d.Remove) == 0 }

// NewCompiler compiles s and keeps what later updates need.
func NewCompiler(s *cluster.Snapshot, o Options) (*Compiler, error) {
	if s == nil {
		return nil, errors.New("compile: nil snapshot")
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("compile: invalid options: %w", err)
	}
	o = o.withDefaults()
	s = withSortedIntents(s)
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = TargetedNamespaces(s)
	}
	k := &Compiler{
		s: s,
		o: o,
		c: &compiler{
			s:        s,
			o:        o,
			ix:       newIndex(s),
			enforced: map[string]bool{},
		},
		cis:              map[string]*ciPart{},
		servers:          map[cluster.WorkloadID]*identityPart{},
		clients:          map[cluster.WorkloadID]*identityPart{},
		serverCIs:        map[cluster.WorkloadID]map[string]bool{},
		clientCIs:        map[cluster.WorkloadID]map[string]bool{},
		externals:        map[string]*identityPart{},
		exposed:          map[string][]*exposure{},
		snapshotPolicies: map[string][]*networkingv1.NetworkPolicy{},
		byNS:             map[string]map[*plan]bool{},
		consulted:        map[cluster.WorkloadID]int{},
		idWarnings:       map[cluster.WorkloadID][]Warning{},
		warnings:         map[Warning]int{},
		groups:           map[string]*nameGroup{},
		named:            map[evaluator.PolicyRef]*plan{},
		out:              map[evaluator.PolicyRef]*networkingv1.NetworkPolicy{},
		dirtyGroups:      map[string]bool{},
		candidates:       map[evaluator.PolicyRef]bool{},
	}
	for _, ns := range namespaces {
		k.c.enforced[ns] = true
	}
	k.ns = sortedKeys(k.c.enforced)
	for _, p := range s.NetworkPolicies {
		k.snapshotPolicies[p.Namespace] = append(k.snapshotPolicies[p.Namespace], p)
	}

	// The parts that depend on nothing but the enforced namespaces and the options.
	var statics []*plan
	for _, ns := range k.ns {
		statics = append(statics, k.c.defaultDeny(ns))
		for _, a := range o.AlwaysAllow {
			statics = append(statics, k.c.alwaysAllow(ns, a))
		}
	}
	for _, pl := range statics {
		k.addPlan(pl, true)
	}
	if o.External != ExternalOff {
		k.c.warnings = map[Warning]bool{}
		for _, e := range k.c.exposures() {
			k.exposed[e.svc.Namespace] = append(k.exposed[e.svc.Namespace], e)
		}
		k.count(setList(k.c.warnings), 1)
	}

	keys := make([]string, 0, len(s.Intents))
	for _, ci := range s.Intents {
		if len(keys) == 0 || keys[len(keys)-1] != ci.Key() {
			keys = append(keys, ci.Key())
		}
	}
	k.apply(keys, k.ns)
	k.delta()
	return k, nil
}

// Snapshot is the snapshot the compilation reflects.
func (k *Compiler) Snapshot() *cluster.Snapshot { return k.s }

// Result is the compilation, as Compile of Snapshot returns it. It is shared: do not
// modify it.
func (k *Compiler) Result() *Result {
	if k.result != nil {
		return k.result
	}
	res := &Result{Namespaces: slices.Clone(k.ns)}
	res.Policies = make([]*networkingv1.NetworkPolicy, 0, len(k.out))
	for _, p := range k.out {
		res.Policies = append(res.Policies, p)
	}
	sortPolicies(res.Policies)
	res.Warnings = k.sortedWarnings()
	k.result = res
	return res
}

func (k *Compiler) sortedWarnings() []Warning {
	var out []Warning
	for w := range k.warnings {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Message < b.Message
	})
	return out
}

// UpdateIntents moves the compilation to next, which must differ from Snapshot at most in
// the ClientIntents named by keys (namespace/name: added, changed or removed), and list
// its ClientIntents sorted by key (as Build and ReplaceIntents do). When the
// enforced namespaces follow the intents (Options.Namespaces empty) and they change, it
// recompiles.
func (k *Compiler) UpdateIntents(next *cluster.Snapshot, keys []string) (*Delta, error) {
	if next == nil {
		return nil, errors.New("compile: nil snapshot")
	}
	if len(k.o.Namespaces) == 0 && !slices.Equal(TargetedNamespaces(next), k.ns) {
		return k.recompile(next)
	}
	k.s = next
	k.c.s = next
	k.c.ix.s = next
	k.apply(keys, nil)
	return k.delta(), nil
}

// Update moves the compilation to next, whatever changed. ClientIntents are updated
// incrementally; any other difference that the compilation reads recompiles.
func (k *Compiler) Update(next *cluster.Snapshot) (*Delta, error) {
	if next == nil {
		return nil, errors.New("compile: nil snapshot")
	}
	if !sameSlice(next.Intents, k.s.Intents) {
		next = withSortedIntents(next)
	}
	if !sameCluster(k.s, next) {
		if changed, ok := policiesOnly(k.s, next); ok {
			return k.updatePolicies(next, changed)
		}
		return k.recompile(next)
	}
	return k.UpdateIntents(next, ChangedIntents(k.s, next))
}

// samePods reports whether the compilation reads the same from two pod lists. It reads
// pods only through the index, and there only as a set per namespace of what
// compileView compares: the selectors of an identity (its pods' controller selectors or
// labels), the identities a Service or a selector picks (labels, identity), the named
// ports a rule resolves on a pod, host networking, the address family of the external
// probe, and, for a pod of no workload, its name (warnings name it). Every use is "any
// pod" or "the distinct values": so two lists whose namespaces hold the same distinct
// views compile alike, whatever pods come, go, or change otherwise (a rollout's new
// replica, a pod rescheduled, new addresses). TestCompilerRandomPodEvents holds Update
// to Compile on that.
func samePods(a, b []*cluster.Pod) bool {
	if sameSlice(a, b) {
		return true
	}
	same := true
	// Only the pods that differ can move the set: a view leaves it when its last pod goes,
	// and joins it when its first pod comes.
	// The lookups search lists sorted by key, as snapshots keep them; DiffPods says
	// whether they are.
	sorted := cluster.DiffPods(a, b, func(p *cluster.Pod) {
		if same && !hasView(a, p) {
			same = false
		}
		if same {
			if old := podNamed(a, p.Namespace, p.Name); old != nil && !hasView(b, old) {
				same = false
			}
		}
	}, func(p *cluster.Pod) {
		if same && !hasView(b, p) {
			same = false
		}
	})
	return same && sorted
}

// hasView reports whether pods (sorted by key) hold a pod of p's namespace with p's view.
func hasView(pods []*cluster.Pod, p *cluster.Pod) bool {
	return slices.ContainsFunc(cluster.PodsIn(pods, p.Namespace), func(q *cluster.Pod) bool { return sameView(q, p) })
}

func podNamed(pods []*cluster.Pod, namespace, name string) *cluster.Pod {
	key := &cluster.Pod{Namespace: namespace, Name: name}
	if i, ok := slices.BinarySearchFunc(pods, key, cluster.ComparePodKeys); ok {
		return pods[i]
	}
	return nil
}

// sameView compares what the compilation reads of a pod (see samePods).
func sameView(a, b *cluster.Pod) bool {
	if a.Workload.IsZero() && a.Name != b.Name {
		return false
	}
	return a.Namespace == b.Namespace && a.Workload == b.Workload && a.HostNetwork == b.HostNetwork &&
		maps.Equal(a.Labels, b.Labels) && slices.Equal(a.Ports, b.Ports) && onlyIPv6(a) == onlyIPv6(b) &&
		reflect.DeepEqual(a.Selector, b.Selector)
}

// sameSlice reports whether a and b are one slice: what snapshots that share their
// objects with the last hand over for what did not change.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// policiesOnly reports whether a and b differ, apart from ClientIntents, in their
// NetworkPolicies alone (and in pods the compilation cannot tell apart, see samePods),
// and lists the namespaces whose policies differ, sorted.
func policiesOnly(a, b *cluster.Snapshot) ([]string, bool) {
	same := samePods(a.Pods, b.Pods) &&
		equalSlices(a.Services, b.Services) &&
		equalSlices(a.Ingresses, b.Ingresses) &&
		reflect.DeepEqual(a.Workloads, b.Workloads) &&
		reflect.DeepEqual(a.Namespaces, b.Namespaces)
	if !same {
		return nil, false
	}
	if slices.Equal(a.NetworkPolicies, b.NetworkPolicies) {
		return nil, true
	}
	before, after := policiesByNamespace(a.NetworkPolicies), policiesByNamespace(b.NetworkPolicies)
	var changed []string
	for ns, ps := range after {
		if !equalSlices(before[ns], ps) {
			changed = append(changed, ns)
		}
	}
	for ns := range before {
		if _, ok := after[ns]; !ok {
			changed = append(changed, ns)
		}
	}
	sort.Strings(changed)
	return changed, true
}

func policiesByNamespace(ps []*networkingv1.NetworkPolicy) map[string][]*networkingv1.NetworkPolicy {
	out := map[string][]*networkingv1.NetworkPolicy{}
	for _, p := range ps {
		out[p.Namespace] = append(out[p.Namespace], p)
	}
	return out
}

// updatePolicies moves the compilation to next, which differs from Snapshot in the
// cluster's own NetworkPolicies of the namespaces changed (and perhaps in ClientIntents).
// The compilation reads the cluster's policies in one place: whether an exposed Service
// is blocked from outside (ExternalOnlyIfBlocked), which asks the policies of the
// Service's namespace only. So only those namespaces' external allowances are redone.
func (k *Compiler) updatePolicies(next *cluster.Snapshot, changed []string) (*Delta, error) {
	if len(k.o.Namespaces) == 0 && !slices.Equal(TargetedNamespaces(next), k.ns) {
		return k.recompile(next)
	}
	keys := ChangedIntents(k.s, next)
	k.s = next
	k.c.s = next
	k.c.ix.s = next
	k.snapshotPolicies = policiesByNamespace(next.NetworkPolicies)
	k.apply(keys, changed)
	return k.delta(), nil
}

// withSortedIntents returns s, or a copy of it with its ClientIntents sorted by key when
// they are not (a snapshot assembled by hand): the Compiler finds them by binary search.
func withSortedIntents(s *cluster.Snapshot) *cluster.Snapshot {
	less := func(a, b *intents.ClientIntents) int { return strings.Compare(a.Key(), b.Key()) }
	if slices.IsSortedFunc(s.Intents, less) {
		return s
	}
	c := *s
	c.Intents = slices.Clone(s.Intents)
	slices.SortStableFunc(c.Intents, less)
	return &c
}

// ChangedIntents lists, sorted, the keys of the ClientIntents that differ between prev
// and next: added, removed or changed.
func ChangedIntents(prev, next *cluster.Snapshot) []string {
	if sameSlice(prev.Intents, next.Intents) {
		return nil
	}
	a, b := intentsByKey(prev.Intents), intentsByKey(next.Intents)
	var out []string
	for key, x := range a {
		if y, ok := b[key]; !ok || !reflect.DeepEqual(x, y) {
			out = append(out, key)
		}
	}
	for key := range b {
		if _, ok := a[key]; !ok {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

func intentsByKey(list []*intents.ClientIntents) map[string][]*intents.ClientIntents {
	out := make(map[string][]*intents.ClientIntents, len(list))
	for _, ci := range list {
		out[ci.Key()] = append(out[ci.Key()], ci)
	}
	return out
}

// sameCluster reports whether everything but the ClientIntents that a compilation reads
// is equal in a and b.
func sameCluster(a, b *cluster.Snapshot) bool {
	if a == b {
		return true
	}
	return slices.EqualFunc(a.Pods, b.Pods, (*cluster.Pod).Same) &&
		equalSlices(a.Services, b.Services) &&
		equalSlices(a.Ingresses, b.Ingresses) &&
		equalSlices(a.NetworkPolicies, b.NetworkPolicies) &&
		reflect.DeepEqual(a.Workloads, b.Workloads) &&
		reflect.DeepEqual(a.Namespaces, b.Namespaces)
}

func equalSlices[T any](a, b []*T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// recompile compiles next from scratch and reports the difference with the policies
// compiled so far.
func (k *Compiler) recompile(next *cluster.Snapshot) (*Delta, error) {
	fresh, err := NewCompiler(next, k.o)
	if err != nil {
		return nil, err
	}
	// Keep the objects already handed out where nothing changed.
	d := &Delta{}
	for ref, p := range fresh.out {
		if old, ok := k.out[ref]; ok && reflect.DeepEqual(old, p) {
			fresh.out[ref] = old
			continue
		}
		d.Upsert = append(d.Upsert, p)
	}
	for ref := range k.out {
		if _, ok := fresh.out[ref]; !ok {
			d.Remove = append(d.Remove, ref)
		}
	}
	fresh.o = k.o
	*k = *fresh
	d.sort()
	return d, nil
}

// apply recomputes the ClientIntents named by keys and every part that depends on them;
// externals lists namespaces whose external allowances must be redone regardless.
func (k *Compiler) apply(keys []string, externals []string) {
	dirtyServers := map[cluster.WorkloadID]bool{}
	dirtyClients := map[cluster.WorkloadID]bool{}
	for _, key := range keys {
		if old := k.cis[key]; old != nil {
			k.count(old.warnings, -1)
			for id := range old.servers {
				delete(k.serverCIs[id], key)
				dirtyServers[id] = true
			}
			for id := range old.clients {
				delete(k.clientCIs[id], key)
				dirtyClients[id] = true
			}
			delete(k.cis, key)
		}
		cis := k.intentsOf(key)
		if len(cis) == 0 {
			continue
		}
		part := k.contribution(cis)
		k.cis[key] = part
		k.count(part.warnings, 1)
		for id := range part.servers {
			addKey(k.serverCIs, id, key)
			dirtyServers[id] = true
		}
		for id := range part.clients {
			addKey(k.clientCIs, id, key)
			dirtyClients[id] = true
		}
	}

	touched := map[string]bool{}
	for _, ns := range externals {
		touched[ns] = true
	}
	for _, id := range sortedIDs(dirtyServers) {
		var plans func() []*plan
		if rs := k.mergedServer(id); rs != nil {
			plans = func() []*plan { return k.c.allowPlans(rs) }
		}
		if k.render(k.servers, id, plans) {
			touched[id.Namespace] = true
		}
	}
	for _, id := range sortedIDs(dirtyClients) {
		var plans func() []*plan
		if es := k.mergedClient(id); es != nil {
			plans = func() []*plan { return k.c.egressPlans(es) }
		}
		k.render(k.clients, id, plans)
	}

	if k.o.External != ExternalOff {
		// The external check judges with the other plans of the namespace under unique
		// names, as Compile's first naming pass gives them.
		k.rename()
		for _, ns := range sortedKeys(touched) {
			if k.c.enforced[ns] {
				k.renderExternals(ns)
			}
		}
	}
	k.rename()
}

// intentsOf returns the snapshot's ClientIntents with key, in snapshot order. Build
// sorts them by key.
func (k *Compiler) intentsOf(key string) []*intents.ClientIntents {
	i, j := keyRange(k.s.Intents, key)
	return k.s.Intents[i:j]
}

// contribution runs the compiler's intents step on cis alone.
func (k *Compiler) contribution(cis []*intents.ClientIntents) *ciPart {
	c := k.c
	c.servers = map[cluster.WorkloadID]*ruleSet{}
	c.clients = map[cluster.WorkloadID]*egressSet{}
	c.warnings = map[Warning]bool{}
	for _, ci := range cis {
		c.intents(ci)
	}
	part := &ciPart{servers: c.servers, clients: c.clients, warnings: setList(c.warnings)}
	c.servers, c.clients, c.warnings = nil, nil, nil
	return part
}

// mergedServer is the union of the rules every ClientIntents gives server id, nil when
// none does.
func (k *Compiler) mergedServer(id cluster.WorkloadID) *ruleSet {
	keys := k.serverCIs[id]
	if len(keys) == 0 {
		delete(k.serverCIs, id)
		return nil
	}
	rs := &ruleSet{id: id, rules: map[cluster.WorkloadID]*rule{}}
	for key := range keys {
		mergeRules(rs, k.cis[key].servers[id])
	}
	return rs
}

func (k *Compiler) mergedClient(id cluster.WorkloadID) *egressSet {
	keys := k.clientCIs[id]
	if len(keys) == 0 {
		delete(k.clientCIs, id)
		return nil
	}
	es := &egressSet{ruleSet: ruleSet{id: id, rules: map[cluster.WorkloadID]*rule{}}, internet: map[string]*internetRule{}}
	for key := range keys {
		part := k.cis[key].clients[id]
		mergeRules(&es.ruleSet, &part.ruleSet)
		for pk, r := range part.internet {
			m := es.internet[pk]
			if m == nil {
				// Equal keys mean equal port lists.
				m = &internetRule{ports: r.ports, cidrs: map[string]bool{}, sources: map[IntentRef]bool{}}
				es.internet[pk] = m
			}
			for cidr := range r.cidrs {
				m.cidrs[cidr] = true
			}
			for src := range r.sources {
				m.sources[src] = true
			}
		}
	}
	return es
}

func mergeRules(into, from *ruleSet) {
	for peer, r := range from.rules {
		m := into.rules[peer]
		if m == nil {
			m = &rule{sources: map[IntentRef]bool{}}
			into.rules[peer] = m
		}
		if r.ports.all {
			m.ports.addAll()
		}
		for _, p := range r.ports.ports {
			m.ports.add(p)
		}
		for src := range r.sources {
			m.sources[src] = true
		}
	}
}

// render replaces the plans of id in parts with those plans renders (nil: none). It
// reports whether the old or the new plans could decide whether a connection from outside
// the cluster reaches a pod: only then must the namespace's external allowances be
// judged again.
//
// Usually they cannot. Every enforced namespace has its default deny, so its pods are
// isolated whatever allow policies come and go; and an allow rule whose peers all name
// pods or namespaces never admits an address outside the cluster. So an intent event
// leaves the external check of its namespace as it was, and skipping it saves an Oracle
// run over the namespace's pods (most of an event's cost on profile M).
func (k *Compiler) render(parts map[cluster.WorkloadID]*identityPart, id cluster.WorkloadID, plans func() []*plan) bool {
	old := parts[id]
	external := old != nil && mayAdmitExternal(old.plans)
	k.dropPart(old)
	delete(parts, id)
	part := &identityPart{}
	seen := map[cluster.WorkloadID]bool{}
	k.c.consult = func(id cluster.WorkloadID) {
		if !seen[id] {
			seen[id] = true
			part.consulted = append(part.consulted, id)
		}
	}
	if plans != nil {
		part.plans = plans()
	}
	k.c.consult = nil
	if len(part.plans) == 0 && len(part.consulted) == 0 {
		return external
	}
	parts[id] = part
	for _, c := range part.consulted {
		k.consult(c, 1)
	}
	for _, pl := range part.plans {
		k.addPlan(pl, true)
	}
	return external || mayAdmitExternal(part.plans)
}

// mayAdmitExternal reports whether some ingress rule of plans could match a source
// outside the cluster: a rule without peers, or a peer with an IP block. It also says
// yes for a plan that is not in an enforced namespace, where no default deny isolates.
func mayAdmitExternal(plans []*plan) bool {
	for _, pl := range plans {
		for _, r := range pl.p.Spec.Ingress {
			if len(r.From) == 0 {
				return true
			}
			for _, peer := range r.From {
				if peer.IPBlock != nil || (peer.PodSelector == nil && peer.NamespaceSelector == nil) {
					return true
				}
			}
		}
	}
	return false
}

// renderExternals redoes the external allowances of namespace ns.
func (k *Compiler) renderExternals(ns string) {
	k.dropPart(k.externals[ns])
	delete(k.externals, ns)
	exps := k.exposed[ns]
	if len(exps) == 0 {
		return
	}
	compiled := make([]*networkingv1.NetworkPolicy, 0, len(k.byNS[ns]))
	for pl := range k.byNS[ns] {
		compiled = append(compiled, pl.p)
	}
	// Compile hands the Oracle its plans in order; the order does not change a verdict,
	// but a stable one keeps runs repeatable.
	sortPolicies(compiled)
	k.c.warnings = map[Warning]bool{}
	part := &identityPart{plans: k.c.externalPlansOf(exps, k.snapshotPolicies[ns], compiled)}
	part.warnings = setList(k.c.warnings)
	k.c.warnings = nil
	k.externals[ns] = part
	k.count(part.warnings, 1)
	for _, pl := range part.plans {
		k.addPlan(pl, false)
	}
}

func (k *Compiler) dropPart(part *identityPart) {
	if part == nil {
		return
	}
	for _, c := range part.consulted {
		k.consult(c, -1)
	}
	k.count(part.warnings, -1)
	for _, pl := range part.plans {
		k.removePlan(pl)
	}
}

// consult counts a use of id's selectors; the identity's warnings stand while it has one.
func (k *Compiler) consult(id cluster.WorkloadID, delta int) {
	n := k.consulted[id]
	k.consulted[id] = n + delta
	switch {
	case n == 0 && delta > 0:
		ws, ok := k.idWarnings[id]
		if !ok {
			ws = k.c.selectorWarnings(id)
			k.idWarnings[id] = ws
		}
		k.count(ws, 1)
	case n+delta == 0:
		delete(k.consulted, id)
		k.count(k.idWarnings[id], -1)
	}
}

func (k *Compiler) count(ws []Warning, delta int) {
	for _, w := range ws {
		old := k.warnings[w]
		n := old + delta
		if n <= 0 {
			delete(k.warnings, w)
		} else {
			k.warnings[w] = n
		}
		if (old > 0) != (n > 0) {
			k.warningsMoved = true
		}
	}
}

func (k *Compiler) addPlan(pl *plan, inNS bool) {
	key := pl.p.Namespace + "/" + pl.base
	g := k.groups[key]
	if g == nil {
		g = &nameGroup{plans: map[*plan]bool{}}
		k.groups[key] = g
	}
	g.plans[pl] = true
	k.dirtyGroups[key] = true
	if inNS {
		if k.byNS[pl.p.Namespace] == nil {
			k.byNS[pl.p.Namespace] = map[*plan]bool{}
		}
		k.byNS[pl.p.Namespace][pl] = true
	}
}

func (k *Compiler) removePlan(pl *plan) {
	key := pl.p.Namespace + "/" + pl.base
	if g := k.groups[key]; g != nil {
		delete(g.plans, pl)
	}
	k.dirtyGroups[key] = true
	if m := k.byNS[pl.p.Namespace]; m != nil {
		delete(m, pl)
		if len(m) == 0 {
			delete(k.byNS, pl.p.Namespace)
		}
	}
	if pl.p.Name != "" {
		ref := evaluator.PolicyRef{Namespace: pl.p.Namespace, Name: pl.p.Name}
		k.candidates[ref] = true
		if k.named[ref] == pl {
			delete(k.named, ref)
		}
	}
}

// rename names the plans of the groups that changed, as resolveNames does.
func (k *Compiler) rename() {
	for _, key := range sortedKeys(k.dirtyGroups) {
		g := k.groups[key]
		if g != nil && g.warning != nil {
			k.count([]Warning{*g.warning}, -1)
			g.warning = nil
		}
		if g == nil || len(g.plans) == 0 {
			delete(k.groups, key)
			continue
		}
		var subjects []string
		for pl := range g.plans {
			name := pl.base
			if len(g.plans) > 1 {
				name = withSuffix(pl.base, shortHash(pl.purpose))
				subjects = append(subjects, pl.subject)
			}
			if pl.p.Name != name {
				if pl.p.Name != "" {
					old := evaluator.PolicyRef{Namespace: pl.p.Namespace, Name: pl.p.Name}
					k.candidates[old] = true
					if k.named[old] == pl {
						delete(k.named, old)
					}
					// The old object may have been handed out.
					pl.p = pl.p.DeepCopy()
				}
				pl.p.Name = name
			}
			ref := evaluator.PolicyRef{Namespace: pl.p.Namespace, Name: name}
			k.named[ref] = pl
			k.candidates[ref] = true
		}
		if len(subjects) > 0 {
			sort.Strings(subjects)
			g.warning = &Warning{
				Object:  "NetworkPolicy " + key,
				Message: fmt.Sprintf("name wanted by %s; each takes a hash suffix", strings.Join(subjects, " and ")),
			}
			k.count([]Warning{*g.warning}, 1)
		}
	}
	clear(k.dirtyGroups)
}

// delta settles the names that may have changed hands since the last update against
// what was handed out.
func (k *Compiler) delta() *Delta {
	d := &Delta{}
	for ref := range k.candidates {
		var p *networkingv1.NetworkPolicy
		if pl := k.named[ref]; pl != nil {
			p = pl.p
		}
		old := k.out[ref]
		switch {
		case p == nil && old == nil:
		case p == nil:
			delete(k.out, ref)
			d.Remove = append(d.Remove, ref)
		case old == nil || (old != p && !reflect.DeepEqual(old, p)):
			k.out[ref] = p
			d.Upsert = append(d.Upsert, p)
		}
	}
	clear(k.candidates)
	d.sort()
	if prev := k.result; prev != nil && (!d.Empty() || k.warningsMoved) {
		k.result = &Result{Namespaces: prev.Namespaces, Policies: patchPolicies(prev.Policies, d), Warnings: prev.Warnings}
		if k.warningsMoved {
			k.result.Warnings = k.sortedWarnings()
		}
	}
	k.warningsMoved = false
	return d
}

// patchPolicies applies d to ps (sorted by namespace/name) in a new sorted list: a copy
// and a binary search per change instead of a sort.
func patchPolicies(ps []*networkingv1.NetworkPolicy, d *Delta) []*networkingv1.NetworkPolicy {
	out := slices.Clone(ps)
	for _, ref := range d.Remove {
		if i, ok := slices.BinarySearchFunc(out, ref, compareRef); ok {
			out = slices.Delete(out, i, i+1)
		}
	}
	for _, p := range d.Upsert {
		i, ok := slices.BinarySearchFunc(out, evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}, compareRef)
		if ok {
			out[i] = p
		} else {
			out = slices.Insert(out, i, p)
		}
	}
	return out
}

func compareRef(p *networkingv1.NetworkPolicy, ref evaluator.PolicyRef) int {
	if c := strings.Compare(p.Namespace, ref.Namespace); c != 0 {
		return c
	}
	return strings.Compare(p.Name, ref.Name)
}

func policyLess(a, b *networkingv1.NetworkPolicy) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func (d *Delta) sort() {
	sortPolicies(d.Upsert)
	sort.Slice(d.Remove, func(i, j int) bool {
		a, b := d.Remove[i], d.Remove[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

func sortPolicies(ps []*networkingv1.NetworkPolicy) {
	sort.Slice(ps, func(i, j int) bool { return policyLess(ps[i], ps[j]) })
}

func addKey(m map[cluster.WorkloadID]map[string]bool, id cluster.WorkloadID, key string) {
	if m[id] == nil {
		m[id] = map[string]bool{}
	}
	m[id][key] = true
}

func setList[T comparable](m map[T]bool) []T {
	out := make([]T, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	return out
}

// ReplaceIntents returns a copy of s whose ClientIntents are s's with those of the keys
// in remove dropped and upsert added, each replacing any of the same namespace/name, and
// the keys that changed (for UpdateIntents). s.Intents must be sorted by key, as Build
// leaves them; the copy's are too. s is not modified; the copy shares everything else
// with it. The cost is a copy of the list and a binary search per key, not a pass over
// every ClientIntents.
func ReplaceIntents(s *cluster.Snapshot, upsert []*intents.ClientIntents, remove []string) (*cluster.Snapshot, []string) {
	keys := map[string]bool{}
	for _, key := range remove {
		keys[key] = true
	}
	for _, ci := range upsert {
		keys[ci.Key()] = true
	}
	list := slices.Clone(s.Intents)
	for key := range keys {
		i, j := keyRange(list, key)
		list = slices.Delete(list, i, j)
	}
	for _, ci := range upsert {
		_, j := keyRange(list, ci.Key())
		list = slices.Insert(list, j, ci)
	}
	next := *s
	next.Intents = list
	return &next, sortedKeys(keys)
}

// keyRange returns the ClientIntents of list (sorted by key) with key: list[i:j].
func keyRange(list []*intents.ClientIntents, key string) (i, j int) {
	i = sort.Search(len(list), func(i int) bool { return list[i].Key() >= key })
	j = i
	for j < len(list) && list[j].Key() == key {
		j++
	}
	return i, j
}

// Policy returns the compiled policy namespace/name, or nil.
func (k *Compiler) Policy(namespace, name string) *networkingv1.NetworkPolicy {
	return k.out[evaluator.PolicyRef{Namespace: namespace, Name: name}]
}
