package flows

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Reasons a line or message is reported as KindMalformed. They are stable tokens: the set is
// small and fixed so that consumers can use them as metric labels.
const (
	// ReasonInvalidJSON: the line is not syntactically valid JSON, or not valid UTF-8.
	ReasonInvalidJSON = "invalid-json"
	// ReasonNotAnObject: valid JSON whose top-level value is not an object.
	ReasonNotAnObject = "not-an-object"
	// ReasonInvalidField: an object in which a field Hubble defines has a value that does
	// not fit its schema (wrong JSON type, out-of-range number, unparsable timestamp, a
	// duplicated field, two members of one oneof such as "flow" with "lost_events").
	// Fields Hubble does not define are ignored, so newer Hubble versions parse.
	ReasonInvalidField = "invalid-field"
	// ReasonEmptyEvent: an object carrying none of flow, lost_events or node_status, and no
	// field of a bare (legacy "-o json") Flow besides time and node_name. A Flow that has
	// fields but no IP is not empty: it is a non-IP flow.
	ReasonEmptyEvent = "empty-event"
	// ReasonInvalidIP: the flow has an IP layer whose source or destination is missing,
	// unparsable, carries an IPv6 zone, or whose two addresses are of different families.
	ReasonInvalidIP = "invalid-ip"
	// ReasonInvalidPort: a TCP, UDP or SCTP port above 65535.
	ReasonInvalidPort = "invalid-port"
	// ReasonLineTooLong: a file source met a line longer than MaxLineBytes; the line is
	// skipped and reading continues on the next one.
	ReasonLineTooLong = "line-too-long"
)

// MalformedReasons returns every Reason a KindMalformed event can carry, for consumers that
// pre-declare metric label values.
func MalformedReasons() []string {
	return []string{
		ReasonInvalidJSON, ReasonNotAnObject, ReasonInvalidField, ReasonEmptyEvent,
		ReasonInvalidIP, ReasonInvalidPort, ReasonLineTooLong,
	}
}

// MalformedError is returned by FromProto when a message cannot be normalized. Reason is one
// of the Reason* tokens.
type MalformedError struct {
	Reason string
	Detail string
}

func (e *MalformedError) Error() string { return e.Reason + ": " + e.Detail }

// Malformed returns a KindMalformed event.
func Malformed(reason, detail string) Event {
	return Event{Kind: KindMalformed, Reason: reason, Detail: detail}
}

// DiscardUnknown keeps us reading captures from Hubble versions newer than the API module
// we were built with: new fields are dropped and new enum names read as unset.
var unmarshalOptions = protojson.UnmarshalOptions{DiscardUnknown: true}

// jsonSpace is the whitespace RFC 8259 allows around a value; anything else is not JSON.
const jsonSpace = " \t\r\n"

// ParseLine parses one line of `hubble observe -o jsonpb` (a GetFlowsResponse) or of the
// legacy `hubble observe -o json` (a bare Flow). ok is false only for a blank line, which
// carries nothing and is not an error; every other input yields an event, KindMalformed when
// it cannot be used. ParseLine does not retain line. Event.Line is left for the caller.
//
// Typical flow lines take the fast decoder (fast.go); everything else, and every line the
// fast decoder is not sure about, takes protojson, which defines the result.
func ParseLine(line []byte) (ev Event, ok bool) {
	line = trimSpace(line)
	if len(line) == 0 {
		return Event{}, false
	}
	if ev, ok := parseFast(line); ok {
		return ev, true
	}
	return parseSlow(line), true
}

// lineParser is ParseLine with a fast decoder held for a whole stream instead of taken
// from the pool for each line: a FileSource parses every line of its stream on one
// goroutine, so no line pays for a pool round trip or for clearing the decoder's hold on
// the line (the stream's buffer, which outlives the line anyway). The decoder comes from
// the pool, tables and all, so that a process reading file after file (a benchmark, a
// daemon reopening its input) does not start every file cold; release returns it.
type lineParser struct {
	d *fastDecoder
	// reuse, when set, is where every fast-decoded Flow is written (FileSource.ReuseFlows).
	// It is the parser's, not the decoder's: the decoder goes back to the pool while a
	// consumer may still read the last Flow.
	reuse *flowAlloc
}

