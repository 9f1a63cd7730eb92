package hubble

import (
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"
	"unsafe"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shadowgate/shadowgate/flows"
)

// The wire decoder reads a GetFlowsResponse carrying a flow straight from its protobuf
// bytes into a flows.Flow, keeping only what flows.FromResponse keeps. proto.Unmarshal
// builds the whole message (dozens of allocations for a flow) and was most of the
// client's time.
//
// Correctness rests on the rule the jsonpb fast decoder follows: the result is exactly
// what proto.Unmarshal followed by flows.FromResponse gives, or the decoder declines and
// that path runs. Every field of a known message is checked as proto.Unmarshal checks it
// (wire format, field numbers, UTF-8 of strings, nesting), from the same descriptors, so
// a message proto.Unmarshal rejects is never accepted here. It declines on anything
// unusual: a kept field or message repeated (protobuf merges or overwrites them), two
// members of a kept oneof, enum numbers the API module does not name, lost_events and
// node_status, flows without an IP layer, addresses or ports FromProto rejects.

// wireID names the fields the decoder keeps; every other field is validated and dropped.
type wireID uint8

const (
	wNone wireID = iota
	wRespFlow
	wRespOther // node_status, lost_events: rare, left to proto.Unmarshal
	wRespNodeName
	wRespTime
	wTime
	wUUID
	wNodeName
	wVerdict
	wDropReasonDesc
	wType
	wTrafficDirection
	wIsReply
	wReply
	wIP
	wL4
	wSource
	wDestination
	wSourceNames
	wDestinationNames
	wIPSource
	wIPDestination
	wTCP
	wUDP
	wSCTP
	wICMPv4
	wICMPv6
	wVRRP
	wIGMP
	wSourcePort
	wDestinationPort
	wFlags
	wSYN
	wACK
	wFIN
	wRST
	wPSH
	wIdentity
	wNamespace
	wLabels
	wPodName
	wWorkloads
	wWorkloadName
	wWorkloadKind
	wSeconds
	wNanos
	wBoolValue
	wireIDs
)

var _ = [64 - wireIDs]struct{}{} // ids index a uint64 of seen fields

// wireKeep maps the kept fields, by full name, to their ids. The same id may name the
// same field of several messages (the ports of TCP, UDP and SCTP).
var wireKeep = map[protoreflect.FullName]wireID{
	"observer.GetFlowsResponse.flow":        wRespFlow,
	"observer.GetFlowsResponse.node_status": wRespOther,
	"observer.GetFlowsResponse.lost_events": wRespOther,
	"observer.GetFlowsResponse.node_name":   wRespNodeName,
	"observer.GetFlowsResponse.time":        wRespTime,
	"flow.Flow.time":                        wTime,
	"flow.Flow.uuid":                        wUUID,
	"flow.Flow.node_name":                   wNodeName,
	"flow.Flow.verdict":                     wVerdict,
	"flow.Flow.drop_reason_desc":            wDropReasonDesc,
	"flow.Flow.Type":                        wType,
	"flow.Flow.traffic_direction":           wTrafficDirection,
	"flow.Flow.is_reply":                    wIsReply,
	"flow.Flow.reply":                       wReply,
	"flow.Flow.IP":                          wIP,
	"flow.Flow.l4":                          wL4,
	"flow.Flow.source":                      wSource,
	"flow.Flow.destination":                 wDestination,
	"flow.Flow.source_names":                wSourceNames,
	"flow.Flow.destination_names":           wDestinationNames,
	"flow.IP.source":                        wIPSource,
	"flow.IP.destination":                   wIPDestination,
	"flow.Layer4.TCP":                       wTCP,
	"flow.Layer4.UDP":                       wUDP,
	"flow.Layer4.SCTP":                      wSCTP,
	"flow.Layer4.ICMPv4":                    wICMPv4,
	"flow.Layer4.ICMPv6":                    wICMPv6,
	"flow.Layer4.VRRP":                      wVRRP,
	"flow.Layer4.IGMP":                      wIGMP,
	"flow.TCP.source_port":                  wSourcePort,
	"flow.TCP.destination_port":             wDestinationPort,
	"flow.TCP.flags":                        wFlags,
	"flow.UDP.source_port":                  wSourcePort,
	"flow.UDP.destination_port":             wDestinationPort,
	"flow.SCTP.source_port":                 wSourcePort,
	"flow.SCTP.destination_port":            wDestinationPort,
	"flow.TCPFlags.SYN":                     wSYN,
	"flow.TCPFlags.ACK":                     wACK,
	"flow.TCPFlags.FIN":                     wFIN,
	"flow.TCPFlags.RST":                     wRST,
	"flow.TCPFlags.PSH":                     wPSH,
	"flow.Endpoint.identity":                wIdentity,
	"flow.Endpoint.namespace":               wNamespace,
	"flow.Endpoint.labels":                  wLabels,
	"flow.Endpoint.pod_name":                wPodName,
	"flow.Endpoint.workloads":               wWorkloads,
	"flow.Workload.name":                    wWorkloadName,
	"flow.Workload.kind":                    wWorkloadKind,
	"google.protobuf.Timestamp.seconds":     wSeconds,
	"google.protobuf.Timestamp.nanos":       wNanos,
	"google.protobuf.BoolValue.value":       wBoolValue,
}

