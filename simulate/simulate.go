// Package simulate judges flows against the policy set in force and the policy set that
// enforcement would apply, and aggregates what would be dropped into a report.
package simulate

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
)

// Skip reasons: stable tokens, part of the JSON contract.
const (
	SkipReply               = "reply"
	SkipNonIP               = "non-ip"
	SkipL7                  = "l7"
	SkipSock                = "sock-trace"
	SkipUnsupportedProtocol = "unsupported-protocol"
	SkipUnresolvedSource    = "unresolved-source"
	SkipUnresolvedDest      = "unresolved-destination"
	SkipNoPort              = "no-port"
)

// Outcome of judging one flow.
type Outcome string

const (
	Allowed Outcome = "allowed"
	Denied  Outcome = "denied"
	Skipped Outcome = "skipped"
)

// Judgement is the decision on one event.
type Judgement struct {
	Line    int
	Outcome Outcome
	// Reason is the skip reason, or the verdict's explanation.
	Reason string
	Flow   *flows.Flow
	Conn   evaluator.Connection
	// Current is the verdict under the snapshot's own policies; Enforced under the snapshot's
	// policies plus the compiled policies of the enforced namespaces.
	Current, Enforced evaluator.Verdict
	// WouldDrop: the current set allows the connection and the enforced set denies it.
	WouldDrop bool
}

// Options configure a Simulator.
type Options struct {
	// Compile selects the enforced namespaces and how policies are compiled. An empty
	// Compile.Namespaces means no namespace is enforced.
	Compile compile.Options
	// ExternalPrefixV4 and ExternalPrefixV6 bucket external addresses in the report (an
	// edge per CIDR, not per client IP). 32 / 128 keep single addresses.
	ExternalPrefixV4, ExternalPrefixV6 int
	// MaxMalformed is how many malformed lines the report lists by line number.
	MaxMalformed int
}

// DefaultOptions returns the defaults the CLI uses.
func DefaultOptions() Options {
	return Options{
		Compile:          compile.Options{External: compile.ExternalOnlyIfBlocked},
		ExternalPrefixV4: 24,
		ExternalPrefixV6: 64,
		MaxMalformed:     10,
	}
}

// Validate reports every bad field at once.
func (o Options) Validate() error {
	var errs []error
	if err := o.Compile.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.ExternalPrefixV4 < 0 || o.ExternalPrefixV4 > 32 {
		errs = append(errs, fmt.Errorf("external IPv4 prefix %d: must be 0..32", o.ExternalPrefixV4))
	}
	if o.ExternalPrefixV6 < 0 || o.ExternalPrefixV6 > 128 {
		errs = append(errs, fmt.Errorf("external IPv6 prefix %d: must be 0..128", o.ExternalPrefixV6))
	}
	if o.MaxMalformed < 0 {
		errs = append(errs, fmt.Errorf("max malformed %d: must be >= 0", o.MaxMalformed))
	}
	return joinErrs(errs)
}

// Simulator judges flows. It is not safe for concurrent use (the resolver caches ghost
// pods); run one per goroutine.
type Simulator struct {
	opts     Options
	snap     *cluster.Snapshot
	compiled *compile.Result
	enforced map[string]bool
	current  evaluator.Evaluator
	enforce  evaluator.Evaluator
	res      *resolver
	agg      *aggregate
	reasons  reasonMemo
	denied   deniedMemo
	// origins are the compiled policies' rule origins (the rules annotation), by policy.
	origins map[evaluator.PolicyRef][]compile.RuleOrigin
	// compiler keeps the compilation up to date across updates (update.go); nil until
	// the first one.
	compiler *compile.Compiler
}

// New compiles the enforced namespaces' policies and builds both evaluators.
func New(snap *cluster.Snapshot, opts Options) (*Simulator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	// The compiler reads no namespaces as "every targeted namespace"; here it means none
	// (plain evaluation of the snapshot), so the compiler is not asked.
	compiled := &compile.Result{}
	if len(opts.Compile.Namespaces) > 0 {
		var err error
		if compiled, err = compile.Compile(snap, opts.Compile); err != nil {
			return nil, fmt.Errorf("compile: %w", err)
		}
	}
	s := &Simulator{
		opts:     opts,
		snap:     snap,
		compiled: compiled,
		enforced: map[string]bool{},
		current:  evaluator.NewEngine(snap, snap.NetworkPolicies),
		enforce:  evaluator.NewEngine(snap, Merge(snap.NetworkPolicies, compiled.Policies)),
		res:      newResolver(snap),
		reasons:  reasonMemo{},
	}
	for _, ns := range compiled.Namespaces {
		s.enforced[ns] = true
	}
	s.origins = ruleOrigins(compiled.Policies)
	s.agg = newAggregate(s)
	return s, nil
}