// parse is ParseLine.
func (p *lineParser) parse(line []byte) (ev Event, ok bool) {
	line = trimSpace(line)
	if len(line) == 0 {
		return Event{}, false
	}
	if p.d == nil {
		p.d = fastPool.Get().(*fastDecoder)
	}
	if ev, ok := p.d.parseInto(line, p.reuse); ok {
		return ev, true
	}
	// The slow path allocates its Flow: valid for longer than ReuseFlows promises, and
	// rare enough not to matter.
	return parseSlow(line), true
}

// release returns the decoder to the pool; the parser takes another if used again. Only
// the goroutine that parses may call it.
func (p *lineParser) release() {
	if p.d != nil {
		putFast(p.d)
		p.d = nil
	}
}

// trimSpace is bytes.Trim(line, jsonSpace) without the general-purpose set lookup, which
// showed in profiles of file replay.
func trimSpace(line []byte) []byte {
	for len(line) > 0 && isJSONSpace(line[0]) {
		line = line[1:]
	}
	for len(line) > 0 && isJSONSpace(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	return line
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parseSlow is ParseLine through protojson, for a trimmed, non-empty line.
func parseSlow(line []byte) Event {
	var resp observerpb.GetFlowsResponse
	if err := unmarshalOptions.Unmarshal(line, &resp); err != nil {
		return classifyError(line, err)
	}
	if resp.GetResponseTypes() != nil {
		return FromResponse(&resp)
	}

	// Not an envelope: try a bare Flow. The envelope pass only read time and node_name,
	// which have the same types in Flow, so a line that passed it cannot fail for them here.
	var f flowpb.Flow
	if err := unmarshalOptions.Unmarshal(line, &f); err != nil {
		return classifyError(line, err)
	}
	if isEmptyFlow(&f) {
		return Malformed(ReasonEmptyEvent, "no flow, lost_events or node_status, and no flow fields"+keysHint(line))
	}
	return FromResponse(&observerpb.GetFlowsResponse{
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: &f},
	})
}

// classifyError tells apart broken JSON from JSON that does not fit the schema. It runs only
// on the error path, so well-formed lines are scanned once.
func classifyError(line []byte, err error) Event {
	if !utf8.Valid(line) {
		return Malformed(ReasonInvalidJSON, "line is not valid UTF-8")
	}
	if !json.Valid(line) {
		return Malformed(ReasonInvalidJSON, err.Error())
	}
	if line[0] != '{' {
		return Malformed(ReasonNotAnObject, "top-level JSON value is "+jsonKind(line[0])+", not an object")
	}
	// protojson's message names the field by its JSON name and gives the column.
	return Malformed(ReasonInvalidField, "does not fit the Hubble schema: "+err.Error())
}

func jsonKind(first byte) string {
	switch first {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// keysHint names the top-level keys of an object that carried no event, which is how a user
// finds out they fed us e.g. `hubble observe agent-events` output. Error path only.
func keysHint(line []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) != nil || len(obj) == 0 {
		return ""
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	const maxKeys = 8
	if len(keys) > maxKeys {
		keys = append(keys[:maxKeys], "...")
	}
	return " (keys: " + strings.Join(keys, ", ") + ")"
}

// isEmptyFlow reports whether f has nothing besides time and node_name, which every
// envelope also has: such an object says nothing about traffic.
func isEmptyFlow(f *flowpb.Flow) bool {
	empty := true
	f.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.Name() {
		case "time", "node_name":
			return true
		}
		empty = false
		return false
	})
	return empty
}

// FromResponse normalizes one GetFlowsResponse, from a jsonpb line or a Hubble Relay stream,
// so both sources produce identical events. The payload's own timestamp wins; the envelope's
// time and node_name fill in what the payload lacks.
func FromResponse(resp *observerpb.GetFlowsResponse) Event {
	envTime := timeOf(resp.GetTime())
	switch rt := resp.GetResponseTypes().(type) {
	case *observerpb.GetFlowsResponse_Flow:
		if rt.Flow == nil || isEmptyFlow(rt.Flow) {
			return Malformed(ReasonEmptyEvent, "flow has no fields besides time and node_name")
		}
		f, err := FromProto(rt.Flow)
		if err != nil {
			return malformedFrom(err)
		}
		if f.Time.IsZero() {
			f.Time = envTime
		}
		if f.NodeName == "" {
			f.NodeName = resp.GetNodeName()
		}
		return Event{Kind: KindFlow, Flow: f}
	case *observerpb.GetFlowsResponse_LostEvents:
		l := LostFromProto(rt.LostEvents)
		if l.Time.IsZero() {
			l.Time = envTime
		}
		l.NodeName = resp.GetNodeName()
		return Event{Kind: KindLost, Lost: l}
	case *observerpb.GetFlowsResponse_NodeStatus:
		s := NodeStatusFromProto(rt.NodeStatus)
		s.Time = envTime
		return Event{Kind: KindNodeStatus, NodeStatus: s}
	}
	return Malformed(ReasonEmptyEvent, "response has no flow, lost_events or node_status")
}

func malformedFrom(err error) Event {
	if me, ok := err.(*MalformedError); ok {
		return Malformed(me.Reason, me.Detail)
	}
	return Malformed(ReasonInvalidField, err.Error())
}

// FromProto normalizes a Hubble flow. The error, when not nil, is a *MalformedError.
//
// IsReply follows is_reply; the deprecated reply bool cannot tell false from absent, so it
// is only trusted when it says true and is_reply is missing. Unset enums (VERDICT_UNKNOWN,
// UNKNOWN_TYPE, ...) become "", so "" always means "Hubble did not say".
func FromProto(pf *flowpb.Flow) (*Flow, error) {
	f := &Flow{
		Time:             timeOf(pf.GetTime()),
		UUID:             pf.GetUuid(),
		NodeName:         pf.GetNodeName(),
		Verdict:          enumName(pf.GetVerdict()),
		DropReason:       enumName(pf.GetDropReasonDesc()),
		Type:             enumName(pf.GetType()),
		TrafficDirection: enumName(pf.GetTrafficDirection()),
		Source:           endpointFromProto(pf.GetSource(), pf.GetSourceNames()),
		Destination:      endpointFromProto(pf.GetDestination(), pf.GetDestinationNames()),
	}
	switch {
	case pf.GetIsReply() != nil:
		f.IsReply = new(pf.GetIsReply().GetValue())
	case pf.GetReply(): //nolint:staticcheck // SA1019: deprecated, read only when is_reply is absent.
		f.IsReply = new(true)
	}

	if ip := pf.GetIP(); ip != nil {
		src, err := parseIP("IP.source", ip.GetSource())
		if err != nil {
			return nil, err
		}
		dst, err := parseIP("IP.destination", ip.GetDestination())
		if err != nil {
			return nil, err
		}
		if src.Is4() != dst.Is4() {
			return nil, &MalformedError{ReasonInvalidIP, fmt.Sprintf("IP.source %s and IP.destination %s are of different families", src, dst)}
		}
		f.Source.IP, f.Destination.IP = src, dst
	}

	if err := setL4(f, pf.GetL4()); err != nil {
		return nil, err
	}
	return f, nil
}

func setL4(f *Flow, l4 *flowpb.Layer4) error {
	var field string
	switch p := l4.GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		field, f.Protocol = "l4.TCP", "TCP"
		f.SourcePort, f.DestinationPort = p.TCP.GetSourcePort(), p.TCP.GetDestinationPort()
		fl := p.TCP.GetFlags()
		f.TCPFlags = TCPFlags{SYN: fl.GetSYN(), ACK: fl.GetACK(), FIN: fl.GetFIN(), RST: fl.GetRST(), PSH: fl.GetPSH()}
	case *flowpb.Layer4_UDP:
		field, f.Protocol = "l4.UDP", "UDP"
		f.SourcePort, f.DestinationPort = p.UDP.GetSourcePort(), p.UDP.GetDestinationPort()
	case *flowpb.Layer4_SCTP:
		field, f.Protocol = "l4.SCTP", "SCTP"
		f.SourcePort, f.DestinationPort = p.SCTP.GetSourcePort(), p.SCTP.GetDestinationPort()
	case *flowpb.Layer4_ICMPv4:
		f.Protocol = "ICMPv4"
	case *flowpb.Layer4_ICMPv6:
		f.Protocol = "ICMPv6"
	case *flowpb.Layer4_VRRP:
		f.Protocol = "VRRP"
	case *flowpb.Layer4_IGMP:
		f.Protocol = "IGMP"
	}
	if f.SourcePort > 65535 {
		return &MalformedError{ReasonInvalidPort, fmt.Sprintf("%s.source_port %d is above 65535", field, f.SourcePort)}
	}
	if f.DestinationPort > 65535 {
		return &MalformedError{ReasonInvalidPort, fmt.Sprintf("%s.destination_port %d is above 65535", field, f.DestinationPort)}
	}
	return nil
}

