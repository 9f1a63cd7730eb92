package flows

import (
	"fmt"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The fast decoder's view of the Hubble schema, built once from the same protobuf
// descriptors protojson reads (see fast.go).

// fieldID names the fields the fast decoder keeps. Every other field of a known message
// is validated against its descriptor and dropped.
type fieldID uint8

const (
	fNone fieldID = iota
	fRespFlow
	fRespNodeName
	fRespTime
	fTime
	fUUID
	fNodeName
	fVerdict
	fDropReasonDesc
	fType
	fTrafficDirection
	fIsReply
	fReply
	fIP
	fL4
	fSource
	fDestination
	fSourceNames
	fDestinationNames
	fIPSource
	fIPDestination
	fTCP
	fUDP
	fSCTP
	fICMPv4
	fICMPv6
	fVRRP
	fIGMP
	fSourcePort
	fDestinationPort
	fFlags
	fSYN
	fACK
	fFIN
	fRST
	fPSH
	fIdentity
	fNamespace
	fLabels
	fPodName
	fWorkloads
	fWorkloadName
	fWorkloadKind
)

// msgSpec is a message's JSON schema as protojson applies it.
type msgSpec struct {
	name   protoreflect.FullName
	fields map[string]*fieldSpec // by JSON name and by proto name, as protojson accepts both
	keys   keyTable              // fields again, for lookups on the hot path
	wkt    wellKnown
}

// keyTable is an open-addressing table from field name to spec. It runs for every member
// of every object of every line: for the short names of a flow it is several times
// cheaper than a Go map lookup.
type keyTable = nameTable[*fieldSpec]

// nameTable maps short names (field names, enum value names) to values.
type nameTable[V any] struct {
	mask  uint32
	slots []nameSlot[V]
}

type nameSlot[V any] struct {
	key string // "" marks an empty slot: no field or enum value has an empty name
	v   V
}

func newKeyTable(fields map[string]*fieldSpec) keyTable { return newNameTable(fields) }

func newNameTable[V any](names map[string]V) nameTable[V] {
	size := uint32(8)
	for size < uint32(len(names))*4 {
		size *= 2
	}
	t := nameTable[V]{mask: size - 1, slots: make([]nameSlot[V], size)}
	for k, v := range names {
		if k == "" {
			continue // a wrapper's "" entry, which is never looked up
		}
		for h := keyHash(k) & t.mask; ; h = (h + 1) & t.mask {
			if t.slots[h].key == "" {
				t.slots[h] = nameSlot[V]{key: k, v: v}
				break
			}
		}
	}
	return t
}

func (t *nameTable[V]) lookup(key []byte) (v V, ok bool) {
	if len(t.slots) == 0 || len(key) == 0 {
		return v, false
	}
	for h := keyHash(key) & t.mask; ; h = (h + 1) & t.mask {
		s := &t.slots[h]
		if s.key == string(key) {
			return s.v, true
		}
		if s.key == "" {
			return v, false
		}
	}
}

// keyHash mixes a key's length and three of its bytes: field names of one message
// rarely agree on all four, and probing settles the rest with a full comparison.
func keyHash[S string | []byte](s S) uint32 {
	n := len(s)
	h := uint32(n)*0x9e3779b1 ^ uint32(s[0])<<16 ^ uint32(s[n/2])<<8 ^ uint32(s[n-1])
	h ^= h >> 15
	h *= 0x85ebca6b
	return h ^ h>>13
}

// wellKnown marks messages protojson reads in a special form.
type wellKnown uint8

const (
	wktNone        wellKnown = iota
	wktTimestamp             // an RFC 3339 string
	wktWrapper               // the wrapped scalar itself
	wktUnsupported           // Any, Struct, Value, Duration, ...: the fast decoder declines
)

type fieldSpec struct {
	name  protoreflect.Name
	id    fieldID
	index int // fd.Index(), for duplicate detection
	oneof int // containing oneof's index, -1 for none
	kind  protoreflect.Kind
	list  bool
	isMap bool
	msg   *msgSpec
	// enum maps every value name to the name protojson's path reports for it
	// (enumName of its number: "" for zero, the first name declared for aliases).
	enum nameTable[string]
}

// maxFields is the number of fields per message the duplicate check can track; a field
// with a higher index declines.
const maxFields = 256

// The specs of the messages whose fields are kept. They are copies of the generic specs
// placed only on the path from GetFlowsResponse.flow down, so that the same message
// types elsewhere (Tunnel's IP and l4, DebugEvent's source) are validated, never kept.
var (
	responseSpec, flowSpec, ipSpec, l4Spec, tcpSpec, udpSpec, sctpSpec, flagsSpec, endpointSpec, workloadSpec *msgSpec
)

func init() {
	generic := map[protoreflect.FullName]*msgSpec{}
	resp := specOf((&observerpb.GetFlowsResponse{}).ProtoReflect().Descriptor(), generic)
	responseSpec = keep(resp, map[protoreflect.Name]fieldID{"flow": fRespFlow, "node_name": fRespNodeName, "time": fRespTime})
	flowSpec = keep(child(responseSpec, "flow"), map[protoreflect.Name]fieldID{
		"time": fTime, "uuid": fUUID, "node_name": fNodeName, "verdict": fVerdict,
		"drop_reason_desc": fDropReasonDesc, "Type": fType, "traffic_direction": fTrafficDirection,
		"is_reply": fIsReply, "reply": fReply, "IP": fIP, "l4": fL4, "source": fSource,
		"destination": fDestination, "source_names": fSourceNames, "destination_names": fDestinationNames,
	})
	responseSpec.fields["flow"].msg = flowSpec
	ipSpec = keep(child(flowSpec, "IP"), map[protoreflect.Name]fieldID{"source": fIPSource, "destination": fIPDestination})
	flowSpec.fields["IP"].msg = ipSpec
	l4Spec = keep(child(flowSpec, "l4"), map[protoreflect.Name]fieldID{
		"TCP": fTCP, "UDP": fUDP, "SCTP": fSCTP, "ICMPv4": fICMPv4, "ICMPv6": fICMPv6, "VRRP": fVRRP, "IGMP": fIGMP,
	})
	flowSpec.fields["l4"].msg = l4Spec
	ports := map[protoreflect.Name]fieldID{"source_port": fSourcePort, "destination_port": fDestinationPort}
	tcpSpec = keep(child(l4Spec, "TCP"), map[protoreflect.Name]fieldID{"source_port": fSourcePort, "destination_port": fDestinationPort, "flags": fFlags})
	udpSpec = keep(child(l4Spec, "UDP"), ports)
	sctpSpec = keep(child(l4Spec, "SCTP"), ports)
	l4Spec.fields["TCP"].msg, l4Spec.fields["UDP"].msg, l4Spec.fields["SCTP"].msg = tcpSpec, udpSpec, sctpSpec
	flagsSpec = keep(child(tcpSpec, "flags"), map[protoreflect.Name]fieldID{"SYN": fSYN, "ACK": fACK, "FIN": fFIN, "RST": fRST, "PSH": fPSH})
	tcpSpec.fields["flags"].msg = flagsSpec
	endpointSpec = keep(child(flowSpec, "source"), map[protoreflect.Name]fieldID{
		"identity": fIdentity, "namespace": fNamespace, "labels": fLabels, "pod_name": fPodName, "workloads": fWorkloads,
	})
	flowSpec.fields["source"].msg, flowSpec.fields["destination"].msg = endpointSpec, endpointSpec
	workloadSpec = keep(child(endpointSpec, "workloads"), map[protoreflect.Name]fieldID{"name": fWorkloadName, "kind": fWorkloadKind})
	endpointSpec.fields["workloads"].msg = workloadSpec
}

// child returns the spec of a message field; it panics at start-up, not per line, if an
// API module update renamed what the fast decoder expects.
func child(m *msgSpec, name string) *msgSpec {
	fs := m.fields[name]
	if fs == nil || fs.msg == nil {
		panic(fmt.Sprintf("flows: fast decoder: %s has no message field %s", m.name, name))
	}
	return fs.msg
}

// keep copies m with the given fields marked as kept.
func keep(m *msgSpec, ids map[protoreflect.Name]fieldID) *msgSpec {
	out := &msgSpec{name: m.name, wkt: m.wkt, fields: make(map[string]*fieldSpec, len(m.fields))}
	copies := map[*fieldSpec]*fieldSpec{}
	for key, fs := range m.fields {
		cp, ok := copies[fs]
		if !ok {
			c := *fs
			c.id = ids[fs.name]
			cp = &c
			copies[fs] = cp
		}
		out.fields[key] = cp
	}
	for name := range ids {
		if fs := out.fields[string(name)]; fs == nil || fs.id == fNone {
			panic(fmt.Sprintf("flows: fast decoder: %s has no field %s", m.name, name))
		}
	}
	out.keys = newKeyTable(out.fields)
	return out
}

func specOf(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*msgSpec) *msgSpec {
	if m, ok := seen[md.FullName()]; ok {
		return m
	}
	m := &msgSpec{name: md.FullName(), fields: map[string]*fieldSpec{}}
	seen[md.FullName()] = m
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		m.wkt = wktTimestamp
		return m
	case "google.protobuf.BoolValue", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.StringValue":
		m.wkt = wktWrapper
	default:
		if md.ParentFile().Package() == "google.protobuf" {
			m.wkt = wktUnsupported
			return m
		}
	}
	fds := md.Fields()
	specs := make([]*fieldSpec, fds.Len())
	for i := range fds.Len() {
		fd := fds.Get(i)
		fs := &fieldSpec{name: fd.Name(), index: fd.Index(), oneof: -1, kind: fd.Kind(), list: fd.IsList(), isMap: fd.IsMap()}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			fs.oneof = od.Index()
		}
		switch fd.Kind() {
		case protoreflect.MessageKind, protoreflect.GroupKind:
			if !fd.IsMap() {
				fs.msg = specOf(fd.Message(), seen)
			}
		case protoreflect.EnumKind:
			fs.enum = newNameTable(enumNames(fd.Enum()))
		}
		specs[i] = fs
	}
	// protojson looks a name up as a JSON name first, then as a proto name: JSON names
	// are entered last so that they win a clash.
	for i, fs := range specs {
		m.fields[fds.Get(i).TextName()] = fs
	}
	for i, fs := range specs {
		m.fields[fds.Get(i).JSONName()] = fs
	}
	if m.wkt == wktWrapper {
		// A wrapper is written as its value alone; its one field is "value".
		m.fields = map[string]*fieldSpec{"": m.fields["value"]}
	}
	m.keys = newKeyTable(m.fields)
	return m
}

func enumNames(ed protoreflect.EnumDescriptor) map[string]string {
	out := map[string]string{}
	vals := ed.Values()
	for i := range vals.Len() {
		v := vals.Get(i)
		name := ""
		if v.Number() != 0 {
			name = string(vals.ByNumber(v.Number()).Name())
		}
		out[string(v.Name())] = name
	}
	return out
}

// The decoder records captured fields as bits of a uint64 (fastDecoder.captured); this
// fails to compile when a field ID no longer fits.
const _ uint64 = 1 << (63 - fWorkloadKind)
