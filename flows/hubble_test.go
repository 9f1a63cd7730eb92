package flows

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protojson"
)

var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.Addr{})}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseLine(t *testing.T) {
	frontend := Endpoint{
		IP:        addr("10.0.1.12"),
		Namespace: "shop",
		PodName:   "frontend-7d9f6c5b8-x2kqp",
		Labels:    []string{"k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=shop"},
		Workloads: []Workload{{Name: "frontend", Kind: "Deployment"}},
		Identity:  48211,
	}
	cart := Endpoint{
		IP:        addr("10.0.2.33"),
		Namespace: "shop",
		PodName:   "cart-5f8b9d7c4-9hz7m",
		Labels:    []string{"k8s:app=cart", "k8s:io.kubernetes.pod.namespace=shop"},
		Workloads: []Workload{{Name: "cart", Kind: "Deployment"}, {Name: "cart-5f8b9d7c4", Kind: "ReplicaSet"}},
		Identity:  31044,
	}
	ips := func(src, dst string) (Endpoint, Endpoint) {
		return Endpoint{IP: addr(src)}, Endpoint{IP: addr(dst)}
	}
	podIPs := `"IP":{"source":"10.0.1.12","destination":"10.0.2.33","ipVersion":"IPv4"}`
	src, dst := ips("10.0.1.12", "10.0.2.33")

	cases := map[string]struct {
		line string
		want Event
	}{
		"jsonpb flow between pods maps every field": {
			line: `{"flow":{"time":"2026-11-20T10:00:00.123456789Z","uuid":"5b7c0e1a-8f2d-4c3b-9a61-0d4e7f2b1c90","verdict":"FORWARDED",` +
				`"ethernet":{"source":"9e:3c:1f:42:7a:01","destination":"6a:b2:9c:0e:55:13"},` + podIPs + `,` +
				`"l4":{"TCP":{"source_port":51234,"destination_port":8080,"flags":{"SYN":true}}},` +
				`"source":{"ID":1203,"identity":48211,"namespace":"shop","labels":["k8s:app=frontend","k8s:io.kubernetes.pod.namespace=shop"],"pod_name":"frontend-7d9f6c5b8-x2kqp","workloads":[{"name":"frontend","kind":"Deployment"}]},` +
				`"destination":{"ID":877,"identity":31044,"namespace":"shop","labels":["k8s:app=cart","k8s:io.kubernetes.pod.namespace=shop"],"pod_name":"cart-5f8b9d7c4-9hz7m","workloads":[{"name":"cart","kind":"Deployment"},{"name":"cart-5f8b9d7c4","kind":"ReplicaSet"}]},` +
				`"Type":"L3_L4","node_name":"node-1","event_type":{"type":4},"traffic_direction":"EGRESS","is_reply":false,"Summary":"TCP Flags: SYN"},` +
				`"node_name":"node-1","time":"2026-11-20T10:00:00.123456789Z"}`,
			want: Event{Kind: KindFlow, Flow: &Flow{
				Time:             ts("2026-11-20T10:00:00.123456789Z"),
				UUID:             "5b7c0e1a-8f2d-4c3b-9a61-0d4e7f2b1c90",
				NodeName:         "node-1",
				Verdict:          "FORWARDED",
				Type:             "L3_L4",
				IsReply:          new(false),
				TrafficDirection: "EGRESS",
				Source:           frontend,
				Destination:      cart,
				Protocol:         "TCP",
				SourcePort:       51234,
				DestinationPort:  8080,
				TCPFlags:         TCPFlags{SYN: true},
			}},
		},
		"lowerCamel JSON names are accepted": {
			line: `{"flow":{"verdict":"DROPPED","dropReasonDesc":"POLICY_DENIED","trafficDirection":"INGRESS","isReply":true,` +
				`"sourceNames":["cart.shop.svc.cluster.local"],"source":{"podName":"cart-0"},"nodeName":"node-2"},"nodeName":"node-9"}`,
			want: Event{Kind: KindFlow, Flow: &Flow{
				NodeName: "node-2", Verdict: "DROPPED", DropReason: "POLICY_DENIED", TrafficDirection: "INGRESS", IsReply: new(true),
				Source: Endpoint{PodName: "cart-0", Names: []string{"cart.shop.svc.cluster.local"}},
			}},
		},
		"dropped flow keeps the drop reason name": {
			line: `{"flow":{"verdict":"DROPPED","drop_reason":133,"drop_reason_desc":"POLICY_DENIED",` + podIPs + `}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Verdict: "DROPPED", DropReason: "POLICY_DENIED", Source: src, Destination: dst}},
		},
		"unset enums are empty": {
			line: `{"flow":{"verdict":"VERDICT_UNKNOWN","drop_reason_desc":"DROP_REASON_UNKNOWN","Type":"UNKNOWN_TYPE","traffic_direction":"TRAFFIC_DIRECTION_UNKNOWN","uuid":"u1"}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1"}},
		},
		"enum name from a newer Hubble reads as unset": {
			line: `{"flow":{"verdict":"QUARANTINED","uuid":"u1"}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1"}},
		},
		"enum number from a newer Hubble keeps its number": {
			line: `{"flow":{"verdict":"DROPPED","drop_reason_desc":250}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Verdict: "DROPPED", DropReason: "250"}},
		},
		"fields from a newer Hubble are ignored": {
			line: `{"flow":{"verdict":"FORWARDED","zero_trust":{"level":3,"tags":["a"]}},"shard":7}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Verdict: "FORWARDED"}},
		},
		"all TCP flags": {
			line: `{"flow":{` + podIPs + `,"l4":{"TCP":{"source_port":1,"destination_port":2,"flags":{"FIN":true,"SYN":true,"RST":true,"PSH":true,"ACK":true,"URG":true,"ECE":true}}}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: src, Destination: dst, Protocol: "TCP", SourcePort: 1, DestinationPort: 2,
				TCPFlags: TCPFlags{SYN: true, ACK: true, FIN: true, RST: true, PSH: true}}},
		},
		"TCP without flags": {
			line: `{"flow":{` + podIPs + `,"l4":{"TCP":{"source_port":1,"destination_port":2}}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: src, Destination: dst, Protocol: "TCP", SourcePort: 1, DestinationPort: 2}},
		},
		"UDP ports": {
			line: `{"flow":{"IP":{"source":"10.0.1.12","destination":"10.0.3.5"},"l4":{"UDP":{"source_port":38211,"destination_port":53}}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: Endpoint{IP: addr("10.0.1.12")}, Destination: Endpoint{IP: addr("10.0.3.5")},
				Protocol: "UDP", SourcePort: 38211, DestinationPort: 53}},
		},
		"SCTP ports": {
			line: `{"flow":{` + podIPs + `,"l4":{"SCTP":{"source_port":3868,"destination_port":38412,"chunk_type":"INIT"}}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: src, Destination: dst, Protocol: "SCTP", SourcePort: 3868, DestinationPort: 38412}},
		},
		"ICMPv4 has no ports": {
			line: `{"flow":{` + podIPs + `,"l4":{"ICMPv4":{"type":8}}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: src, Destination: dst, Protocol: "ICMPv4"}},
		},
		"ICMPv6 over IPv6": {
			line: `{"flow":{"IP":{"source":"fd00:10:244:2::21","destination":"fd00:10:244:1::c","ipVersion":"IPv6"},"l4":{"ICMPv6":{"type":129}}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: Endpoint{IP: addr("fd00:10:244:2::21")}, Destination: Endpoint{IP: addr("fd00:10:244:1::c")}, Protocol: "ICMPv6"}},
		},
		"VRRP": {
			line: `{"flow":{"IP":{"source":"10.0.0.2","destination":"224.0.0.18"},"l4":{"VRRP":{"type":1,"vrid":51}}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: Endpoint{IP: addr("10.0.0.2")}, Destination: Endpoint{IP: addr("224.0.0.18")}, Protocol: "VRRP"}},
		},
		"IGMP": {
			line: `{"flow":{"IP":{"source":"10.0.0.2","destination":"224.0.0.22"},"l4":{"IGMP":{"type":34}}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: Endpoint{IP: addr("10.0.0.2")}, Destination: Endpoint{IP: addr("224.0.0.22")}, Protocol: "IGMP"}},
		},
		"IP flow without layer 4": {
			line: `{"flow":{"verdict":"FORWARDED",` + podIPs + `}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Verdict: "FORWARDED", Source: src, Destination: dst}},
		},
		"flow without IP is a non-IP flow, not malformed": {
			line: `{"flow":{"verdict":"FORWARDED","ethernet":{"source":"9e:3c:1f:42:7a:01","destination":"ff:ff:ff:ff:ff:ff"},"Type":"L3_L4","node_name":"node-1"}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Verdict: "FORWARDED", Type: "L3_L4", NodeName: "node-1"}},
		},
		"IPv4-mapped IPv6 addresses are unmapped": {
			line: `{"flow":{"IP":{"source":"::ffff:10.0.1.12","destination":"::ffff:10.0.2.33","ipVersion":"IPv6"}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Source: src, Destination: dst}},
		},
		"is_reply true": {
			line: `{"flow":{"is_reply":true,"uuid":"u1"}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1", IsReply: new(true)}},
		},
		"is_reply absent is unknown": {
			line: `{"flow":{"uuid":"u1"}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1"}},
		},
		"is_reply null is unknown": {
			line: `{"flow":{"uuid":"u1","is_reply":null}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1"}},
		},
		"deprecated reply true without is_reply is a reply": {
			line: `{"flow":{"uuid":"u1","reply":true}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1", IsReply: new(true)}},
		},
		"deprecated reply false without is_reply is unknown": {
			line: `{"flow":{"uuid":"u1","reply":false}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1"}},
		},
		"is_reply wins over deprecated reply": {
			line: `{"flow":{"uuid":"u1","reply":true,"is_reply":false}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1", IsReply: new(false)}},
		},
		"source and destination names": {
			line: `{"flow":{"source_names":["frontend.shop"],"destination_names":["api.stripe.com","stripe.com"]}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{
				Source:      Endpoint{Names: []string{"frontend.shop"}},
				Destination: Endpoint{Names: []string{"api.stripe.com", "stripe.com"}},
			}},
		},
		"reserved identities keep their labels": {
			line: `{"flow":{"IP":{"source":"203.0.113.50","destination":"10.0.1.12"},"source":{"identity":2,"labels":["reserved:world"]},` +
				`"destination":{"identity":1,"labels":["reserved:host","reserved:kube-apiserver"]}}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{
				Source:      Endpoint{IP: addr("203.0.113.50"), Identity: 2, Labels: []string{"reserved:world"}},
				Destination: Endpoint{IP: addr("10.0.1.12"), Identity: 1, Labels: []string{"reserved:host", "reserved:kube-apiserver"}},
			}},
		},
		"flow time and node win over the envelope": {
			line: `{"flow":{"time":"2026-11-20T10:00:00.5Z","node_name":"node-1","uuid":"u1"},"node_name":"relay-seen","time":"2026-11-20T10:00:01Z"}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Time: ts("2026-11-20T10:00:00.5Z"), NodeName: "node-1", UUID: "u1"}},
		},
		"envelope time and node fill in": {
			line: `{"flow":{"uuid":"u1"},"node_name":"node-2","time":"2026-11-20T10:00:01Z"}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Time: ts("2026-11-20T10:00:01Z"), NodeName: "node-2", UUID: "u1"}},
		},
		"timestamp with an offset is normalized to UTC": {
			line: `{"flow":{"uuid":"u1","time":"2026-11-20T11:00:00+01:00"}}`,
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1", Time: ts("2026-11-20T10:00:00Z")}},
		},
		"legacy bare flow": {
			line: `{"time":"2026-11-20T10:00:02Z","verdict":"FORWARDED",` + podIPs + `,"l4":{"TCP":{"source_port":51234,"destination_port":8080,"flags":{"FIN":true,"ACK":true}}},"node_name":"node-1","is_reply":false}`,
			want: Event{Kind: KindFlow, Flow: &Flow{Time: ts("2026-11-20T10:00:02Z"), Verdict: "FORWARDED", NodeName: "node-1", IsReply: new(false),
				Source: src, Destination: dst, Protocol: "TCP", SourcePort: 51234, DestinationPort: 8080, TCPFlags: TCPFlags{FIN: true, ACK: true}}},
		},
		"surrounding JSON whitespace and CR": {
			line: " \t{\"flow\":{\"uuid\":\"u1\"}} \r",
			want: Event{Kind: KindFlow, Flow: &Flow{UUID: "u1"}},
		},
		"lost events take the last lost time": {
			line: `{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"27","cpu":1,"first":"2026-11-20T10:00:01.3Z","last":"2026-11-20T10:00:01.31Z"},"node_name":"node-2","time":"2026-11-20T10:00:01.312Z"}`,
			want: Event{Kind: KindLost, Lost: &Lost{Time: ts("2026-11-20T10:00:01.31Z"), Source: "PERF_EVENT_RING_BUFFER", NumEvents: 27, NodeName: "node-2"}},
		},
		"lost events with only a first time": {
			line: `{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":3,"first":"2026-11-20T10:00:01.3Z"},"time":"2026-11-20T10:00:02Z"}`,
			want: Event{Kind: KindLost, Lost: &Lost{Time: ts("2026-11-20T10:00:01.3Z"), Source: "HUBBLE_RING_BUFFER", NumEvents: 3}},
		},
		"lost events without times take the envelope time": {
			line: `{"lost_events":{"source":"OBSERVER_EVENTS_QUEUE","num_events_lost":"1"},"node_name":"node-1","time":"2026-11-20T10:00:02Z"}`,
			want: Event{Kind: KindLost, Lost: &Lost{Time: ts("2026-11-20T10:00:02Z"), Source: "OBSERVER_EVENTS_QUEUE", NumEvents: 1, NodeName: "node-1"}},
		},
		"lost events with unknown source": {
			line: `{"lost_events":{"num_events_lost":"5"}}`,
			want: Event{Kind: KindLost, Lost: &Lost{NumEvents: 5}},
		},
		"node status": {
			line: `{"node_status":{"state_change":"NODE_UNAVAILABLE","node_names":["node-3","node-4"],"message":"connection refused"},"time":"2026-11-20T10:00:01.9Z"}`,
			want: Event{Kind: KindNodeStatus, NodeStatus: &NodeStatus{Time: ts("2026-11-20T10:00:01.9Z"), State: "NODE_UNAVAILABLE", NodeNames: []string{"node-3", "node-4"}, Message: "connection refused"}},
		},
		"node status without time": {
			line: `{"node_status":{"state_change":"NODE_CONNECTED","node_names":["node-1"]}}`,
			want: Event{Kind: KindNodeStatus, NodeStatus: &NodeStatus{State: "NODE_CONNECTED", NodeNames: []string{"node-1"}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := ParseLine([]byte(tc.line))
			if !ok {
				t.Fatalf("ParseLine(%s) reported a blank line", tc.line)
			}
			if diff := cmp.Diff(tc.want, got, cmpOpts...); diff != "" {
				t.Errorf("ParseLine(%s) (-want +got):\n%s", tc.line, diff)
			}
		})
	}
}

func TestParseLineMalformed(t *testing.T) {
	ip := func(src, dst string) string {
		return `{"flow":{"IP":{"source":"` + src + `","destination":"` + dst + `"}}}`
	}
	cases := map[string]struct {
		line   string
		reason string
		// detail is a substring the explanation must contain, so a user can find the fault.
		detail string
	}{
		"truncated line":                {`{"flow":{"verdict":"FORW`, ReasonInvalidJSON, "unexpected"},
		"trailing garbage":              {`{"flow":{}} x`, ReasonInvalidJSON, ""},
		"two objects on one line":       {`{"flow":{"uuid":"a"}}{"flow":{"uuid":"b"}}`, ReasonInvalidJSON, ""},
		"invalid UTF-8":                 {"{\"flow\":{\"uuid\":\"\xff\xfe\"}}", ReasonInvalidJSON, "UTF-8"},
		"byte order mark is not JSON":   {"\xef\xbb\xbf{\"flow\":{\"uuid\":\"u1\"}}", ReasonInvalidJSON, ""},
		"plain text log line":           {`level=info msg="Starting Hubble"`, ReasonInvalidJSON, ""},
		"array":                         {`[{"flow":{}}]`, ReasonNotAnObject, "an array"},
		"string":                        {`"flow"`, ReasonNotAnObject, "a string"},
		"number":                        {`42`, ReasonNotAnObject, "a number"},
		"boolean":                       {`true`, ReasonNotAnObject, "a boolean"},
		"null":                          {`null`, ReasonNotAnObject, "null"},
		"IP is a string":                {`{"flow":{"IP":"10.0.1.12"}}`, ReasonInvalidField, "Hubble schema"},
		"timestamp not RFC 3339":        {`{"flow":{"time":"20/11/2026 10:00"}}`, ReasonInvalidField, "Timestamp"},
		"envelope time not RFC 3339":    {`{"flow":{"uuid":"u1"},"time":"yesterday"}`, ReasonInvalidField, "Timestamp"},
		"negative port":                 {`{"flow":{"l4":{"TCP":{"destination_port":-1}}}}`, ReasonInvalidField, "destinationPort"},
		"port beyond uint32":            {`{"flow":{"l4":{"UDP":{"source_port":4294967296}}}}`, ReasonInvalidField, "sourcePort"},
		"duplicate field":               {`{"flow":{"verdict":"FORWARDED","verdict":"DROPPED"}}`, ReasonInvalidField, "duplicate"},
		"flow and lost_events together": {`{"flow":{"uuid":"u1"},"lost_events":{"num_events_lost":"1"}}`, ReasonInvalidField, "oneof"},
		"two layer 4 protocols":         {`{"flow":{"l4":{"TCP":{},"UDP":{}}}}`, ReasonInvalidField, "oneof"},
		"is_reply is a string":          {`{"flow":{"is_reply":"yes"}}`, ReasonInvalidField, "bool field"},
		"legacy flow with a bad field":  {`{"verdict":"FORWARDED","l4":{"TCP":{"destination_port":"http"}}}`, ReasonInvalidField, "destinationPort"},
		"empty object":                  {`{}`, ReasonEmptyEvent, ""},
		"agent event":                   {`{"agent_event":{"type":"AGENT_STARTED"},"node_name":"node-1","time":"2026-11-20T10:00:00Z"}`, ReasonEmptyEvent, "keys: agent_event, node_name, time"},
		"envelope with only time":       {`{"node_name":"node-1","time":"2026-11-20T10:00:00Z"}`, ReasonEmptyEvent, ""},
		"flow is empty":                 {`{"flow":{},"node_name":"node-1"}`, ReasonEmptyEvent, "flow has no fields"},
		"flow has only time and node":   {`{"flow":{"time":"2026-11-20T10:00:00Z","node_name":"node-1"}}`, ReasonEmptyEvent, "flow has no fields"},
		"flow is null":                  {`{"flow":null}`, ReasonEmptyEvent, "keys: flow"},
		"unparsable source":             {ip("10.0.1.312", "10.0.2.33"), ReasonInvalidIP, "IP.source"},
		"unparsable destination":        {ip("10.0.1.12", "cart"), ReasonInvalidIP, "IP.destination"},
		"empty source":                  {ip("", "10.0.2.33"), ReasonInvalidIP, "IP.source is empty"},
		"empty IP object":               {`{"flow":{"IP":{}}}`, ReasonInvalidIP, "IP.source is empty"},
		"CIDR instead of address":       {ip("10.0.1.0/24", "10.0.2.33"), ReasonInvalidIP, "IP.source"},
		"IPv6 zone":                     {ip("fe80::1%eth0", "fe80::2"), ReasonInvalidIP, "zone"},
		"mixed families":                {ip("10.0.1.12", "fd00::1"), ReasonInvalidIP, "different families"},
		"TCP source port above 65535":   {`{"flow":{"l4":{"TCP":{"source_port":65536,"destination_port":80}}}}`, ReasonInvalidPort, "l4.TCP.source_port 65536"},
		"UDP destination port above":    {`{"flow":{"l4":{"UDP":{"source_port":53,"destination_port":70053}}}}`, ReasonInvalidPort, "l4.UDP.destination_port 70053"},
		"SCTP destination port above":   {`{"flow":{"l4":{"SCTP":{"destination_port":100000}}}}`, ReasonInvalidPort, "l4.SCTP.destination_port"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := ParseLine([]byte(tc.line))
			if !ok {
				t.Fatalf("ParseLine(%q) reported a blank line", tc.line)
			}
			want := Event{Kind: KindMalformed, Reason: tc.reason}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Event{}, "Detail")); diff != "" {
				t.Errorf("ParseLine(%q) (-want +got):\n%s", tc.line, diff)
			}
			if got.Detail == "" || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("ParseLine(%q).Detail = %q, want it to mention %q", tc.line, got.Detail, tc.detail)
			}
		})
	}
}

