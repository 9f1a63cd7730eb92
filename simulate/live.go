package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// snapshotSource names the health "source" that stands for the cluster snapshot: while it
// fails to load, every governed namespace has an open gap.
const snapshotSource = "cluster-snapshot"

// LiveConfig configures a Live evaluation.
type LiveConfig struct {
	Gate soak.GateConfig
	// StatePath is where the soak store is persisted ("" keeps it in memory only).
	StatePath string
	Clock     clock.Clock
	Metrics   *alerts.Metrics // nil: no metrics
}

// Live is the long-running shadow evaluation: a Simulator judges each flow, the soak store
// keeps what was judged over the window, and the gate answers per namespace. Observe, Swap,
// Report and Save are safe for concurrent use.
type Live struct {
	cfg   LiveConfig
	clock clock.Clock
	m     *alerts.Metrics

	mu      sync.Mutex
	sim     *Simulator
	store   *soak.Store
	counts  FlowCounts
	cursors map[string]Cursor
	sources map[string]*SourceStatus
	// resumed are the cursors loaded with the state: events at or before them were already
	// counted before a restart and are skipped once.
	resumed map[string]Cursor
	// nodeNS maps a node to the governed namespaces with pods on it, for lost events and
	// node outages.
	nodeNS map[string][]string
	// governed is what sim enforces, as of the last swap: a namespace that leaves it keeps
	// its soak data (it may come back) but leaves the report, the gates and the metrics.
	governed map[string]bool
}

// Cursor is how far a source had been read when the state was saved.
type Cursor struct {
	Line int       `json:"line,omitempty"`
	Time time.Time `json:"time,omitempty"`
}

