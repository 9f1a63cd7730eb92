package rollout

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// IngestStats counts what ingestion did. The counters only grow.
type IngestStats struct {
	Events, Flows, Observed, Skipped, Malformed, Lost, PolicyDrops, CountedDrops atomic.Int64
}

// Ingest reads the controller's flow source and feeds it to the soak stores of the
// governed namespaces, judging each flow as if its namespace were enforced, and counts the
// policy drops into enforced namespaces for automatic rollback.
//
// One goroutine does all of it, so the simulators (which are not safe for concurrent use)
// need no locks, and re-judging the stored edges after a model change happens in the same
// goroutine, after the simulators switched: an observation judged under the old model can
// never land after the re-judgement and leave a stale verdict behind.
type Ingest struct {
	sources []simulate.NamedSource // none: no flows, only re-judgement
	soaks   *Soaks
	drops   *dropCounter
	model   func() *model
	clock   clock.PassiveClock
	log     logr.Logger
	// tripped is called when a namespace crosses its drop threshold.
	tripped func(namespace string)

	kick    chan struct{}
	Stats   IngestStats
	metrics *alerts.Metrics // nil: none

	// owned by the ingestion goroutine
	rev     uint64
	version uint64
	gov     governedView
	sims    map[string]*simulate.Simulator
	// unmanaged holds, per enforcing namespace that saw a policy drop, the Simulator
	// that judges without shadowgate's policies there (unmanagedOptions).
	unmanaged map[string]*simulate.Simulator
}

// NewIngest returns an Ingest reading sources (there may be none).
func NewIngest(sources []simulate.NamedSource, soaks *Soaks, drops *dropCounter, model func() *model, clk clock.PassiveClock, log logr.Logger, tripped func(string)) *Ingest {
	return &Ingest{sources: sources, soaks: soaks, drops: drops, model: model, clock: clk, log: log, tripped: tripped,
		kick: make(chan struct{}, 1), sims: map[string]*simulate.Simulator{}, unmanaged: map[string]*simulate.Simulator{}}
}

// Changed tells ingestion that the model or the governed set changed. It never blocks.
func (in *Ingest) Changed() {
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// NeedLeaderElection: only the leader ingests; the stores live there.
func (in *Ingest) NeedLeaderElection() bool { return true }

// Start runs until ctx ends.
func (in *Ingest) Start(ctx context.Context) error {
	events := make(chan flows.Event, 256)
	for _, src := range in.sources {
		go in.read(ctx, src, events)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-in.kick:
			in.refresh()
		case ev := <-events:
			in.refresh()
			in.handle(ev)
		}
	}
}