func TestParseLineBlank(t *testing.T) {
	for name, line := range map[string]string{
		"empty":           "",
		"spaces":          "   ",
		"CR of CRLF":      "\r",
		"tabs and breaks": "\t\n\r ",
	} {
		t.Run(name, func(t *testing.T) {
			if got, ok := ParseLine([]byte(line)); ok {
				t.Errorf("ParseLine(%q) = %+v, true; want a skipped blank line", line, got)
			}
		})
	}
}

// A Relay client reuses its receive message; a Flow must not see later writes to it.
func TestFromProtoDoesNotAlias(t *testing.T) {
	pf := &flowpb.Flow{
		Source:      &flowpb.Endpoint{Labels: []string{"k8s:app=cart"}},
		SourceNames: []string{"cart.shop"},
	}
	f, err := FromProto(pf)
	if err != nil {
		t.Fatal(err)
	}
	pf.Source.Labels[0], pf.SourceNames[0] = "changed", "changed"
	want := Endpoint{Labels: []string{"k8s:app=cart"}, Names: []string{"cart.shop"}}
	if diff := cmp.Diff(want, f.Source, cmpOpts...); diff != "" {
		t.Errorf("Source after the proto changed (-want +got):\n%s", diff)
	}
}

func TestFromResponse(t *testing.T) {
	cases := map[string]struct {
		resp *observerpb.GetFlowsResponse
		want Event
	}{
		"no response type": {
			resp: &observerpb.GetFlowsResponse{NodeName: "node-1"},
			want: Malformed(ReasonEmptyEvent, "response has no flow, lost_events or node_status"),
		},
		"nil flow": {
			resp: &observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_Flow{}},
			want: Malformed(ReasonEmptyEvent, "flow has no fields besides time and node_name"),
		},
		"malformed flow": {
			resp: &observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: &flowpb.Flow{
				IP: &flowpb.IP{Source: "10.0.0.1"},
			}}},
			want: Malformed(ReasonInvalidIP, "IP.destination is empty"),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, FromResponse(tc.resp), cmpOpts...); diff != "" {
				t.Errorf("FromResponse (-want +got):\n%s", diff)
			}
		})
	}
}

