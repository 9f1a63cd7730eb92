// Package alerts holds shadowgate's Prometheus metrics (all of them, in this one file, under
// the shadowgate_ namespace) and the alert rules built on them.
package alerts

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "shadowgate"

// DefaultEdgeSeriesCap bounds the per-edge would-drop series: edges are chosen by the
// traffic, so an unlucky cluster could otherwise mint a series per client.
const DefaultEdgeSeriesCap = 500

// Metrics are every metric shadowgate exports. Build one per process with New and pass it
// down; nothing registers on the global registry.
type Metrics struct {
	Registry *prometheus.Registry

	FlowsRead      *prometheus.CounterVec // source, outcome (evaluated | skipped | malformed | lost-events | node-status | health)
	FlowsSkipped   *prometheus.CounterVec // source, reason
	FlowsMalformed *prometheus.CounterVec // source, reason
	LostFlows      *prometheus.CounterVec // source
	SourceUp       *prometheus.GaugeVec   // source
	LastFlow       *prometheus.GaugeVec   // source: unix seconds of the newest flow

	Connections    *prometheus.CounterVec // namespace
	WouldDrop      *prometheus.CounterVec // namespace
	WouldDropEdge  *prometheus.CounterVec // namespace, source_namespace, source_workload, destination_workload, port, protocol
	SeriesOverflow *prometheus.CounterVec // metric: observations not given their own series because of the cap
	UncoveredEdges *prometheus.GaugeVec   // namespace
	GatePass       *prometheus.GaugeVec   // namespace: 1 passes, 0 blocked
	GateReasons    *prometheus.GaugeVec   // namespace, code
	SoakCoverage   *prometheus.GaugeVec   // namespace: seconds of healthy ingestion in the window
	SoakWindow     *prometheus.GaugeVec   // namespace: the window, seconds
	SoakStart      *prometheus.GaugeVec   // namespace: unix seconds the namespace's soak began
	Phase          *prometheus.GaugeVec   // namespace, phase: 1 for the current phase
	EnforcedDrops  *prometheus.CounterVec // namespace: Hubble DROPPED (policy) flows into enforced namespaces
	Promotions     *prometheus.CounterVec // namespace, trigger (auto | manual | forced)
	Rollbacks      *prometheus.CounterVec // namespace, trigger (auto | manual)
	// ControllerLeader has no labels but is a vector so that it exports nothing until a
	// controller sets it (Leader): a long-running simulate must not look like a controller
	// replica that never leads.
	ControllerLeader *prometheus.GaugeVec
	Recompiles       prometheus.Counter
	RecompileSeconds prometheus.Histogram

	// own are shadowgate's collectors, without the Go and process ones, for RegisterOn.
	own      []prometheus.Collector
	edgeCap  int
	edgeMu   sync.Mutex
	edgeSeen map[string]struct{}
}

// New builds and registers every metric on a fresh registry (with the Go and process
// collectors). edgeCap bounds the per-edge would-drop series (DefaultEdgeSeriesCap if <= 0).
func New(edgeCap int) *Metrics {
	if edgeCap <= 0 {
		edgeCap = DefaultEdgeSeriesCap
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{Registry: reg, edgeCap: edgeCap, edgeSeen: map[string]struct{}{}}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.own = append(m.own, c)
		return c
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.own = append(m.own, g)
		return g
	}
	m.FlowsRead = counter("flows_read_total", "Flow records and events read, by source and outcome.", "source", "outcome")
	m.FlowsSkipped = counter("flows_skipped_total", "Flow records not judged (replies, non-IP, L7, ...), by reason.", "source", "reason")
	m.FlowsMalformed = counter("flows_malformed_total", "Input lines that could not be used, by reason.", "source", "reason")
	m.LostFlows = counter("lost_flows_total", "Flows the producer reported lost (Hubble lost_events).", "source")
	m.SourceUp = gauge("source_up", "1 when the flow source is connected and healthy, 0 otherwise.", "source")
	m.LastFlow = gauge("source_last_flow_timestamp_seconds", "Time of the newest flow received, in unix seconds.", "source")
	m.Connections = counter("connections_total", "Connections judged into (or, with egress, out of) a governed namespace.", "namespace")
	m.WouldDrop = counter("would_drop_connections_total", "Connections the current policies allow and enforcement would deny.", "namespace")
	m.WouldDropEdge = counter("would_drop_edge_connections_total", "Would-be-dropped connections per edge (capped series; see shadowgate_metric_series_overflow_total).",
		"namespace", "source_namespace", "source_workload", "destination_workload", "port", "protocol")
	m.SeriesOverflow = counter("metric_series_overflow_total", "Observations not given their own series because the metric's cardinality cap was reached.", "metric")
	m.UncoveredEdges = gauge("uncovered_edges", "Distinct edges in the soak window that enforcement would drop.", "namespace")
	m.GatePass = gauge("gate_pass", "1 when the namespace's gate passes, 0 when it is blocked.", "namespace")
	m.GateReasons = gauge("gate_reasons", "Reasons the gate is blocked, by code (1 when present).", "namespace", "code")
	m.SoakCoverage = gauge("soak_coverage_seconds", "Seconds of healthy ingestion within the soak window.", "namespace")
	m.SoakWindow = gauge("soak_window_seconds", "The soak window.", "namespace")
	m.SoakStart = gauge("soak_start_timestamp_seconds", "When the namespace's soak began (tracking started), in unix seconds.", "namespace")
	m.Phase = gauge("namespace_phase", "1 for the namespace's current rollout phase.", "namespace", "phase")
	m.EnforcedDrops = counter("enforced_dropped_connections_total", "Connections dropped by policy in enforced namespaces (Hubble verdict DROPPED).", "namespace")
	m.Promotions = counter("promotions_total", "Promotions of a namespace to enforcement, by trigger.", "namespace", "trigger")
	m.Rollbacks = counter("rollbacks_total", "Rollbacks of a namespace to shadow mode, by trigger.", "namespace", "trigger")
	m.ControllerLeader = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "controller_leader",
		Help: "1 while this controller replica holds the leader lease (or runs without leader election), 0 while it waits."}, nil)
	m.Recompiles = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "evaluator_recompiles_total", Help: "Policy set recompilations after cluster changes."})
	m.RecompileSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "evaluator_recompile_duration_seconds",
		Help: "Time to recompile the policy set and re-judge stored edges.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.own = append(m.own, m.ControllerLeader, m.Recompiles, m.RecompileSeconds)
	reg.MustRegister(m.own...)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// RegisterOn registers shadowgate's own collectors (not the Go and process ones, which a