// wireProtocol is flows.Flow.Protocol for each Layer4 member.
var wireProtocol = [wireIDs]string{
	wTCP: "TCP", wUDP: "UDP", wSCTP: "SCTP", wICMPv4: "ICMPv4", wICMPv6: "ICMPv6", wVRRP: "VRRP", wIGMP: "IGMP",
}

// wireMsg is a message's schema as proto.Unmarshal applies it.
type wireMsg struct {
	low  [64]*wireField // by field number, for the numbers below 64
	high map[protowire.Number]*wireField
	// decline is set for messages the decoder does not handle (groups, proto2 or
	// editions files): meeting one leaves the message to proto.Unmarshal.
	decline bool
}

func (m *wireMsg) field(n protowire.Number) *wireField {
	if n < 64 {
		return m.low[n]
	}
	return m.high[n]
}

type wireField struct {
	id wireID
	// wt is the wire type proto.Unmarshal reads the field with; with any other a known
	// field is an unknown one.
	wt protowire.Type
	// packed: a repeated scalar, which may also come packed (as bytes).
	packed bool
	// fixed is the element size of a packed fixed32/64 list; 0 for varints.
	fixed int
	utf8  bool // a proto3 string: invalid UTF-8 is an error
	msg   *wireMsg
	// enum names the enum's numbers as String does ("" for 0, which flows maps to "");
	// numbers it does not name decline.
	enum  []string
	known []bool
}

var (
	wireResponse  = buildWireMsg((&observerpb.GetFlowsResponse{}).ProtoReflect().Descriptor(), map[protoreflect.FullName]*wireMsg{})
	wireEndpoint  = buildWireMsg((&flowpb.Endpoint{}).ProtoReflect().Descriptor(), map[protoreflect.FullName]*wireMsg{})
	wireTimestamp = wireResponse.field(1001).msg
)

func buildWireMsg(md protoreflect.MessageDescriptor, done map[protoreflect.FullName]*wireMsg) *wireMsg {
	if m, ok := done[md.FullName()]; ok {
		return m
	}
	m := &wireMsg{high: map[protowire.Number]*wireField{}}
	done[md.FullName()] = m
	if md.ParentFile().Syntax() != protoreflect.Proto3 {
		m.decline = true
		return m
	}
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		f := &wireField{id: wireKeep[fd.FullName()]}
		switch fd.Kind() {
		case protoreflect.BoolKind, protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Int64Kind,
			protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind:
			f.wt = protowire.VarintType
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			f.wt, f.fixed = protowire.Fixed32Type, 4
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			f.wt, f.fixed = protowire.Fixed64Type, 8
		case protoreflect.StringKind:
			f.wt, f.utf8 = protowire.BytesType, true
		case protoreflect.BytesKind:
			f.wt = protowire.BytesType
		case protoreflect.MessageKind:
			f.wt = protowire.BytesType
			f.msg = buildWireMsg(fd.Message(), done)
		default: // groups
			m.decline = true
			return m
		}
		f.packed = fd.IsList() && f.wt != protowire.BytesType
		if fd.Kind() == protoreflect.EnumKind {
			vals := fd.Enum().Values()
			hi := 0
			for j := range vals.Len() {
				if n := int(vals.Get(j).Number()); n >= 0 && n < 1<<12 {
					hi = max(hi, n)
				}
			}
			f.enum, f.known = make([]string, hi+1), make([]bool, hi+1)
			for n := range hi + 1 {
				if v := vals.ByNumber(protoreflect.EnumNumber(n)); v != nil {
					f.known[n] = true
					if n != 0 {
						f.enum[n] = string(v.Name())
					}
				}
			}
		}
		if n := fd.Number(); n < 64 {
			m.low[n] = f
		} else {
			m.high[n] = f
		}
	}
	return m
}