// The capture fixtures stand in for real Hubble output, so they must use only field names
// and values the Hubble API defines: parse them without DiscardUnknown.
func TestCaptureFixtureUsesHubbleSchema(t *testing.T) {
	for i, line := range readLines(t, filepath.Join("testdata", "capture.good.jsonl")) {
		var err error
		if bytes.HasPrefix(line, []byte(`{"flow":`)) || bytes.HasPrefix(line, []byte(`{"lost_events":`)) || bytes.HasPrefix(line, []byte(`{"node_status":`)) {
			err = protojson.Unmarshal(line, &observerpb.GetFlowsResponse{})
		} else {
			err = protojson.Unmarshal(line, &flowpb.Flow{})
		}
		if err != nil {
			t.Errorf("capture.good.jsonl:%d: not strict Hubble jsonpb: %v", i+1, err)
		}
	}
}

func readLines(tb testing.TB, path string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, slices.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return lines
}

func FuzzParseLine(f *testing.F) {
	for _, path := range []string{"capture.good.jsonl", "capture.bad.jsonl"} {
		for _, line := range readLines(f, filepath.Join("testdata", path)) {
			f.Add(line)
		}
	}
	for _, seed := range []string{"", " ", "{}", "null", `{"flow":null}`, `{"flow":{"IP":{"source":"fe80::1%eth0","destination":"fe80::2"}}}`} {
		f.Add([]byte(seed))
	}
	reasons := MalformedReasons()
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, ok := ParseLine(line)
		if !ok {
			if len(bytes.Trim(line, jsonSpace)) != 0 {
				t.Fatalf("ParseLine(%q) skipped a non-blank line", line)
			}
			return
		}
		if ev.Line != 0 {
			t.Errorf("ParseLine set Line = %d", ev.Line)
		}
		switch ev.Kind {
		case KindMalformed:
			if !slices.Contains(reasons, ev.Reason) || ev.Detail == "" {
				t.Errorf("malformed event with reason %q detail %q", ev.Reason, ev.Detail)
			}
		case KindFlow:
			checkUsableFlow(t, ev.Flow)
		case KindLost:
			if ev.Lost == nil {
				t.Error("KindLost without Lost")
			}
		case KindNodeStatus:
			if ev.NodeStatus == nil {
				t.Error("KindNodeStatus without NodeStatus")
			}
		default:
			t.Errorf("unknown kind %v", ev.Kind)
		}
		if ev.Kind != KindMalformed && (ev.Reason != "" || ev.Detail != "") {
			t.Errorf("%v event carries malformed reason %q", ev.Kind, ev.Reason)
		}
	})
}

// checkUsableFlow asserts what the evaluator relies on: both addresses or neither, plain
// (unzoned, unmapped) addresses of one family, and real port numbers.
func checkUsableFlow(t *testing.T, f *Flow) {
	t.Helper()
	if f == nil {
		t.Fatal("KindFlow without Flow")
	}
	s, d := f.Source.IP, f.Destination.IP
	if s.IsValid() != d.IsValid() {
		t.Fatalf("one-sided IP layer: %v -> %v", s, d)
	}
	if s.IsValid() && (s.Is4() != d.Is4() || s.Zone() != "" || d.Zone() != "" || s.Is4In6() || d.Is4In6()) {
		t.Errorf("unnormalized addresses %v -> %v", s, d)
	}
	if f.SourcePort > 65535 || f.DestinationPort > 65535 {
		t.Errorf("ports %d -> %d", f.SourcePort, f.DestinationPort)
	}
}

func BenchmarkParseLine(b *testing.B) {
	line := readLines(b, filepath.Join("testdata", "capture.good.jsonl"))[0]
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if ev, _ := ParseLine(line); ev.Kind != KindFlow {
			b.Fatalf("got %v event", ev.Kind)
		}
	}
}