// read pumps one source into events. A finite source's end, or a failing one, is a
// disconnection: nothing more will be observed from it, and the stores must not take the
// silence for clean traffic.
func (in *Ingest) read(ctx context.Context, src simulate.NamedSource, events chan<- flows.Event) {
	for {
		ev, err := src.Source.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			msg := "the flow source ended"
			if !errors.Is(err, io.EOF) {
				in.log.Error(err, "reading flows; the source is given up", "source", src.Name)
				msg = err.Error()
			}
			ev = flows.Event{Kind: flows.KindHealth, Health: &flows.Health{Time: in.clock.Now(), Source: src.Name,
				State: flows.Disconnected, Message: msg}}
			select {
			case events <- ev:
			case <-ctx.Done():
			}
			return
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// refresh switches to the current model and governed set, and re-judges the stored edges
// of every namespace whose judge changed.
func (in *Ingest) refresh() {
	m := in.model()
	if m != nil && m.snap.Rev == in.rev && in.soaks.Version() == in.version {
		return
	}
	gov := in.soaks.view()
	if m == nil {
		in.gov = gov
		return
	}
	modelChanged := m.snap.Rev != in.rev
	old := in.gov
	in.rev, in.version, in.gov = m.snap.Rev, gov.version, gov
	for ns, e := range gov.byNS {
		prev, known := old.byNS[ns]
		same := known && prev.gov == e.gov && prev.store == e.store
		if !modelChanged && same {
			continue
		}
		if sim, ok := in.sims[ns]; ok && same {
			// Only the cluster changed: move the namespace's judge in place and re-judge
			// what the change can have moved, instead of compiling and building two
			// engines again for every governed namespace on every pod event.
			_, err := sim.UpdateStore(m.base(ns), m.simulateOptions(e.gov), e.store)
			if err == nil {
				continue
			}
			if !errors.Is(err, simulate.ErrRebuild) {
				in.log.Error(err, "updating the judge in place; building a new one", "namespace", ns)
			}
		}
		delete(in.sims, ns)
		// Re-judge what the namespace's store holds with the judge flows will now go
		// through, so the verdicts of old observations match the new policies at once.
		if sim := in.simulator(m, e); sim != nil {
			e.store.Reevaluate(sim.JudgeEdge)
		}
	}
	for ns := range in.sims {
		if _, ok := gov.byNS[ns]; !ok {
			delete(in.sims, ns)
		}
	}
	for ns, sim := range in.unmanaged {
		if _, ok := gov.byNS[ns]; !ok {
			delete(in.unmanaged, ns)
			continue
		}
		if modelChanged {
			if err := sim.Update(m.base(ns), unmanagedOptions()); err != nil {
				// Built again on the next drop.
				delete(in.unmanaged, ns)
			}
		}
	}
}

// unmanagedSimulator returns namespace's judge of drops, building it on first use.
func (in *Ingest) unmanagedSimulator(m *model, namespace string) *simulate.Simulator {
	if sim, ok := in.unmanaged[namespace]; ok {
		return sim
	}
	sim, err := simulate.New(m.base(namespace), unmanagedOptions())
	if err != nil {
		// Options that enforce nothing cannot fail validation.
		panic(err)
	}
	in.unmanaged[namespace] = sim
	return sim
}

func (in *Ingest) simulator(m *model, e governedEntry) *simulate.Simulator {
	if s, ok := in.sims[e.gov.namespace]; ok {
		return s
	}
	s, err := m.simulator(e.gov)
	if err != nil {
		in.log.Error(err, "building the judge; flows into the namespace are not observed", "namespace", e.gov.namespace)
		return nil
	}
	in.sims[e.gov.namespace] = s
	return s
}

func (in *Ingest) handle(ev flows.Event) {
	in.Stats.Events.Add(1)
	switch ev.Kind {
	case flows.KindFlow:
		in.Stats.Flows.Add(1)
		in.flow(ev.Flow)
	case flows.KindHealth:
		for ns, e := range in.gov.byNS {
			if err := e.store.Health(soak.AllNamespaces(), *ev.Health); err != nil {
				in.log.Error(err, "recording source health", "namespace", ns)
			}
		}
	case flows.KindLost:
		in.Stats.Lost.Add(int64(ev.Lost.NumEvents))
		for _, e := range in.scopeOfNode(ev.Lost.NodeName) {
			e.store.Lost(soak.AllNamespaces(), ev.Lost.Time, ev.Lost.NumEvents)
		}
	case flows.KindNodeStatus:
		in.nodeStatus(ev.NodeStatus)
	case flows.KindMalformed:
		in.Stats.Malformed.Add(1)
		in.log.V(1).Info("malformed flow", "reason", ev.Reason, "detail", ev.Detail)
	}
}

// scopeOfNode returns the governed namespaces with pods on node; all of them when the
// node is unnamed or unknown, since then nobody can say whose flows were lost.
func (in *Ingest) scopeOfNode(node string) []governedEntry {
	all := make([]governedEntry, 0, len(in.gov.byNS))
	for _, e := range in.gov.byNS {
		all = append(all, e)
	}
	m := in.model()
	if node == "" || m == nil {
		return all
	}
	hit := map[string]bool{}
	known := false
	for _, p := range m.snap.Pods {
		if p.NodeName == node {
			known = true
			hit[p.Namespace] = true
		}
	}
	if !known {
		return all
	}
	var out []governedEntry
	for ns, e := range in.gov.byNS {
		if hit[ns] {
			out = append(out, e)
		}
	}
	return out
}

// nodeStatus turns a relay's node status into health: an unavailable node opens a gap
// for the namespaces with pods on it, a connected one closes it.
func (in *Ingest) nodeStatus(st *flows.NodeStatus) {
	var state flows.HealthState
	switch st.State {
	case "NODE_CONNECTED":
		state = flows.Connected
	case "NODE_UNAVAILABLE", "NODE_ERROR", "NODE_GONE":
		state = flows.Degraded
	default:
		return
	}
	h := flows.Health{Time: st.Time, Source: hubble.SourceName, State: state, Nodes: st.NodeNames, Message: st.Message}
	for _, e := range in.gov.byNS {
		if err := e.store.Health(soak.AllNamespaces(), h); err != nil {
			in.log.Error(err, "recording node status", "namespace", e.gov.namespace)
		}
	}
}

// flow judges one flow for each governed namespace whose enforcement would judge it: the
// destination's, and the source's when that namespace enforces egress.
func (in *Ingest) flow(f *flows.Flow) {
	m := in.model()
	if m == nil {
		in.Stats.Skipped.Add(1)
		return
	}
	dstNS, srcNS := in.namespaceOf(m, &f.Destination), in.namespaceOf(m, &f.Source)
	if isPolicyDrop(f.Verdict, f.DropReason) {
		// Hubble reports a drop where it happened: at the source's egress or at the
		// destination's ingress. It is counted against that side's namespace only.
		in.Stats.PolicyDrops.Add(1)
		if f.TrafficDirection == "EGRESS" {
			in.countDrop(m, f, srcNS, true)
		} else {
			in.countDrop(m, f, dstNS, false)
		}
	}
	observed := false
	for _, ns := range []string{dstNS, srcNS} {
		e, ok := in.gov.byNS[ns]
		if !ok || (ns == srcNS && ns != dstNS && !e.gov.egress) || (ns == srcNS && ns == dstNS && observed) {
			continue
		}
		sim := in.simulator(m, e)
		if sim == nil {
			continue
		}
		j := sim.Judge(f, 0)
		if j.Outcome == simulate.Skipped {
			continue
		}
		e.store.Observe(sim.EdgeKey(&j), f.Time, soak.Verdict{Namespace: ns, Uncovered: j.WouldDrop, Reason: j.Reason})
		in.Stats.Observed.Add(1)
		observed = true
	}
}

// namespaceOf is the endpoint's namespace as Hubble reported it, else as the model
// resolves its address.
func (in *Ingest) namespaceOf(m *model, ep *flows.Endpoint) string {
	if ep.Namespace != "" {
		return ep.Namespace
	}
	if ep.IP.IsValid() {
		if p := m.snap.PodByIP(ep.IP); p != nil {
			return p.Namespace
		}
	}
	return ""
}

// countDrop counts a policy drop against ns if ns is enforcing and the drop is
// shadowgate's doing (in the metrics always, for automatic rollback when it is armed): the policies other than shadowgate's would have let the
// connection through (or the connection cannot be resolved, and then it counts, since the
// drop happened in an enforced namespace). egress marks a drop counted against the source.
func (in *Ingest) countDrop(m *model, f *flows.Flow, ns string, egress bool) {
	e, ok := in.gov.byNS[ns]
	if !ok || !e.enforcing || (egress && !e.gov.egress) {
		return
	}
	j := in.unmanagedSimulator(m, ns).Judge(f, 0)
	if j.Outcome != simulate.Skipped && !j.Current.Allowed {
		return
	}
	if in.metrics != nil {
		in.metrics.EnforcedDrops.WithLabelValues(ns).Inc()
	}
	if !in.drops.Armed(ns) {
		return
	}
	in.Stats.CountedDrops.Add(1)
	at := f.Time
	if at.IsZero() {
		at = in.clock.Now()
	}
	if in.drops.Add(ns, at, describeFlow(f)) {
		in.tripped(ns)
	}
}

func describeFlow(f *flows.Flow) string {
	side := func(ep flows.Endpoint) string {
		switch {
		case ep.Namespace != "" && ep.PodName != "":
			return ep.Namespace + "/" + ep.PodName
		case ep.IP.IsValid():
			return ep.IP.String()
		}
		return "?"
	}
	s := side(f.Source) + " → " + side(f.Destination)
	if f.DestinationPort != 0 {
		s += ":" + strconv.FormatUint(uint64(f.DestinationPort), 10)
	}
	if f.Protocol != "" {
		s += "/" + f.Protocol
	}
	return s + " " + f.DropReason + " at " + f.Time.UTC().Format(time.RFC3339)
}
