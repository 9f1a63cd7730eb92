// Package compile turns ClientIntents into the NetworkPolicies an Otterize-style
// controller would apply when a namespace switches to enforcement: a default deny, one
// allow policy per called server, allowances for exposed Services and configured peers,
// and, when asked, egress allowances per client.
//
// The compiler never relabels pods: every selector it writes is one the cluster already
// satisfies (a controller's selector, or a pod's own labels), so the policies can be
// evaluated against a snapshot before anything is applied.
package compile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/evaluator/cluster"

	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// Metadata the compiler writes on its policies.
const (
	// ManagedByLabel (with ManagedByValue) marks every compiled policy, so a controller
	// can list and prune exactly its own.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "shadowgate"
	// IntentsAnnotation lists, comma-separated and sorted, the ClientIntents (ns/name)
	// behind an allow or egress policy.
	IntentsAnnotation = "shadowgate.dev/intents"
	// RulesAnnotation is a JSON list of RuleOrigin, index-aligned with spec.ingress of
	// an allow policy or spec.egress of an egress policy.
	RulesAnnotation = "shadowgate.dev/rules"
	// ExposedByAnnotation lists, comma-separated and sorted, why an external allowance
	// exists: "Service ns/name (LoadBalancer)", "Ingress ns/name".
	ExposedByAnnotation = "shadowgate.dev/exposed-by"
)

// Peers of egress rules that no single workload stands behind.
const (
	PeerDNS      = "dns"
	PeerInternet = "internet"
)

// IntentRef names one target of one ClientIntents.
type IntentRef struct {
	ClientIntents string `json:"clientIntents"` // namespace/name
	Target        string `json:"target"`        // as written in the ClientIntents
}

// RuleOrigin explains one rule of a compiled policy. It has no free text with spaces,
// so the JSON stays on one line in YAML output.
type RuleOrigin struct {
	// Workload is the identity on the other side: the client of an ingress rule, the
	// server of an egress rule.
	Workload *cluster.WorkloadID `json:"workload,omitempty"`
	// Peer is PeerDNS or PeerInternet when Workload is nil.
	Peer string `json:"peer,omitempty"`
	// Intents behind the rule, sorted. Empty for the DNS rule, which every client gets.
	Intents []IntentRef `json:"intents,omitempty"`
}

// Warning is a problem that does not stop compilation but that someone should read
// before enforcing: the compiled policies allow more, or less, than the intents say.
type Warning struct {
	// Object is "Kind namespace/name" of what the warning is about.
	Object  string `json:"object"`
	Message string `json:"message"`
}

func (w Warning) String() string { return w.Object + ": " + w.Message }

// Result is a compiled policy set.
type Result struct {
	// Namespaces are the enforced namespaces, sorted: Options.Namespaces, or the
	// targeted ones when it was empty.
	Namespaces []string
	// Policies sorted by namespace/name; each one valid for the API server.
	Policies []*networkingv1.NetworkPolicy
	// Warnings sorted and without duplicates.
	Warnings []Warning
}