// maxWireDepth bounds nesting; deeper messages are left to proto.Unmarshal.
const maxWireDepth = 64

// Bounds of the decoder's memos (entries); each is emptied when full. Endpoints are one
// per pod, label lists and workload lists one per workload, mostly.
const (
	maxWireEndpoints = 1 << 16
	maxWireRuns      = 1 << 14
)

// wireEndpointPrefix is how many leading bytes of an endpoint message pick its memo slot.
const wireEndpointPrefix = 16

// wireEndpointScratch collects one endpoint as it is walked.
type wireEndpointScratch struct {
	namespace, podName string
	identity           uint32
	labels             []string
	workloads          []flows.Workload
}

// wireDecoder decodes responses one at a time; it keeps string tables and an endpoint
// cache across responses. It is not safe for concurrent use.
type wireDecoder struct {
	strs flows.Interner
	// endpoints remembers decoded endpoints by their bytes: a pod's endpoint message is
	// the same in every flow it takes part in, so a flow costs one compare per side
	// instead of a walk over its labels.
	endpoints bytesMemo[flows.Endpoint]
	// labelRuns and workloadRuns remember runs of consecutive labels or workloads fields
	// by their bytes (tags included): every pod of a workload carries the same list, so
	// a pod seen for the first time costs one compare for its labels, not one string
	// lookup per label.
	labelRuns    bytesMemo[[]string]
	workloadRuns bytesMemo[[]flows.Workload]

	haveFlow, haveIP         bool
	envNode                  string
	envTime, time            time.Time
	uuid                     []byte
	node                     string
	verdict, dropReason, typ string
	direction, protocol      string
	isReply, hasIsReply      bool
	reply                    bool
	ipSrc, ipDst             []byte
	sport, dport             uint32
	flags                    flows.TCPFlags
	src, dst                 flows.Endpoint
	ep                       *wireEndpointScratch // the endpoint being walked
	scratch                  wireEndpointScratch
	workload                 *flows.Workload
	srcNames, dstNames       []string
	tsSec                    int64
	tsNanos                  int32
	boolValue                bool
}

func newWireDecoder() *wireDecoder {
	return &wireDecoder{
		endpoints:    newBytesMemo[flows.Endpoint](1<<10, maxWireEndpoints),
		labelRuns:    newBytesMemo[[]string](1<<8, maxWireRuns),
		workloadRuns: newBytesMemo[[]flows.Workload](1<<8, maxWireRuns),
	}
}

// decode returns the event of one marshaled GetFlowsResponse, or proto.Unmarshal's
// error. It does not retain b.
func (d *wireDecoder) decode(b []byte) (flows.Event, error) {
	ev, ok := d.fast(b)
	// gRPC reuses its receive buffers: keep nothing of b.
	d.uuid, d.ipSrc, d.ipDst = nil, nil, nil
	if ok {
		return ev, nil
	}
	var resp observerpb.GetFlowsResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		return flows.Event{}, err
	}
	return flows.FromResponse(&resp), nil
}

func (d *wireDecoder) reset() {
	sn, dn := d.srcNames[:0], d.dstNames[:0]
	*d = wireDecoder{strs: d.strs, endpoints: d.endpoints, labelRuns: d.labelRuns, workloadRuns: d.workloadRuns, srcNames: sn, dstNames: dn}
}