// host registry such as controller-runtime's already has) on r, so a process that serves
// another registry exports them on the same endpoint. The returned function unregisters
// them again; on error nothing stays registered.
func (m *Metrics) RegisterOn(r prometheus.Registerer) (unregister func(), err error) {
	var done []prometheus.Collector
	unregister = func() {
		for _, c := range done {
			r.Unregister(c)
		}
	}
	for _, c := range m.own {
		if err := r.Register(c); err != nil {
			unregister()
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("registering shadowgate metrics: another set is already registered (one per process): %w", err)
			}
			return nil, fmt.Errorf("registering shadowgate metrics: %w", err)
		}
		done = append(done, c)
	}
	return unregister, nil
}

// Leader sets shadowgate_controller_leader, which only a controller exports.
func (m *Metrics) Leader(leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	m.ControllerLeader.WithLabelValues().Set(v)
}

// Triggers of promotions and rollbacks.
const (
	TriggerAuto   = "auto"
	TriggerManual = "manual"
	TriggerForced = "forced"
)

// Phases of the namespace_phase gauge: the NamespaceRollout phases.
var Phases = []string{"Shadow", "Ready", "Enforcing", "RolledBack", "Blocked"}

// SetPhase marks phase as namespace's current one, and every other phase 0, so a query
// for == 1 finds exactly one phase per namespace.
func (m *Metrics) SetPhase(ns, phase string) {
	for _, p := range Phases {
		v := 0.0
		if p == phase {
			v = 1
		}
		m.Phase.WithLabelValues(ns, p).Set(v)
	}
}

// Forget deletes every per-namespace series of ns, for a namespace no longer governed:
// a stale gauge would keep an alert firing for a namespace nobody watches. Counters go
// too; Prometheus treats their return as a reset.
func (m *Metrics) Forget(ns string) {
	match := prometheus.Labels{"namespace": ns}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.Connections, m.WouldDrop, m.WouldDropEdge, m.UncoveredEdges, m.GatePass, m.GateReasons,
		m.SoakCoverage, m.SoakWindow, m.SoakStart, m.Phase, m.EnforcedDrops, m.Promotions, m.Rollbacks,
	} {
		v.DeletePartialMatch(match)
	}
	m.edgeMu.Lock()
	for k := range m.edgeSeen {
		if len(k) > len(ns) && k[:len(ns)] == ns && k[len(ns)] == 0 {
			delete(m.edgeSeen, k)
		}
	}
	m.edgeMu.Unlock()
}

// ObserveWouldDropEdge counts a would-be-dropped connection on its edge series, within the
// cardinality cap; beyond it the observation is counted in the overflow counter.
func (m *Metrics) ObserveWouldDropEdge(ns, srcNS, srcWorkload, dstWorkload string, port int32, proto string) {
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d\x00%s", ns, srcNS, srcWorkload, dstWorkload, port, proto)
	m.edgeMu.Lock()
	_, known := m.edgeSeen[key]
	if !known && len(m.edgeSeen) < m.edgeCap {
		m.edgeSeen[key] = struct{}{}
		known = true
	}
	m.edgeMu.Unlock()
	if !known {
		m.SeriesOverflow.WithLabelValues("would_drop_edge_connections_total").Inc()
		return
	}
	m.WouldDropEdge.WithLabelValues(ns, srcNS, srcWorkload, dstWorkload, fmt.Sprint(port), proto).Inc()
}