func parseIP(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, &MalformedError{ReasonInvalidIP, field + " is empty"}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, &MalformedError{ReasonInvalidIP, fmt.Sprintf("%s: %v", field, err)}
	}
	// A zoned address never matches a netip.Prefix, so it would silently escape every
	// ipBlock; Hubble does not emit zones, so one means the input is not what we think.
	if a.Zone() != "" {
		return netip.Addr{}, &MalformedError{ReasonInvalidIP, fmt.Sprintf("%s %q has an IPv6 zone", field, s)}
	}
	// ipBlocks hold plain IPv4 CIDRs; a v4-mapped v6 address must compare as IPv4.
	return a.Unmap(), nil
}

func endpointFromProto(ep *flowpb.Endpoint, names []string) Endpoint {
	e := Endpoint{
		Namespace: ep.GetNamespace(),
		PodName:   ep.GetPodName(),
		Labels:    cloneStrings(ep.GetLabels()),
		Identity:  ep.GetIdentity(),
		Names:     cloneStrings(names),
	}
	for _, w := range ep.GetWorkloads() {
		e.Workloads = append(e.Workloads, Workload{Name: w.GetName(), Kind: w.GetKind()})
	}
	return e
}

// cloneStrings copies so a Flow never aliases a proto message the caller may reuse (gRPC
// receive buffers), and maps empty to nil so equal flows compare equal.
func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// LostFromProto normalizes a Hubble lost-events notice. Time is the last lost event's time,
// else the first's; NodeName comes from the envelope (see FromResponse).
func LostFromProto(l *flowpb.LostEvent) *Lost {
	t := timeOf(l.GetLast())
	if t.IsZero() {
		t = timeOf(l.GetFirst())
	}
	return &Lost{
		Time:      t,
		Source:    enumName(l.GetSource()),
		NumEvents: l.GetNumEventsLost(),
	}
}

// NodeStatusFromProto normalizes a Hubble Relay node status event. The message has no time
// of its own; FromResponse sets it from the envelope.
func NodeStatusFromProto(s *relaypb.NodeStatusEvent) *NodeStatus {
	return &NodeStatus{
		State:     enumName(s.GetStateChange()),
		NodeNames: cloneStrings(s.GetNodeNames()),
		Message:   s.GetMessage(),
	}
}

// enumName maps the zero value, which every Hubble enum reserves for "unknown", to "".
// A number newer than our API module (sent numerically) keeps its number as its name.
func enumName[E interface {
	~int32
	String() string
}](e E) string {
	if e == 0 {
		return ""
	}
	return e.String()
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