// fast decodes b or returns ok=false when proto.Unmarshal must decide.
func (d *wireDecoder) fast(b []byte) (flows.Event, bool) {
	d.reset()
	if !d.message(b, wireResponse, 0, true) || !d.haveFlow || !d.haveIP {
		return flows.Event{}, false
	}
	return d.event()
}

// message walks one message. With keep, kept fields are captured; without, the message
// is only validated (it sits under a field the decoder does not keep).
func (d *wireDecoder) message(b []byte, m *wireMsg, depth int, keep bool) bool {
	if m.decline || depth > maxWireDepth {
		return false
	}
	var seen uint64
	for len(b) > 0 {
		field := b
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return false
		}
		tagLen := n
		b = b[n:]
		f := m.field(num)
		if f == nil || typ != f.wt && !(f.packed && typ == protowire.BytesType) {
			// Unknown, or known with another wire type, which proto.Unmarshal also
			// keeps as unknown.
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		default:
			return false
		}
		if n < 0 {
			return false
		}
		b = b[n:]
		if keep && (f.id == wLabels || f.id == wWorkloads) {
			// The run of this field and the same-tagged ones right after it.
			tag := field[:tagLen]
			for len(b) > len(tag) && string(b[:len(tag)]) == string(tag) {
				_, n := protowire.ConsumeBytes(b[len(tag):])
				if n < 0 {
					return false
				}
				b = b[len(tag)+n:]
			}
			if !d.run(f, field[:len(field)-len(b)], tagLen, depth+1) {
				return false
			}
			continue
		}
		if keep && f.id != wNone {
			if f.id != wLabels && f.id != wWorkloads && f.id != wSourceNames && f.id != wDestinationNames {
				if seen&(1<<f.id) != 0 {
					return false
				}
				seen |= 1 << f.id
			}
			if f.utf8 && !utf8.Valid(raw) {
				return false
			}
			if !d.capture(f, v, raw, depth+1) {
				return false
			}
			continue
		}
		if typ != protowire.BytesType {
			continue
		}
		switch {
		case f.msg != nil:
			if !d.message(raw, f.msg, depth+1, false) {
				return false
			}
		case f.packed:
			if !validPacked(raw, f.fixed) {
				return false
			}
		case f.utf8:
			if !utf8.Valid(raw) {
				return false
			}
		}
	}
	return true
}