// TargetedNamespaces returns the namespaces, sorted, of the servers some ClientIntents
// call: the namespaces whose enforcement the intents were written for.
func TargetedNamespaces(s *cluster.Snapshot) []string {
	seen := map[string]bool{}
	for _, ci := range s.Intents {
		for _, t := range ci.Targets {
			switch t.Type {
			case intents.TargetWorkload, intents.TargetService, intents.TargetKafka, intents.TargetHTTP:
				seen[targetNamespace(ci, t)] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

func targetNamespace(ci *intents.ClientIntents, t intents.Target) string {
	if t.Namespace != "" {
		return t.Namespace
	}
	return ci.Namespace
}

// Compile returns the policies to apply so that the enforced namespaces admit exactly
// what the snapshot's ClientIntents declare. It writes only into enforced namespaces;
// an intent whose server lives elsewhere contributes only the client's egress
// allowance. The result is deterministic: the same snapshot and options give
// byte-identical policies.
func Compile(s *cluster.Snapshot, o Options) (*Result, error) {
	if s == nil {
		return nil, errors.New("compile: nil snapshot")
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("compile: invalid options: %w", err)
	}
	o = o.withDefaults()
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = TargetedNamespaces(s)
	}
	c := &compiler{
		s:        s,
		o:        o,
		ix:       newIndex(s),
		enforced: map[string]bool{},
		warnings: map[Warning]bool{},
		servers:  map[cluster.WorkloadID]*ruleSet{},
		clients:  map[cluster.WorkloadID]*egressSet{},
		checked:  map[cluster.WorkloadID]bool{},
	}
	for _, ns := range namespaces {
		c.enforced[ns] = true
	}
	for _, ci := range s.Intents {
		c.intents(ci)
	}

	var plans []*plan
	for _, ns := range sortedKeys(c.enforced) {
		plans = append(plans, c.defaultDeny(ns))
		for _, a := range o.AlwaysAllow {
			plans = append(plans, c.alwaysAllow(ns, a))
		}
	}
	for _, id := range sortedIDs(c.servers) {
		plans = append(plans, c.allowPlans(c.servers[id])...)
	}
	for _, id := range sortedIDs(c.clients) {
		plans = append(plans, c.egressPlans(c.clients[id])...)
	}
	// The external check needs the rest of the set with unique names: an evaluator may
	// key policies by name. Names are resolved again once the external plans join.
	resolveNames(plans)
	plans = append(plans, c.externalPlans(plans)...)
	for _, w := range resolveNames(plans) {
		c.warn(w.Object, "%s", w.Message)
	}

	res := &Result{Namespaces: sortedKeys(c.enforced)}
	for _, pl := range plans {
		res.Policies = append(res.Policies, pl.p)
	}
	sort.Slice(res.Policies, func(i, j int) bool {
		a, b := res.Policies[i], res.Policies[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	for w := range c.warnings {
		res.Warnings = append(res.Warnings, w)
	}
	sort.Slice(res.Warnings, func(i, j int) bool {
		a, b := res.Warnings[i], res.Warnings[j]
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Message < b.Message
	})
	return res, nil
}

// compiler holds one compilation's state.
type compiler struct {
	s        *cluster.Snapshot
	o        Options
	ix       *index
	enforced map[string]bool
	warnings map[Warning]bool
	// servers are the called identities in enforced namespaces, each with one rule per
	// client.
	servers map[cluster.WorkloadID]*ruleSet
	// clients are the calling identities in enforced namespaces (egress only).
	clients map[cluster.WorkloadID]*egressSet
	// checked records identities whose selectors were already checked for overlaps.
	checked map[cluster.WorkloadID]bool
	// consult, when set, is told every identity whose selectors a plan uses.
	consult func(cluster.WorkloadID)
}

func (c *compiler) warn(object, format string, args ...any) {
	c.warnings[Warning{Object: object, Message: fmt.Sprintf(format, args...)}] = true
}

// ruleSet accumulates the rules of one policy, one rule per peer identity.
type ruleSet struct {
	id    cluster.WorkloadID
	rules map[cluster.WorkloadID]*rule
}

type rule struct {
	ports   portSet
	sources map[IntentRef]bool
}

func (rs *ruleSet) add(peer cluster.WorkloadID, ports []networkingv1.NetworkPolicyPort, src IntentRef) {
	r := rs.rules[peer]
	if r == nil {
		r = &rule{sources: map[IntentRef]bool{}}
		rs.rules[peer] = r
	}
	// A client allowed on every port by one target and on some ports by another is
	// allowed on every port: one rule with the union says the same as two and reads
	// better.
	if ports == nil {
		r.ports.addAll()
	} else {
		r.ports.add(ports...)
	}
	r.sources[src] = true
}

// egressSet accumulates the egress rules of one client.
type egressSet struct {
	ruleSet
	// internet rules, keyed by their port list, each with the CIDRs allowed on it.
	internet map[string]*internetRule
}

type internetRule struct {
	ports   []networkingv1.NetworkPolicyPort
	cidrs   map[string]bool
	sources map[IntentRef]bool
}

// intents records what one ClientIntents contributes.
func (c *compiler) intents(ci *intents.ClientIntents) {
	object := "ClientIntents " + ci.Key()
	clientEnforced := c.enforced[ci.Namespace]
	egress := c.o.Egress && clientEnforced
	clients := c.ix.resolve(ci.Namespace, ci.Client.Name, ci.Client.Kind)

	// Only intents that shape an enforced namespace are worth a warning: the others
	// produce nothing.
	relevant := egress
	for _, t := range ci.Targets {
		relevant = relevant || c.enforced[targetNamespace(ci, t)]
	}
	if !relevant {
		return
	}
	clientDesc := clientDescription(ci)
	switch {
	case len(clients) == 0:
		c.warn(object, "client %s not found in the snapshot: no rule admits it", clientDesc)
	case len(clients) > 1:
		c.warn(object, "client %s matches %s; each is allowed", clientDesc, describeIDs(clients))
	}
	if egress {
		for _, id := range clients {
			if c.clients[id] == nil {
				c.clients[id] = &egressSet{
					ruleSet:  ruleSet{id: id, rules: map[cluster.WorkloadID]*rule{}},
					internet: map[string]*internetRule{},
				}
			}
		}
	}

	for _, t := range ci.Targets {
		ns := targetNamespace(ci, t)
		src := IntentRef{ClientIntents: ci.Key(), Target: t.Raw}
		ingress := c.enforced[ns]
		switch t.Type {
		case intents.TargetWorkload, intents.TargetKafka, intents.TargetHTTP:
			if !ingress && !egress {
				continue
			}
			servers := c.ix.resolve(ns, t.Name, t.Kind)
			switch {
			case len(servers) == 0:
				c.warn(object, "target %q: workload %s not found in the snapshot", t.Raw, describeName(ns, t.Name, t.Kind))
				continue
			case len(servers) > 1:
				c.warn(object, "target %q matches %s; each is allowed", t.Raw, describeIDs(servers))
			}
			for _, srv := range servers {
				c.edge(clients, srv, nil, src, ingress, egress)
			}
		case intents.TargetService:
			if !ingress && !egress {
				continue
			}
			c.serviceTarget(object, clients, ns, t, src, ingress, egress)
		case intents.TargetInternet:
			if egress {
				c.internetTarget(object, clients, t, src)
			}
		case intents.TargetDatabase, intents.TargetCloud:
			if clientEnforced || ingress {
				c.warn(object, "target %q: %s targets grant credentials, not network access; ignored", t.Raw, strings.ToLower(string(t.Type)))
			}
		default:
			if clientEnforced || ingress {
				c.warn(object, "target %q: unknown target type %q; ignored", t.Raw, t.Type)
			}
		}
	}
}

// edge records that clients call srv on ports (nil: all ports).
func (c *compiler) edge(clients []cluster.WorkloadID, srv cluster.WorkloadID, ports []networkingv1.NetworkPolicyPort, src IntentRef, ingress, egress bool) {
	for _, cl := range clients {
		if ingress {
			rs := c.servers[srv]
			if rs == nil {
				rs = &ruleSet{id: srv, rules: map[cluster.WorkloadID]*rule{}}
				c.servers[srv] = rs
			}
			rs.add(cl, ports, src)
		}
		if egress {
			c.clients[cl].add(srv, ports, src)
		}
	}
}

// serviceTarget resolves a Service target to the workloads behind it: the Service is an
// address, the policies protect the pods.
func (c *compiler) serviceTarget(object string, clients []cluster.WorkloadID, ns string, t intents.Target, src IntentRef, ingress, egress bool) {
	svc := c.s.Service(ns, t.Name)
	if svc == nil {
		c.warn(object, "target %q: Service %s/%s not found in the snapshot", t.Raw, ns, t.Name)
		return
	}
	if len(svc.Selector) == 0 {
		c.warn(object, "target %q: Service %s/%s has no selector, so its endpoints cannot be resolved to workloads; ignored", t.Raw, ns, t.Name)
		return
	}
	servers := c.serviceWorkloads(svc)
	switch {
	case len(servers) == 0:
		c.warn(object, "target %q: Service %s/%s selects no pods in the snapshot", t.Raw, ns, t.Name)
		return
	case len(servers) > 1:
		c.warn("Service "+ns+"/"+svc.Name, "selects pods of %s; callers through it are allowed into each", describeIDs(servers))
	}
	ports := serviceTargetPorts(svc)
	if len(ports) == 0 {
		c.warn(object, "target %q: Service %s/%s declares no ports; ignored", t.Raw, ns, t.Name)
		return
	}
	for _, srv := range servers {
		c.edge(clients, srv, ports, src, ingress, egress)
	}
}

// serviceWorkloads returns the identities of the pods svc selects, sorted.
func (c *compiler) serviceWorkloads(svc *cluster.Service) []cluster.WorkloadID {
	sel := newSelector(&metav1.LabelSelector{MatchLabels: svc.Selector})
	seen := map[cluster.WorkloadID]bool{}
	for _, p := range c.ix.podsInNS[svc.Namespace] {
		if !p.Workload.IsZero() && sel.matches(p.Labels) {
			seen[p.Workload] = true
		}
	}
	out := make([]cluster.WorkloadID, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sortIDs(out)
	return out
}

func clientDescription(ci *intents.ClientIntents) string {
	return describeName(ci.Namespace, ci.Client.Name, ci.Client.Kind)
}

func describeName(ns, name, kind string) string {
	if kind == "" {
		return ns + "/" + name
	}
	return kind + " " + ns + "/" + name
}

func describeIDs(ids []cluster.WorkloadID) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = workloadObject(id)
	}
	return strings.Join(parts, ", ")
}

// policy returns a compiled policy's skeleton.
func policy(ns string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Labels:    map[string]string{ManagedByLabel: ManagedByValue},
		},
	}
}

func (c *compiler) defaultDeny(ns string) *plan {
	p := policy(ns)
	p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if c.o.Egress {
		p.Spec.PolicyTypes = append(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	}
	return &plan{p: p, base: DefaultDenyName, purpose: "default-deny", subject: "the default deny"}
}

func (c *compiler) alwaysAllow(ns string, a AlwaysAllow) *plan {
	p := policy(ns)
	p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	var ports portSet
	if len(a.Ports) == 0 {
		ports.addAll()
	} else {
		ports.add(a.Ports...)
	}
	peer := networkingv1.NetworkPolicyPeer{}
	if a.NamespaceSelector != nil {
		peer.NamespaceSelector = newSelector(a.NamespaceSelector).sel
	}
	if a.PodSelector != nil {
		peer.PodSelector = newSelector(a.PodSelector).sel
	}
	p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{peer}, Ports: ports.list()}}
	return &plan{p: p, base: policyName(allowPrefix, a.Name), purpose: "always-allow/" + a.Name, subject: "always-allow entry " + a.Name}
}

// identityPlans splits an identity into one plan per selector that picks its pods. One
// selector (the common case) gives base name prefix+workload; several give each a
// suffix from the selector, which stays put when other selectors come and go.
func (c *compiler) identityPlans(role, prefix string, id cluster.WorkloadID) []*plan {
	sels := c.selectors(id)
	base := policyName(prefix, c.ix.workloadPart(id))
	plans := make([]*plan, len(sels))
	for i, s := range sels {
		p := policy(id.Namespace)
		p.Spec.PodSelector = *s.sel.DeepCopy()
		pl := &plan{p: p, base: base, purpose: role + "/" + id.String() + "/" + s.key, subject: role + " " + workloadObject(id)}
		if len(sels) > 1 {
			pl.base = withSuffix(base, shortHash(s.key))
		}
		plans[i] = pl
	}
	return plans
}

// selectors returns the usable selectors of id and warns, once per identity, about those
// that would pick more than id's pods and about pods that policies cannot reach. With
// consult set (the incremental Compiler), it reports the identity there instead, and the
// Compiler counts the warnings per identity in use.
func (c *compiler) selectors(id cluster.WorkloadID) []selector {
	switch {
	case c.consult != nil:
		c.consult(id)
	case !c.checked[id]:
		c.checked[id] = true
		for _, w := range c.selectorWarnings(id) {
			c.warnings[w] = true
		}
	}
	return c.ix.usableSelectorsOf(id)
}

// selectorWarnings are the warnings about id's selectors and pods.
func (c *compiler) selectorWarnings(id cluster.WorkloadID) []Warning {
	var out []Warning
	warn := func(format string, args ...any) {
		out = append(out, Warning{Object: workloadObject(id), Message: fmt.Sprintf(format, args...)})
	}
	for _, s := range c.ix.selectorsOf(id) {
		if s.empty() {
			warn("pods have no labels: no selector picks them without picking every pod in the namespace; left out of the policies")
			continue
		}
		if strays := c.ix.strays(id.Namespace, s, id); len(strays) > 0 {
			warn("selector %s also selects pods of %s: policies that select or admit this workload cover them too (wider than intended)", s, strings.Join(strays, ", "))
		}
	}
	for _, p := range c.ix.podsOf[id] {
		if p.HostNetwork {
			warn("pods use the host network: NetworkPolicy neither isolates them nor matches their traffic by pod selector")
			break
		}
	}
	return out
}

// peersOf returns one peer per selector of id: a peer must pick exactly id's pods, and
// a peer is one namespace selector AND one pod selector.
func (c *compiler) peersOf(id cluster.WorkloadID) []networkingv1.NetworkPolicyPeer {
	sels := c.selectors(id)
	peers := make([]networkingv1.NetworkPolicyPeer, len(sels))
	for i, s := range sels {
		peers[i] = networkingv1.NetworkPolicyPeer{
			NamespaceSelector: namespaceSelector(id.Namespace),
			PodSelector:       s.sel.DeepCopy(),
		}
	}
	return peers
}

// allowPlans renders the ingress allow policies of one server.
func (c *compiler) allowPlans(rs *ruleSet) []*plan {
	var ingress []networkingv1.NetworkPolicyIngressRule
	var origins []RuleOrigin
	sourceSets := []map[IntentRef]bool{}
	for _, cl := range sortedIDs(rs.rules) {
		r := rs.rules[cl]
		peers := c.peersOf(cl)
		if len(peers) == 0 {
			continue
		}
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{From: peers, Ports: r.ports.list()})
		origins = append(origins, RuleOrigin{Workload: &cl, Intents: sortedRefs(r.sources)})
		sourceSets = append(sourceSets, r.sources)
	}
	if len(ingress) == 0 {
		return nil
	}
	plans := c.identityPlans("server", allowPrefix, rs.id)
	for _, pl := range plans {
		pl.p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		pl.p.Spec.Ingress = (&networkingv1.NetworkPolicySpec{Ingress: ingress}).DeepCopy().Ingress
		annotate(pl.p, origins, sourceSets)
	}
	return plans
}

// annotate records the ClientIntents behind a policy and behind each of its rules.
func annotate(p *networkingv1.NetworkPolicy, origins []RuleOrigin, sources []map[IntentRef]bool) {
	cis := map[string]bool{}
	for _, set := range sources {
		for ref := range set {
			cis[ref.ClientIntents] = true
		}
	}
	rules, err := json.Marshal(origins)
	if err != nil {
		// RuleOrigin holds only strings.
		panic(err)
	}
	p.Annotations = map[string]string{RulesAnnotation: string(rules)}
	if len(cis) > 0 {
		p.Annotations[IntentsAnnotation] = strings.Join(sortedKeys(cis), ",")
	}
}

func sortedRefs(m map[IntentRef]bool) []IntentRef {
	out := make([]IntentRef, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ClientIntents != out[j].ClientIntents {
			return out[i].ClientIntents < out[j].ClientIntents
		}
		return out[i].Target < out[j].Target
	})
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedIDs[V any](m map[cluster.WorkloadID]V) []cluster.WorkloadID {
	out := make([]cluster.WorkloadID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sortIDs(out)
	return out
}

// Manifests renders the policies as a multi-document YAML stream that kubectl apply
// accepts, preceded by the warnings as comments. The bytes are stable for a given
// Result.
func (r *Result) Manifests() ([]byte, error) {
	var b bytes.Buffer
	for _, w := range r.Warnings {
		b.WriteString("# warning: " + strings.ReplaceAll(w.String(), "\n", " ") + "\n")
	}
	for _, p := range r.Policies {
		y, err := yaml.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("NetworkPolicy %s/%s: %w", p.Namespace, p.Name, err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}