// Compiled returns what the compiler produced for the enforced namespaces.
func (s *Simulator) Compiled() *compile.Result { return s.compiled }

// Merge overlays compiled policies on the snapshot's: a compiled policy replaces a
// snapshot policy with the same namespace/name (a snapshot taken while enforcing already
// holds shadowgate's own policies, perhaps stale).
func Merge(base, overlay []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
	byKey := make(map[string]*networkingv1.NetworkPolicy, len(base)+len(overlay))
	for _, p := range base {
		byKey[p.Namespace+"/"+p.Name] = p
	}
	for _, p := range overlay {
		byKey[p.Namespace+"/"+p.Name] = p
	}
	out := make([]*networkingv1.NetworkPolicy, 0, len(byKey))
	for _, p := range byKey {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Judge decides one event. Malformed, lost and node-status events are recorded by Observe
// only; Judge is for flows.
func (s *Simulator) Judge(f *flows.Flow, line int) Judgement {
	j, _, _ := s.judge(f, line)
	return j
}

// judge is Judge, and the memo slots of the ends (nil where there is none) for the
// aggregation to keep its numbers in.
func (s *Simulator) judge(f *flows.Flow, line int) (Judgement, *podMemoSlot, *podMemoSlot) {
	j := Judgement{Line: line, Flow: f, Outcome: Skipped}
	if f.WorkloadLevel {
		return s.judgeWorkloadLevel(j), nil, nil
	}
	if reason := classify(f); reason != "" {
		j.Reason = reason
		return j, nil, nil
	}
	// Hubble observes a flow at the endpoint its direction names: egress at the source,
	// ingress at the destination.
	src, sm, ok := s.res.resolveMemo(&f.Source, f.NodeName, f.TrafficDirection == "EGRESS")
	if !ok {
		j.Reason = SkipUnresolvedSource
		return j, nil, nil
	}
	dst, dm, ok := s.res.resolveMemo(&f.Destination, f.NodeName, f.TrafficDirection == "INGRESS")
	if !ok {
		j.Reason = SkipUnresolvedDest
		return j, nil, nil
	}
	j.Conn = evaluator.Connection{Src: src, Dst: dst, Protocol: corev1.Protocol(f.Protocol), Port: int32(f.DestinationPort)}
	if cur, enf, err := s.engines(); err != nil {
		j.Current = s.current.Evaluate(j.Conn)
		j.Enforced = s.enforce.Evaluate(j.Conn)
		j.Reason = s.reasons.reason(j.Enforced, j.Conn)
	} else {
		// Both ends resolved once per engine (memoized per busy pod), both verdicts by
		// reference: a flow reads no pod table.
		var scratch [2]refPair
		if dm == sm {
			dm = nil // one slot cannot hold two ends' addresses
		}
		sr := refsOf(sm, &j.Conn.Src, cur, enf, &scratch[0])
		dr := refsOf(dm, &j.Conn.Dst, cur, enf, &scratch[1])
		cv := cur.EvaluateRef(&sr.cur, &dr.cur, j.Conn.Protocol, j.Conn.Port)
		ev := enf.EvaluateRef(&sr.enf, &dr.enf, j.Conn.Protocol, j.Conn.Port)
		j.Current, j.Enforced = *cv, *ev
		if ev.Allowed {
			j.Reason = s.reasons.of(ev, &j.Conn)
		} else {
			j.Reason = s.denied.of(ev, &j.Conn)
		}
	}
	j.WouldDrop = j.Current.Allowed && !j.Enforced.Allowed
	if j.Enforced.Allowed {
		j.Outcome = Allowed
	} else {
		j.Outcome = Denied
	}
	return j, sm, dm
}

// deniedMemo remembers the explanations of denied verdicts judged by reference. Such an
// explanation names the verdict's isolating policies, the service and the peer endpoint
// of each denied direction; a verdict from EvaluateRef is immutable, so its address and
// the connection stand for all of that. Direct-mapped, like reasonMemo.
type deniedMemo struct{ slots []deniedSlot }

type deniedSlot struct {
	v      *evaluator.Verdict
	c      evaluator.Connection
	reason string
}

const deniedBits = 13

func (m *deniedMemo) of(v *evaluator.Verdict, c *evaluator.Connection) string {
	if m.slots == nil {
		m.slots = make([]deniedSlot, 1<<deniedBits)
	}
	h := uint64(uintptr(unsafe.Pointer(v)))*0x9e3779b97f4a7c15 ^
		uint64(uintptr(unsafe.Pointer(c.Src.Pod)))*0xbf58476d1ce4e5b9 ^
		uint64(uintptr(unsafe.Pointer(c.Dst.Pod)))*0x94d049bb133111eb ^ uint64(uint32(c.Port))
	slot := &m.slots[h>>(64-deniedBits)]
	if slot.v != v || slot.c != *c {
		*slot = deniedSlot{v: v, c: *c, reason: v.ReasonFor(*c)}
	}
	return slot.reason
}

// refsOf returns ep resolved by both engines: from the memo slot m when it holds ep's pod
// at ep's address and both Refs are fresh (re-resolving into it otherwise), else resolved
// into scratch.
func refsOf(m *podMemoSlot, ep *evaluator.Endpoint, cur, enf *evaluator.Engine, scratch *refPair) *refPair {
	if m == nil || m.pod != ep.Pod {
		*scratch = refPair{cur: cur.Resolve(*ep), enf: enf.Resolve(*ep)}
		return scratch
	}
	if m.ip != ep.IP || !cur.Fresh(&m.refs.cur) || !enf.Fresh(&m.refs.enf) {
		m.ip, m.refs = ep.IP, refPair{cur: cur.Resolve(*ep), enf: enf.Resolve(*ep)}
	}
	return &m.refs
}

// reasonMemo remembers the explanations of allowed verdicts. An allowed verdict's
// explanation names only its rules and exemptions, never the connection (see
// evaluator.Verdict.Reason), and an Engine hands every connection with the same cache
// key the same verdict, sharing its slices: a verdict is recognized by its slices
// (which evaluators return read-only) and explained once instead of once per flow. An
// open-addressing table hashed by the slices' addresses (no strings hashed) that starts
// over past maxReasons: an evaluator that does not share slices (the Oracle) only ever
// misses, and the bound keeps it from growing.
type reasonMemo struct {
	index   []uint32 // 0 is empty, else a position in entries plus one
	entries []reasonSlot
}

type reasonSlot struct {
	k      reasonKey
	reason string
}

type reasonKey struct {
	egress, ingress    ruleList
	egExempt, inExempt evaluator.Exemption
}

type ruleList struct {
	first *evaluator.RuleRef
	n     int
}

// maxReasons bounds the memo.
const maxReasons = 1 << 15

func listOf(rs []evaluator.RuleRef) ruleList {
	if len(rs) == 0 {
		return ruleList{}
	}
	return ruleList{first: &rs[0], n: len(rs)}
}

func (m *reasonMemo) reason(v evaluator.Verdict, c evaluator.Connection) string { return m.of(&v, &c) }

func (m *reasonMemo) of(v *evaluator.Verdict, c *evaluator.Connection) string {
	if !v.Allowed {
		return v.ReasonFor(*c)
	}
	k := reasonKey{listOf(v.Egress.AllowedBy), listOf(v.Ingress.AllowedBy), v.Egress.Exempt, v.Ingress.Exempt}
	h := k.hash()
	if len(m.index) > 0 {
		mask := uint64(len(m.index) - 1)
		for i := h & mask; ; i = (i + 1) & mask {
			p := m.index[i]
			if p == 0 {
				break
			}
			if e := &m.entries[p-1]; e.k == k {
				return e.reason
			}
		}
	}
	if len(m.entries) >= maxReasons {
		m.entries, m.index = m.entries[:0], nil
	}
	if (len(m.entries)+1)*2 > len(m.index) {
		m.index = make([]uint32, max(256, 2*len(m.index)))
		for i := range m.entries {
			m.insert(m.entries[i].k.hash(), uint32(i+1))
		}
	}
	r := v.ReasonFor(*c)
	m.entries = append(m.entries, reasonSlot{k: k, reason: r})
	m.insert(h, uint32(len(m.entries)))
	return r
}

func (m *reasonMemo) insert(h uint64, pos uint32) {
	mask := uint64(len(m.index) - 1)
	i := h & mask
	for m.index[i] != 0 {
		i = (i + 1) & mask
	}
	m.index[i] = pos
}

func (k *reasonKey) hash() uint64 {
	h := (uint64(uintptr(unsafe.Pointer(k.egress.first)))^uint64(k.egress.n)<<48)*0x9e3779b97f4a7c15 ^
		(uint64(uintptr(unsafe.Pointer(k.ingress.first)))^uint64(k.ingress.n)<<48)*0xbf58476d1ce4e5b9 ^
		uint64(len(k.egExempt))<<8 ^ uint64(len(k.inExempt))
	return h ^ h>>29
}

// judgeWorkloadLevel judges an observation that names two workloads but no port (the
// Otterize network-mapper): the question is whether the client may reach the server at all,
// so it is asked on each port the server's pods declare, and the first port enforcement
// allows (else the first the current policies allow, else the first) stands for the edge.
func (s *Simulator) judgeWorkloadLevel(j Judgement) Judgement {
	f := j.Flow
	src, ok := s.res.resolve(&f.Source, "", false)
	if !ok || src.Kind != evaluator.Pod {
		j.Reason = SkipUnresolvedSource
		return j
	}
	dst, ok := s.res.resolve(&f.Destination, "", false)
	if !ok || dst.Kind != evaluator.Pod {
		j.Reason = SkipUnresolvedDest
		return j
	}
	candidates := []evaluator.Connection{}
	seen := map[cluster.ContainerPort]bool{}
	for _, p := range dst.Pod.Ports {
		k := cluster.ContainerPort{Port: p.Port, Protocol: p.Protocol}
		if !seen[k] {
			seen[k] = true
			candidates = append(candidates, evaluator.Connection{Src: src, Dst: dst, Protocol: p.Protocol, Port: p.Port})
		}
	}
	if len(candidates) == 0 {
		// Nothing declared: only rules without ports can admit it, as with port 0.
		candidates = append(candidates, evaluator.Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolTCP})
	}
	pick := -1
	var cur, enf []evaluator.Verdict
	for i, c := range candidates {
		cur, enf = append(cur, s.current.Evaluate(c)), append(enf, s.enforce.Evaluate(c))
		if enf[i].Allowed {
			pick = i
			break
		}
	}
	if pick < 0 {
		pick = 0
		for i := range cur {
			if cur[i].Allowed {
				pick = i
				break
			}
		}
	}
	j.Conn, j.Current, j.Enforced = candidates[pick], cur[pick], enf[pick]
	j.WouldDrop = j.Current.Allowed && !j.Enforced.Allowed
	j.Outcome = Denied
	if j.Enforced.Allowed {
		j.Outcome = Allowed
	}
	j.Reason = j.Enforced.ReasonFor(j.Conn)
	return j
}

// classify returns the skip reason of a flow that is not a new connection to judge, or "".
func classify(f *flows.Flow) string {
	switch {
	case !f.Source.IP.IsValid() || !f.Destination.IP.IsValid():
		return SkipNonIP
	case f.Type == "L7":
		// The proxy's L7 records repeat connections the L3/L4 records already carry.
		return SkipL7
	case f.Type == "SOCK":
		return SkipSock
	case isReply(f):
		// A reply belongs to the connection it answers; it is never judged on its own.
		return SkipReply
	}
	switch f.Protocol {
	case "TCP", "UDP", "SCTP":
	default:
		// NetworkPolicy says nothing about ICMP; implementations differ.
		return SkipUnsupportedProtocol
	}
	if f.DestinationPort == 0 {
		return SkipNoPort
	}
	return ""
}

// isReply: is_reply when the observation point knew; otherwise a TCP SYN-ACK is the
// answer to a connection, while any other forward packet (even without SYN) is traffic of
// the connection it belongs to and is judged.
func isReply(f *flows.Flow) bool {
	if f.IsReply != nil {
		return *f.IsReply
	}
	return f.Protocol == "TCP" && f.TCPFlags.SYN && f.TCPFlags.ACK
}

// Observe judges a flow event and adds it to the report; other events are counted.
// It returns the judgement for flow events (zero Judgement otherwise).
func (s *Simulator) Observe(ev flows.Event) Judgement {
	switch ev.Kind {
	case flows.KindFlow:
		j, sm, dm := s.judge(ev.Flow, ev.Line)
		s.agg.add(&j, sm, dm)
		return j
	case flows.KindMalformed:
		s.agg.malformed(ev)
		return Judgement{Line: ev.Line, Outcome: Skipped, Reason: "malformed:" + ev.Reason}
	case flows.KindLost:
		s.agg.lost(ev.Lost)
	case flows.KindNodeStatus:
		s.agg.nodeStatus(ev.NodeStatus)
	}
	return Judgement{Line: ev.Line, Outcome: Skipped, Reason: "event"}
}

// Report returns the report of everything observed so far.
func (s *Simulator) Report() *Report { return s.agg.report() }

func bucket(ip netip.Addr, v4, v6 int) netip.Prefix {
	ip = ip.Unmap()
	bits := v6
	if ip.Is4() {
		bits = v4
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.PrefixFrom(ip, ip.BitLen())
	}
	return p
}

// ruleOrigins reads the compiler's rules annotation of every compiled policy. A policy
// without one (or with one that does not parse) simply names no intents.
func ruleOrigins(ps []*networkingv1.NetworkPolicy) map[evaluator.PolicyRef][]compile.RuleOrigin {
	out := make(map[evaluator.PolicyRef][]compile.RuleOrigin, len(ps))
	for _, p := range ps {
		raw, ok := p.Annotations[compile.RulesAnnotation]
		if !ok {
			continue
		}
		var origins []compile.RuleOrigin
		if err := json.Unmarshal([]byte(raw), &origins); err == nil {
			out[evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}] = origins
		}
	}
	return out
}