func validPacked(b []byte, fixed int) bool {
	if fixed > 0 {
		return len(b)%fixed == 0
	}
	for len(b) > 0 {
		_, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

// capture reads a kept field into the decoder's state.
func (d *wireDecoder) capture(f *wireField, v uint64, raw []byte, depth int) bool {
	switch f.id {
	case wRespFlow:
		d.haveFlow = true
		return d.message(raw, f.msg, depth, true)
	case wRespOther:
		return false
	case wRespNodeName:
		d.envNode = d.strs.String(raw)
	case wRespTime:
		t, ok := d.timestamp(raw, depth)
		d.envTime = t
		return ok
	case wTime:
		t, ok := d.timestamp(raw, depth)
		d.time = t
		return ok
	case wUUID:
		d.uuid = raw
	case wNodeName:
		d.node = d.strs.String(raw)
	case wVerdict:
		return enumOf(f, v, &d.verdict)
	case wDropReasonDesc:
		return enumOf(f, v, &d.dropReason)
	case wType:
		return enumOf(f, v, &d.typ)
	case wTrafficDirection:
		return enumOf(f, v, &d.direction)
	case wIsReply:
		d.hasIsReply, d.boolValue = true, false
		ok := d.message(raw, f.msg, depth, true)
		d.isReply = d.boolValue
		return ok
	case wBoolValue:
		d.boolValue = v != 0
	case wReply:
		d.reply = v != 0
	case wIP:
		d.haveIP = true
		return d.message(raw, f.msg, depth, true)
	case wIPSource:
		d.ipSrc = raw
	case wIPDestination:
		d.ipDst = raw
	case wL4:
		return d.message(raw, f.msg, depth, true)
	case wTCP, wUDP, wSCTP, wICMPv4, wICMPv6, wVRRP, wIGMP:
		if d.protocol != "" {
			return false // two members of the oneof: the last one wins
		}
		d.protocol = wireProtocol[f.id]
		return d.message(raw, f.msg, depth, true)
	case wSourcePort:
		d.sport = uint32(v)
	case wDestinationPort:
		d.dport = uint32(v)
	case wFlags:
		return d.message(raw, f.msg, depth, true)
	case wSYN:
		d.flags.SYN = v != 0
	case wACK:
		d.flags.ACK = v != 0
	case wFIN:
		d.flags.FIN = v != 0
	case wRST:
		d.flags.RST = v != 0
	case wPSH:
		d.flags.PSH = v != 0
	case wSource:
		return d.endpoint(raw, &d.src, depth)
	case wDestination:
		return d.endpoint(raw, &d.dst, depth)
	case wSourceNames:
		d.srcNames = append(d.srcNames, d.strs.String(raw))
	case wDestinationNames:
		d.dstNames = append(d.dstNames, d.strs.String(raw))
	case wIdentity:
		d.ep.identity = uint32(v)
	case wNamespace:
		d.ep.namespace = d.strs.String(raw)
	case wPodName:
		d.ep.podName = d.strs.String(raw)
	case wWorkloadName:
		d.workload.Name = d.strs.String(raw)
	case wWorkloadKind:
		d.workload.Kind = d.strs.String(raw)
	case wSeconds:
		d.tsSec = int64(v)
	case wNanos:
		d.tsNanos = int32(v)
	default:
		return false
	}
	return true
}

// timestamp is timestamppb's AsTime of the Timestamp in raw.
func (d *wireDecoder) timestamp(raw []byte, depth int) (time.Time, bool) {
	d.tsSec, d.tsNanos = 0, 0
	if !d.message(raw, wireTimestamp, depth, true) {
		return time.Time{}, false
	}
	return time.Unix(d.tsSec, int64(d.tsNanos)).UTC(), true
}

func enumOf(f *wireField, v uint64, dst *string) bool {
	if v >= uint64(len(f.known)) || !f.known[v] {
		return false
	}
	*dst = f.enum[v]
	return true
}

// endpoint reads an Endpoint message into ep (its IP and Names excepted), from the
// memo when the same bytes were decoded before. Its slices are shared by every flow of
// the endpoint, clipped so that appending to them copies: read-only, as the jsonpb
// decoder's are.
func (d *wireDecoder) endpoint(raw []byte, ep *flows.Endpoint, depth int) bool {
	// The endpoint's ID, unique to the pod, comes first: hashing the first bytes is
	// enough to pick the slot, and costs a tenth of hashing them all.
	h := memoHash(raw[:min(len(raw), wireEndpointPrefix)])
	if c, ok := d.endpoints.get(raw, h); ok {
		*ep = *c
		return true
	}
	sc := &d.scratch
	*sc = wireEndpointScratch{}
	d.ep = sc
	if !d.message(raw, wireEndpoint, depth, true) {
		return false
	}
	*ep = flows.Endpoint{Namespace: sc.namespace, PodName: sc.podName, Identity: sc.identity,
		Labels: slices.Clip(sc.labels), Workloads: slices.Clip(sc.workloads)}
	d.endpoints.put(raw, h, *ep)
	return true
}

// run reads a run of labels or workloads fields (tag and value each, every tag tagLen
// bytes) into the endpoint being walked, from the memo when the same run was read
// before. The lists it adds are shared and must not be written.
func (d *wireDecoder) run(f *wireField, run []byte, tagLen, depth int) bool {
	h := memoHash(run)
	switch f.id {
	case wLabels:
		strs, ok := d.labelRuns.get(run, h)
		if !ok {
			list := make([]string, 0, runLen(run, tagLen))
			for b := run; len(b) > 0; {
				raw, n := protowire.ConsumeBytes(b[tagLen:])
				b = b[tagLen+n:]
				if !utf8.Valid(raw) {
					return false
				}
				list = append(list, d.strs.String(raw))
			}
			d.labelRuns.put(run, h, list)
			strs = &list
		}
		d.ep.labels = appendShared(d.ep.labels, *strs)
	case wWorkloads:
		ws, ok := d.workloadRuns.get(run, h)
		if !ok {
			list := make([]flows.Workload, runLen(run, tagLen))
			i := 0
			for b := run; len(b) > 0; i++ {
				raw, n := protowire.ConsumeBytes(b[tagLen:])
				b = b[tagLen+n:]
				d.workload = &list[i]
				if !d.message(raw, f.msg, depth, true) {
					return false
				}
			}
			d.workloadRuns.put(run, h, list)
			ws = &list
		}
		d.ep.workloads = appendShared(d.ep.workloads, *ws)
	default:
		return false
	}
	return true
}

// runLen counts the fields of a run whose tags are tagLen bytes.
func runLen(run []byte, tagLen int) int {
	k := 0
	for b := run; len(b) > 0; k++ {
		_, n := protowire.ConsumeBytes(b[tagLen:])
		b = b[tagLen+n:]
	}
	return k
}

// appendShared is list followed by more, where either may be shared: the one run an
// endpoint usually has is used as it is, a second one is appended to a copy.
func appendShared[T any](list, more []T) []T {
	if list == nil {
		return more
	}
	return append(slices.Clip(list), more...)
}

// flowAlloc puts a Flow and the bool its IsReply points to in one allocation.
type flowAlloc struct {
	f     flows.Flow
	reply bool
	uuid  [36]byte // Hubble's UUIDs: the string lives in the flow's allocation
}

// event assembles the Flow exactly as flows.FromResponse would.
func (d *wireDecoder) event() (flows.Event, bool) {
	src, ok := wireAddr(d.ipSrc)
	if !ok {
		return flows.Event{}, false
	}
	dst, ok := wireAddr(d.ipDst)
	if !ok || src.Is4() != dst.Is4() || d.sport > 65535 || d.dport > 65535 {
		return flows.Event{}, false
	}
	a := &flowAlloc{}
	f := &a.f
	*f = flows.Flow{
		Time: d.time, NodeName: d.node,
		Verdict: d.verdict, DropReason: d.dropReason, Type: d.typ, TrafficDirection: d.direction,
		Source: d.src, Destination: d.dst,
		Protocol: d.protocol, SourcePort: d.sport, DestinationPort: d.dport, TCPFlags: d.flags,
	}
	f.Source.IP, f.Destination.IP = src, dst
	switch {
	case len(d.uuid) == 0:
	case len(d.uuid) <= len(a.uuid):
		n := copy(a.uuid[:], d.uuid)
		f.UUID = unsafe.String(&a.uuid[0], n) // never written after this
	default:
		f.UUID = string(d.uuid)
	}
	switch {
	case d.hasIsReply:
		a.reply = d.isReply
		f.IsReply = &a.reply
	case d.reply:
		a.reply = true
		f.IsReply = &a.reply
	}
	// DNS names are per flow, rare, and given their own array.
	if n := len(d.srcNames) + len(d.dstNames); n > 0 {
		names := make([]string, 0, n)
		names = append(names, d.srcNames...)
		names = append(names, d.dstNames...)
		if len(d.srcNames) > 0 {
			f.Source.Names = names[:len(d.srcNames):len(d.srcNames)]
		}
		if len(d.dstNames) > 0 {
			f.Destination.Names = names[len(d.srcNames):n:n]
		}
	}
	if f.Time.IsZero() {
		f.Time = d.envTime
	}
	if f.NodeName == "" {
		f.NodeName = d.envNode
	}
	return flows.Event{Kind: flows.KindFlow, Flow: f}, true
}

// wireAddr parses an address as flows.FromProto does; whatever it would reject declines,
// so that the error comes from the reference path.
func wireAddr(raw []byte) (netip.Addr, bool) {
	if len(raw) == 0 {
		return netip.Addr{}, false
	}
	// raw is gRPC's buffer, but nothing of it is kept: an address with a zone (the one
	// case where netip keeps text) declines.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(raw), len(raw)))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