// SourceStatus is one flow source's state, for /report.
type SourceStatus struct {
	Name     string    `json:"name"`
	State    string    `json:"state"`
	Since    time.Time `json:"since"`
	LastFlow time.Time `json:"lastFlow,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// LiveReport is the JSON of /report: the offline report's schema, computed over the soak
// window from the store, plus the gate result and soak summary of every governed namespace.
type LiveReport struct {
	Report
	GeneratedAt time.Time      `json:"generatedAt"`
	Gates       []soak.Result  `json:"gates"`
	Soak        []soak.Summary `json:"soak"`
	Sources     []SourceStatus `json:"sources"`
}

// NewLive starts a live evaluation on sim, restoring the store from cfg.StatePath when it
// exists. A state file that cannot be read is moved aside and reported in the returned
// warning; the fresh store then remembers the loss, so no gate can pass on it.
func NewLive(sim *Simulator, opts soak.Options, cfg LiveConfig) (*Live, []string, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if err := cfg.Gate.Validate(); err != nil {
		return nil, nil, err
	}
	l := &Live{cfg: cfg, clock: cfg.Clock, m: cfg.Metrics, cursors: map[string]Cursor{}, sources: map[string]*SourceStatus{}, resumed: map[string]Cursor{}}
	l.counts.Skipped, l.counts.Malformed = map[string]int64{}, map[string]int64{}
	var warnings []string
	var err error
	if cfg.StatePath == "" {
		l.store, err = soak.New(opts, cfg.Clock)
		if err != nil {
			return nil, nil, err
		}
	} else {
		// The cursor file is written before the store, so a crash between the two leaves a
		// cursor ahead of the store: what lies between is inside the downtime gap that
		// loading the store records, never counted twice.
		if c, cerr := readCursors(cursorPath(cfg.StatePath)); cerr == nil {
			l.resumed = c
		} else if !errors.Is(cerr, fs.ErrNotExist) {
			warnings = append(warnings, cerr.Error())
		}
		l.store, err = soak.LoadFile(cfg.StatePath, opts, cfg.Clock)
		var se *soak.SnapshotError
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			l.resumed = map[string]Cursor{} // no store: nothing was counted
		case errors.As(err, &se):
			l.resumed = map[string]Cursor{}
			warnings = append(warnings, fmt.Sprintf("state %s could not be loaded (%v); starting a fresh soak with the loss recorded as a gap", cfg.StatePath, err))
		default:
			return nil, nil, err
		}
	}
	l.swapLocked(sim)
	return l, warnings, nil
}

// Store returns the soak store.
func (l *Live) Store() *soak.Store { return l.store }

// Swap replaces the simulator after the cluster snapshot changed (intents, workloads or
// policies) and re-judges every stored edge at once, so a namespace whose missing intent was
// added is clean immediately, without restarting its soak.
func (l *Live) Swap(sim *Simulator) time.Duration {
	start := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.swapLocked(sim)
	l.store.Reevaluate(sim.JudgeEdge)
	return l.loadedLocked(start)
}

// loadedLocked closes the snapshot gap a failed load opened and accounts for a
// recompilation that started at start.
func (l *Live) loadedLocked(start time.Time) time.Duration {
	if l.store.Health(soak.AllNamespaces(), flows.Health{Time: l.clock.Now(), Source: snapshotSource, State: flows.Connected,
		Message: "cluster snapshot loaded"}) != nil {
		// Health only fails on events it cannot place; a reload is always placeable.
		panic("simulate: snapshot health event rejected")
	}
	d := l.clock.Since(start)
	if l.m != nil {
		l.m.Recompiles.Inc()
		l.m.RecompileSeconds.Observe(d.Seconds())
	}
	return d
}

// SnapshotFailed records that the cluster snapshot could not be reloaded: every governed
// namespace has a gap from now until a snapshot loads again.
func (l *Live) SnapshotFailed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.store.Health(soak.AllNamespaces(), flows.Health{Time: l.clock.Now(), Source: snapshotSource, State: flows.Disconnected,
		Message: "cluster snapshot failed to load: " + err.Error()})
}

func (l *Live) swapLocked(sim *Simulator) {
	l.sim = sim
	now := l.clock.Now()
	for ns := range l.governed {
		if !sim.enforced[ns] {
			// A stale gauge would keep an alert firing for a namespace nobody judges.
			l.metric(func(m *alerts.Metrics) { m.Forget(ns) })
		}
	}
	l.governed = maps.Clone(sim.enforced)
	l.nodeNS = map[string][]string{}
	for ns := range sim.enforced {
		l.store.Track(ns, now)
		if l.m != nil {
			l.m.SoakWindow.WithLabelValues(ns).Set(l.cfg.Gate.Window.Seconds())
		}
	}
	seen := map[string]bool{}
	for _, p := range sim.snap.Pods {
		if p.NodeName == "" || !sim.enforced[p.Namespace] || seen[p.NodeName+"/"+p.Namespace] {
			continue
		}
		seen[p.NodeName+"/"+p.Namespace] = true
		l.nodeNS[p.NodeName] = append(l.nodeNS[p.NodeName], p.Namespace)
	}
}

// Observe judges one event from the named source and records it.
func (l *Live) Observe(source string, ev flows.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.skipResumed(source, ev) {
		return
	}
	now := l.clock.Now()
	st := l.source(source, now)
	switch ev.Kind {
	case flows.KindFlow:
		l.observeFlow(source, st, ev)
	case flows.KindMalformed:
		l.counts.Read++
		l.counts.Malformed[ev.Reason]++
		if len(l.counts.MalformedLines) < l.sim.opts.MaxMalformed {
			l.counts.MalformedLines = append(l.counts.MalformedLines, MalformedLine{Line: ev.Line, Reason: ev.Reason, Detail: ev.Detail})
		}
		l.metric(func(m *alerts.Metrics) {
			m.FlowsRead.WithLabelValues(source, "malformed").Inc()
			m.FlowsMalformed.WithLabelValues(source, ev.Reason).Inc()
		})
	case flows.KindLost:
		l.counts.Read++
		l.counts.LostEventLines++
		l.counts.LostEvents += ev.Lost.NumEvents
		l.store.Lost(l.nodeScope(ev.Lost.NodeName), orNow(ev.Lost.Time, now), ev.Lost.NumEvents)
		l.metric(func(m *alerts.Metrics) {
			m.FlowsRead.WithLabelValues(source, "lost-events").Inc()
			m.LostFlows.WithLabelValues(source).Add(float64(ev.Lost.NumEvents))
		})
	case flows.KindNodeStatus:
		l.counts.Read++
		l.counts.NodeStatusLines++
		l.observeNodeStatus(source, ev.NodeStatus, now)
		l.metric(func(m *alerts.Metrics) { m.FlowsRead.WithLabelValues(source, "node-status").Inc() })
	case flows.KindHealth:
		h := *ev.Health
		h.Source = source
		h.Time = orNow(h.Time, now)
		scope := soak.AllNamespaces()
		if len(h.Nodes) > 0 && h.State != flows.Degraded {
			scope = l.nodesScope(h.Nodes)
		}
		_ = l.store.Health(scope, h)
		st.State, st.Since, st.Message = string(h.State), h.Time, h.Message
		l.metric(func(m *alerts.Metrics) {
			up := 0.0
			if h.State == flows.Connected || h.State == flows.CaughtUp {
				up = 1
			}
			m.SourceUp.WithLabelValues(source).Set(up)
		})
	}
	if ev.Line > 0 {
		c := l.cursors[source]
		c.Line = ev.Line
		l.cursors[source] = c
	}
}

// skipResumed drops the events a restart would otherwise count twice: those at or before
// the cursor saved with the state (by line for files, by time for streams).
func (l *Live) skipResumed(source string, ev flows.Event) bool {
	c, ok := l.resumed[source]
	if !ok {
		return false
	}
	if ev.Line > 0 && c.Line > 0 {
		if ev.Line <= c.Line {
			return true
		}
		delete(l.resumed, source)
		return false
	}
	if ev.Kind == flows.KindFlow && !c.Time.IsZero() && !ev.Flow.Time.After(c.Time) {
		return true
	}
	if ev.Kind == flows.KindFlow {
		delete(l.resumed, source)
	}
	return false
}

func (l *Live) observeFlow(source string, st *SourceStatus, ev flows.Event) {
	f := ev.Flow
	j := l.sim.Judge(f, ev.Line)
	l.counts.Read++
	if !f.Time.IsZero() {
		c := l.cursors[source]
		if f.Time.After(c.Time) {
			c.Time = f.Time
		}
		l.cursors[source] = c
		if f.Time.After(st.LastFlow) {
			st.LastFlow = f.Time
		}
	}
	l.metric(func(m *alerts.Metrics) {
		if !f.Time.IsZero() {
			m.LastFlow.WithLabelValues(source).Set(float64(f.Time.UnixNano()) / 1e9)
		}
	})
	if j.Outcome == Skipped {
		l.counts.Skipped[j.Reason]++
		l.metric(func(m *alerts.Metrics) {
			m.FlowsRead.WithLabelValues(source, "skipped").Inc()
			m.FlowsSkipped.WithLabelValues(source, j.Reason).Inc()
		})
		return
	}
	l.counts.Evaluated++
	l.metric(func(m *alerts.Metrics) { m.FlowsRead.WithLabelValues(source, "evaluated").Inc() })
	l.countEnforcedDrop(&j)
	counted := l.sim.countedIn(&j)
	if len(counted) == 0 {
		return
	}
	dropped := droppedIn(&j)
	key := l.sim.agg.edgeKey(&j)
	verdicts := make([]soak.Verdict, 0, len(counted))
	for _, ns := range counted {
		v := soak.Verdict{Namespace: ns}
		if j.WouldDrop && contains(dropped, ns) {
			v.Uncovered, v.Reason = true, uncoveredReason(&j)
		}
		verdicts = append(verdicts, v)
		l.metric(func(m *alerts.Metrics) {
			m.Connections.WithLabelValues(ns).Inc()
			if v.Uncovered {
				m.WouldDrop.WithLabelValues(ns).Inc()
				m.ObserveWouldDropEdge(ns, key.Source.Namespace, peerName(key.Source), peerName(key.Destination), key.Port, key.Protocol)
			}
		})
	}
	l.store.Observe(key, orNow(f.Time, l.clock.Now()), verdicts...)
}

// countEnforcedDrop counts flows Hubble saw dropped by policy into an enforced namespace:
// under enforcement, those are the drops a rollback is about.
func (l *Live) countEnforcedDrop(j *Judgement) {
	f := j.Flow
	if l.m == nil || f.Verdict != "DROPPED" || !strings.HasPrefix(f.DropReason, "POLICY_DEN") {
		return
	}
	if j.Conn.Dst.Kind == evaluator.Pod && l.sim.enforced[j.Conn.Dst.Pod.Namespace] {
		l.m.EnforcedDrops.WithLabelValues(j.Conn.Dst.Pod.Namespace).Inc()
	}
}

func (l *Live) observeNodeStatus(source string, ns *flows.NodeStatus, now time.Time) {
	h := flows.Health{Time: orNow(ns.Time, now), Source: source, Nodes: ns.NodeNames, Message: ns.Message}
	switch {
	case strings.Contains(ns.State, "CONNECTED") && !strings.Contains(ns.State, "UN"):
		h.State = flows.Connected
	default:
		h.State, h.Message = flows.Degraded, strings.TrimSpace(ns.State+" "+ns.Message)
	}
	scope := l.nodesScope(ns.NodeNames)
	if h.State == flows.Degraded {
		scope = soak.AllNamespaces()
		if len(ns.NodeNames) > 0 {
			scope = l.nodesScope(ns.NodeNames)
		}
	}
	_ = l.store.Health(scope, h)
}

// nodeScope is the governed namespaces with pods on node; an unknown node (or none named)
// could hold any of them.
func (l *Live) nodeScope(node string) soak.Scope {
	if node == "" {
		return soak.AllNamespaces()
	}
	return l.nodesScope([]string{node})
}

func (l *Live) nodesScope(nodes []string) soak.Scope {
	var out []string
	for _, n := range nodes {
		nss, ok := l.nodeNS[n]
		if !ok {
			return soak.AllNamespaces()
		}
		out = append(out, nss...)
	}
	if len(out) == 0 {
		// A node that runs no governed pod: nothing of ours was on it.
		return soak.Namespaces()
	}
	return soak.Namespaces(out...)
}

func (l *Live) source(name string, now time.Time) *SourceStatus {
	st, ok := l.sources[name]
	if !ok {
		st = &SourceStatus{Name: name, State: "reading", Since: now}
		l.sources[name] = st
	}
	return st
}

func (l *Live) metric(fn func(*alerts.Metrics)) {
	if l.m != nil {
		fn(l.m)
	}
}

// Gate answers for one namespace at now.
func (l *Live) Gate(namespace string) (soak.Result, error) {
	l.mu.Lock()
	governed := l.governed[namespace]
	l.mu.Unlock()
	res, err := l.store.Gate(namespace, l.clock.Now(), l.cfg.Gate)
	if err != nil || governed {
		return res, err
	}
	// Data kept from when it was governed says nothing about enforcing it now.
	res.Pass = false
	res.Reasons = append([]soak.Reason{{Code: soak.CodeUntracked, Message: fmt.Sprintf(
		"namespace %s is not governed by this simulator: nothing is judged for it", namespace)}}, res.Reasons...)
	return res, nil
}

// Report computes the live report over the window and refreshes the gate metrics.
func (l *Live) Report() *LiveReport {
	now := l.clock.Now()
	l.mu.Lock()
	counts := copyFlowCounts(l.counts)
	enforced := make([]string, 0, len(l.sim.enforced))
	for ns := range l.sim.enforced {
		enforced = append(enforced, ns)
	}
	warnings := []string{}
	for _, w := range l.sim.compiled.Warnings {
		warnings = append(warnings, w.String())
	}
	sources := make([]SourceStatus, 0, len(l.sources))
	for _, st := range l.sources {
		sources = append(sources, *st)
	}
	l.mu.Unlock()
	sort.Strings(enforced)
	sort.Slice(sources, func(i, j int) bool { return sources[i].Name < sources[j].Name })
	r := &LiveReport{GeneratedAt: now.UTC(), Sources: sources, Gates: []soak.Result{}}
	r.Enforced, r.Flows, r.Warnings = enforced, counts, warnings
	r.Namespaces, r.Uncovered, r.Edges = []NamespaceReport{}, []Edge{}, []Edge{}
	r.Soak = slices.DeleteFunc(l.store.Summaries(now), func(sum soak.Summary) bool { return !slices.Contains(enforced, sum.Namespace) })
	for _, sum := range r.Soak {
		nr := NamespaceReport{Namespace: sum.Namespace, Enforced: contains(enforced, sum.Namespace), Connections: sum.Connections, UncoveredEdges: sum.UncoveredEdges}
		for _, e := range sum.Uncovered {
			nr.WouldDrop += e.Count
		}
		r.Namespaces = append(r.Namespaces, nr)
		for _, e := range l.store.Edges(sum.Namespace, now) {
			edge := Edge{Source: e.Source, Destination: e.Destination, Port: e.Port, Protocol: e.Protocol, Count: e.Count,
				FirstSeen: e.FirstSeen, LastSeen: e.LastSeen, Reason: e.Reason, Status: StatusCovered}
			if e.Uncovered {
				edge.Status = StatusWouldDrop
				r.Uncovered = append(r.Uncovered, edge)
			}
			r.Edges = append(r.Edges, edge)
		}
		g, err := l.store.Gate(sum.Namespace, now, l.cfg.Gate)
		if err != nil {
			g = soak.Result{Namespace: sum.Namespace, Reasons: []soak.Reason{{Code: "error", Message: err.Error()}}}
		}
		r.Gates = append(r.Gates, g)
		l.metric(func(m *alerts.Metrics) {
			pass := 0.0
			if g.Pass {
				pass = 1
			}
			m.GatePass.WithLabelValues(sum.Namespace).Set(pass)
			m.GateReasons.DeletePartialMatch(map[string]string{"namespace": sum.Namespace})
			for _, reason := range g.Reasons {
				m.GateReasons.WithLabelValues(sum.Namespace, reason.Code).Set(1)
			}
			m.UncoveredEdges.WithLabelValues(sum.Namespace).Set(float64(sum.UncoveredEdges))
			m.SoakCoverage.WithLabelValues(sum.Namespace).Set(sum.CoveredSeconds)
			if !sum.TrackedSince.IsZero() {
				m.SoakStart.WithLabelValues(sum.Namespace).Set(float64(sum.TrackedSince.UnixNano()) / 1e9)
			}
		})
	}
	sortEdges(r.Uncovered)
	sortEdges(r.Edges)
	return r
}

// Save persists the store (and the sources' cursors) to the state path, atomically.
func (l *Live) Save() error {
	if l.cfg.StatePath == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.store.Expire(l.clock.Now())
	if err := writeCursors(cursorPath(l.cfg.StatePath), l.cursors); err != nil {
		return err
	}
	return l.store.SaveFile(l.cfg.StatePath)
}

// NamedSource is a flow source and the name its events are recorded under.
type NamedSource struct {
	Name   string
	Source flows.Source
}

// Run feeds every source into Observe until ctx ends or every source is exhausted. A
// source that fails is reported as disconnected (a gap), not as the end of the run.
func (l *Live) Run(ctx context.Context, sources ...NamedSource) error {
	type item struct {
		name string
		ev   flows.Event
	}
	ch := make(chan item, 1024)
	var wg sync.WaitGroup
	errs := make(chan error, len(sources))
	for _, s := range sources {
		wg.Add(1)
		go func(s NamedSource) {
			defer wg.Done()
			for {
				ev, err := s.Source.Next(ctx)
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("source %s: %w", s.Name, err)
						ch <- item{s.Name, flows.Event{Kind: flows.KindHealth, Health: &flows.Health{Time: l.clock.Now(), State: flows.Disconnected, Message: err.Error()}}}
					}
					return
				}
				select {
				case ch <- item{s.Name, ev}:
				case <-ctx.Done():
					return
				}
			}
		}(s)
	}
	go func() { wg.Wait(); close(ch) }()
	for it := range ch {
		l.Observe(it.name, it.ev)
	}
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// JudgeEdge re-judges a stored edge against this simulator's policy sets, for
// soak.Store.Reevaluate: each peer is stood for by a pod of its workload, an address of
// its CIDR, or its node. An edge whose workload no longer exists stays uncovered: it
// cannot be shown covered.
//
// A node sending to a workload is two peers (see soak.KindCrossNode). An edge from a
// KindCrossNode peer stands for flows that reached the workload's pods on other nodes:
// it is judged against a pod that is not on the node (a copy moved off it when every pod
// is there now), so the own-node exemption never clears it. An edge from a KindNode peer
// stands for flows to pods on the node itself and is judged against a pod there. Stores
// written before the two were told apart hold cross-node flows under KindNode too; for
// those, an uncovered edge (was) is judged as a cross-node one, since only a flow from
// another node can have made it uncovered, and a covered one as the node's own.
func (s *Simulator) JudgeEdge(namespace string, key soak.EdgeKey, was bool) (bool, string) {
	if key.Port == 0 && key.Protocol == "" {
		f := &flows.Flow{WorkloadLevel: true, Source: workloadEndpoint(key.Source), Destination: workloadEndpoint(key.Destination)}
		j := s.judgeWorkloadLevel(Judgement{Flow: f, Outcome: Skipped})
		return s.uncoveredIn(namespace, &j)
	}
	src, ok := s.peerEndpoint(key.Source, "", false)
	if !ok {
		return true, "source no longer in the cluster snapshot: cannot be shown covered"
	}
	cross := key.Source.Kind == soak.KindCrossNode || (was && src.Kind == evaluator.Host)
	dst, ok := s.peerEndpoint(key.Destination, src.Node, cross)
	if !ok {
		return true, "destination no longer in the cluster snapshot: cannot be shown covered"
	}
	if key.Source.Kind == soak.KindCrossNode && dst.Kind == evaluator.Pod && src.Kind == evaluator.Host {
		dst.Pod = offNode(dst.Pod, src)
	}
	c := evaluator.Connection{Src: src, Dst: dst, Protocol: corev1.Protocol(key.Protocol), Port: key.Port}
	// An edge enforcement allows is covered whatever the current policies say: most
	// edges cost one verdict, which after a reload is computed, not cached.
	j := Judgement{Conn: c, Enforced: s.enforce.Evaluate(c), Outcome: Allowed}
	if !j.Enforced.Allowed {
		j.Current = s.current.Evaluate(c)
		j.WouldDrop = j.Current.Allowed
		j.Outcome = Denied
	}
	return s.uncoveredIn(namespace, &j)
}

func (s *Simulator) uncoveredIn(namespace string, j *Judgement) (bool, string) {
	if j.Outcome == Skipped {
		return true, "cannot be judged: " + j.Reason
	}
	if j.WouldDrop && contains(droppedIn(j), namespace) {
		return true, uncoveredReason(j)
	}
	return false, ""
}

func workloadEndpoint(p soak.Peer) flows.Endpoint {
	return flows.Endpoint{Namespace: p.Namespace, Workloads: []flows.Workload{{Name: p.Workload, Kind: p.Kind}}}
}

// peerEndpoint turns a stored peer back into an endpoint: a pod of the workload
// (preferring one on node, or with elsewhere one not on node), an address of the CIDR, or
// the node.
func (s *Simulator) peerEndpoint(p soak.Peer, node string, elsewhere bool) (evaluator.Endpoint, bool) {
	switch p.Kind {
	case soak.KindExternal:
		pfx, err := netip.ParsePrefix(p.CIDR)
		if err != nil {
			return evaluator.Endpoint{}, false
		}
		return evaluator.Endpoint{Kind: evaluator.External, IP: pfx.Addr()}, true
	case soak.KindNode, soak.KindCrossNode:
		ep := evaluator.Endpoint{Kind: evaluator.Host, Node: p.Node}
		if ip, ok := s.snap.NodeIP(p.Node); ok {
			ep.IP = ip
		} else if ip, err := netip.ParseAddr(p.Node); err == nil {
			ep.IP, ep.Node = ip, "" // a node known only by its address
			if n, ok := s.snap.NodeByIP(ip); ok {
				ep.Node = n
			}
		}
		return ep, true
	}
	var pick *cluster.Pod
	for _, pod := range s.res.workloadPods(cluster.WorkloadID{Namespace: p.Namespace, Name: p.Workload, Kind: p.Kind}) {
		if pick == nil || (node != "" && (pod.NodeName == node) != elsewhere && (pick.NodeName == node) == elsewhere) {
			pick = pod
		}
	}
	if pick == nil {
		if g, ok := s.res.ghosts[p.Namespace+"/"+p.Workload]; ok {
			pick = g
		}
	}
	if pick == nil {
		return evaluator.Endpoint{}, false
	}
	ep := evaluator.Endpoint{Kind: evaluator.Pod, Pod: pick}
	if len(pick.IPs) > 0 {
		ep.IP = pick.IPs[0]
	}
	if node != "" && pick.NodeName != node && pick.Synthesized && !elsewhere {
		// A pod made from a template has no node: it stands in on the node the edge names
		// (or, standing in elsewhere, on none).
		cp := *pick
		cp.NodeName = node
		ep.Pod = &cp
	}
	return ep, true
}

// offNode returns p, or a copy of p moved off the node of src when p runs there: the
// stand-in for a pod on another node when the workload has none elsewhere now.
func offNode(p *cluster.Pod, src evaluator.Endpoint) *cluster.Pod {
	onNode := (src.Node != "" && p.NodeName == src.Node) || (src.IP.IsValid() && p.HostIP.IsValid() && p.HostIP.Unmap() == src.IP.Unmap())
	if !onNode {
		return p
	}
	cp := *p
	cp.NodeName, cp.HostIP = "", netip.Addr{}
	return &cp
}

// countedIn names the governed namespaces whose enforcement judges a connection.
func (s *Simulator) countedIn(j *Judgement) []string {
	var out []string
	if j.Conn.Dst.Kind == evaluator.Pod && s.enforced[j.Conn.Dst.Pod.Namespace] {
		out = append(out, j.Conn.Dst.Pod.Namespace)
	}
	if s.opts.Compile.Egress && j.Conn.Src.Kind == evaluator.Pod && s.enforced[j.Conn.Src.Pod.Namespace] && !contains(out, j.Conn.Src.Pod.Namespace) {
		out = append(out, j.Conn.Src.Pod.Namespace)
	}
	return out
}

func peerName(p soak.Peer) string {
	switch p.Kind {
	case soak.KindExternal:
		return p.CIDR
	case soak.KindNode, soak.KindCrossNode:
		return "node"
	}
	return p.Workload
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func copyFlowCounts(c FlowCounts) FlowCounts {
	out := c
	out.Skipped, out.Malformed = copyCounts(c.Skipped), copyCounts(c.Malformed)
	out.MalformedLines = append([]MalformedLine(nil), c.MalformedLines...)
	return out
}

func cursorPath(state string) string { return state + ".cursor" }

func readCursors(path string) (map[string]Cursor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := map[string]Cursor{}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("cursor file %s: %w", path, err)
	}
	return c, nil
}

// writeCursors writes atomically: temp file, fsync, rename.
func writeCursors(path string, c map[string]Cursor) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
