// Package flows turns flow observations (Hubble jsonpb lines, a Hubble Relay stream, the
// Otterize network-mapper) into normalized records behind one interface, Source.
package flows

import (
	"context"
	"net/netip"
	"time"
)

// Kind says what an Event carries.
type Kind int

const (
	// KindFlow carries a Flow.
	KindFlow Kind = iota
	// KindLost reports flows the producer lost (Hubble lost_events).
	KindLost
	// KindNodeStatus reports a node's observer state change (Hubble node_status).
	KindNodeStatus
	// KindMalformed reports an input line that could not be used. It is counted and
	// skipped by consumers, never silently dropped.
	KindMalformed
	// KindHealth reports the state of the source itself (connected, disconnected, caught
	// up, stalled, servers with unavailable nodes). The soak store turns it into coverage
	// and gaps: missing data is never clean data.
	KindHealth
)

func (k Kind) String() string {
	switch k {
	case KindFlow:
		return "flow"
	case KindLost:
		return "lost"
	case KindNodeStatus:
		return "node-status"
	case KindMalformed:
		return "malformed"
	case KindHealth:
		return "health"
	}
	return "unknown"
}

// Event is one item read from a Source.
type Event struct {
	Kind Kind
	// Line is the 1-based input line for file sources, 0 otherwise.
	Line       int
	Flow       *Flow
	Lost       *Lost
	NodeStatus *NodeStatus
	Health     *Health
	// Reason is set for KindMalformed: a short stable token (e.g. "invalid-json") and
	// Detail a human explanation.
	Reason string
	Detail string
}

// HealthState is the state a Health event reports.
type HealthState string

const (
	// Connected: the source is receiving; coverage starts (again) at Health.Time.
	Connected HealthState = "connected"
	// Disconnected: the source lost its upstream; a gap starts at Health.Time and lasts
	// until the next Connected.
	Disconnected HealthState = "disconnected"
	// CaughtUp: a reconnect has replayed the history it missed (flows since the last one
	// seen); the gap that the disconnect opened is closed from Health.Time back to
	// Health.Since.
	CaughtUp HealthState = "caught-up"
	// Stalled: connected but nothing arrived for longer than expected.
	Stalled HealthState = "stalled"
	// Degraded: the server answers but some of its nodes do not (Hubble Relay's
	// num_unavailable_nodes); Health.Nodes names them when known.
	Degraded HealthState = "degraded"
)

// Health reports the state of a source.
type Health struct {
	Time   time.Time
	Source string // "hubble", "mapper", "file"
	State  HealthState
	// Since is the start of the interval a CaughtUp event covers.
	Since time.Time
	// Nodes affected (Degraded), when the server names them.
	Nodes   []string
	Message string
}

// Flow is a Hubble flow reduced to what shadowgate judges.
type Flow struct {
	Time     time.Time
	UUID     string
	NodeName string
	// Verdict is Hubble's verdict (FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, ...).
	// Verdict, DropReason, Type and TrafficDirection are empty when Hubble did not say.
	Verdict    string
	DropReason string // drop_reason_desc, e.g. POLICY_DENIED
	// Type is L3_L4, L7, TRACE, SOCK, ... (empty when the line does not say).
	Type string
	// IsReply is nil when the observation point could not tell.
	IsReply          *bool
	TrafficDirection string // INGRESS, EGRESS or empty
	Source           Endpoint
	Destination      Endpoint
	// Protocol is TCP, UDP, SCTP, ICMPv4, ICMPv6, VRRP or IGMP; empty for non-IP flows and
	// for IP flows whose layer 4 Hubble did not decode.
	Protocol        string
	SourcePort      uint32
	DestinationPort uint32
	TCPFlags        TCPFlags
	// WorkloadLevel marks an observation that names workloads but no addresses or ports
	// (the Otterize network-mapper): it is judged as "may the client reach the server at
	// all", not on one port.
	WorkloadLevel bool
}

// TCPFlags are the flags of a TCP observation.
type TCPFlags struct {
	SYN, ACK, FIN, RST, PSH bool
}

// Endpoint is one side of a Hubble flow.
//
// Its slices (Labels, Workloads, Names) are read-only: a source may hand the same
// backing arrays to many flows (the jsonpb decoder does, for an endpoint seen before).
// Their capacity is their length, so an append copies instead of writing into another
// flow's data.
type Endpoint struct {
	IP        netip.Addr // zero when the flow has no IP layer
	Namespace string
	PodName   string
	// Labels as Hubble writes them ("k8s:app=cart", "reserved:world").
	Labels    []string
	Workloads []Workload
	Identity  uint32
	Names     []string // DNS names Hubble associated with the IP
}

// Workload is Hubble's workload of an endpoint.
type Workload struct {
	Name string
	Kind string
}

// Lost reports flows lost at the source (a node's ring buffer, the relay, ...).
type Lost struct {
	Time      time.Time
	Source    string // e.g. PERF_EVENT_RING_BUFFER, OBSERVER_EVENTS_QUEUE, HUBBLE_RING_BUFFER
	NumEvents uint64
	NodeName  string
}

// NodeStatus reports a change in a node's observer (e.g. NODE_UNAVAILABLE).
type NodeStatus struct {
	Time      time.Time
	State     string
	NodeNames []string
	Message   string
}

// Source yields events in order. Next returns io.EOF after the last event of a finite
// source; long-running sources return ctx.Err() when ctx ends.
type Source interface {
	Next(ctx context.Context) (Event, error)
}
