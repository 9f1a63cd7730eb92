package hubble_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

var wireT0 = time.Date(2026, 3, 1, 12, 0, 0, 137_000_000, time.UTC)

var eventOpts = []cmp.Option{cmpopts.EquateComparable(netip.Addr{})}

// reference is what the stream gave before the wire decoder: gRPC's proto codec, then
// flows.FromResponse.
func reference(b []byte) (flows.Event, error) {
	var resp observerpb.GetFlowsResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		return flows.Event{}, err
	}
	return flows.FromResponse(&resp), nil
}

// agreeWire decodes b both ways and fails unless the wire decoder either declined or
// returned exactly the reference's event, and unless Decode (with its fallback) always
// does. It reports whether the fast path was taken.
func agreeWire(t testing.TB, d hubble.WireDecoder, name string, b []byte) bool {
	t.Helper()
	want, wantErr := reference(b)
	got, err := d.Decode(b)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: Decode error %v, proto.Unmarshal error %v", name, err, wantErr)
	}
	if diff := cmp.Diff(want, got, eventOpts...); diff != "" {
		t.Fatalf("%s: Decode disagrees with proto.Unmarshal+FromResponse (-reference +decode):\n%s", name, diff)
	}
	fast, ok := d.Fast(b)
	if !ok {
		return false
	}
	if wantErr != nil {
		t.Fatalf("%s: the wire decoder accepted a message proto.Unmarshal rejects: %v", name, wantErr)
	}
	if diff := cmp.Diff(want, fast, eventOpts...); diff != "" {
		t.Fatalf("%s: wire decoder disagrees with proto.Unmarshal+FromResponse (-reference +fast):\n%s", name, diff)
	}
	return true
}

// encodeLines converts jsonpb lines to marshaled GetFlowsResponses, skipping those that
// protojson rejects or that are bare flows.
func encodeLines(tb testing.TB, lines [][]byte) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, line := range lines {
		var resp observerpb.GetFlowsResponse
		if (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(line, &resp) != nil || resp.GetResponseTypes() == nil {
			continue
		}
		b, err := proto.Marshal(&resp)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func fixtureMessages(tb testing.TB) [][]byte {
	tb.Helper()
	var lines [][]byte
	for _, name := range []string{"capture.good.jsonl", "capture.bad.jsonl"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, slices.Clone(sc.Bytes()))
		}
	}
	return encodeLines(tb, lines)
}

func generatedMessages(tb testing.TB, p bench.Profile, n int) [][]byte {
	tb.Helper()
	g := bench.Generate(p, 7).NewFlowGen()
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = g.Append(nil)
	}
	return encodeLines(tb, lines)
}

// TestWireDecoderAgreesWithProtoUnmarshal compares the two paths on the fixtures and on
// generated traffic of profiles S and M, where every flow must take the fast path: only
// the lost-events notices may be left to proto.Unmarshal.
func TestWireDecoderAgreesWithProtoUnmarshal(t *testing.T) {
	d := hubble.NewWireDecoder()
	for i, b := range fixtureMessages(t) {
		agreeWire(t, d, "fixture "+strconv.Itoa(i+1), b)
	}
	n := 5000
	if testing.Short() {
		n = 1000
	}
	for _, p := range []bench.Profile{bench.ProfileS, bench.ProfileM} {
		msgs := generatedMessages(t, p, n)
		fast, lost := 0, 0
		// Twice: the second pass decodes every endpoint from the cache.
		for pass := range 2 {
			for i, b := range msgs {
				if agreeWire(t, d, "profile "+p.Name+" message "+strconv.Itoa(i+1), b) {
					fast++
				} else if ev, _ := d.Decode(b); ev.Kind == flows.KindLost && pass == 0 {
					lost++
				}
			}
		}
		if want := 2 * (len(msgs) - lost); fast != want {
			t.Errorf("profile %s: fast path took %d of %d flow messages", p.Name, fast, want)
		}
	}
}

func baseFlow() *flowpb.Flow {
	return &flowpb.Flow{
		Time:             timestamppb.New(wireT0),
		Uuid:             "6513270e-269e-4d37-b2a7-4de452e6b438",
		Verdict:          flowpb.Verdict_FORWARDED,
		IP:               &flowpb.IP{Source: "10.0.1.12", Destination: "10.0.2.33", IpVersion: flowpb.IPVersion_IPv4},
		L4:               &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: 51234, DestinationPort: 8080, Flags: &flowpb.TCPFlags{SYN: true}}}},
		Source:           &flowpb.Endpoint{ID: 1203, Identity: 48211, Namespace: "shop", Labels: []string{"k8s:app=frontend"}, PodName: "frontend-1", Workloads: []*flowpb.Workload{{Name: "frontend", Kind: "Deployment"}}},
		Destination:      &flowpb.Endpoint{Identity: 2, Labels: []string{"reserved:world"}},
		Type:             flowpb.FlowType_L3_L4,
		NodeName:         "node-1",
		TrafficDirection: flowpb.TrafficDirection_EGRESS,
		IsReply:          wrapperspb.Bool(false),
		DestinationNames: []string{"example.com"},
		Summary:          "TCP Flags: SYN",
	}
}

// wrap is a GetFlowsResponse carrying flow, given as bytes so that cases can append
// what proto.Marshal would never write, and the envelope's node name and time.
func wrap(flow []byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, flow)
	b = protowire.AppendTag(b, 1000, protowire.BytesType)
	b = protowire.AppendString(b, "node-1")
	ts, _ := proto.Marshal(timestamppb.New(wireT0))
	b = protowire.AppendTag(b, 1001, protowire.BytesType)
	return protowire.AppendBytes(b, ts)
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWireDecoderCases pins which unusual messages the wire decoder takes and which it
// leaves to proto.Unmarshal; whichever it is, the result must be the reference's.
func TestWireDecoderCases(t *testing.T) {
	base := marshal(t, baseFlow())
	edit := func(f func(*flowpb.Flow)) []byte {
		fl := baseFlow()
		f(fl)
		return wrap(marshal(t, fl))
	}
	appendField := func(num protowire.Number, typ protowire.Type, v []byte) []byte {
		b := slices.Clone(base)
		b = protowire.AppendTag(b, num, typ)
		return wrap(append(b, v...))
	}
	noUUID := baseFlow()
	noUUID.Uuid = ""
	varint := func(v uint64) []byte { return protowire.AppendVarint(nil, v) }
	str := func(s string) []byte { return protowire.AppendString(nil, s) }
	cases := map[string]struct {
		msg      []byte
		wantFast bool
	}{
		"typical":                            {wrap(base), true},
		"unknown field is skipped":           {appendField(999, protowire.VarintType, varint(7)), true},
		"unknown group is skipped":           {appendField(999, protowire.StartGroupType, protowire.AppendTag(nil, 999, protowire.EndGroupType)), true},
		"kept field with another wire type":  {appendField(2, protowire.BytesType, str("x")), true},
		"kept scalar repeated: last wins":    {appendField(2, protowire.VarintType, varint(uint64(flowpb.Verdict_DROPPED))), false},
		"kept message repeated: merged":      {appendField(6, protowire.BytesType, protowire.AppendBytes(nil, marshal(t, &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: 53}}}))), false},
		"invalid UTF-8 in an unkept string":  {appendField(100000, protowire.BytesType, str("\xff")), false},
		"invalid UTF-8 in a kept string":     {wrap(protowire.AppendString(protowire.AppendTag(marshal(t, noUUID), 34, protowire.BytesType), "\xff")), false},
		"invalid UTF-8 in an unkept message": {appendField(20, protowire.BytesType, protowire.AppendBytes(nil, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xfe"))), false},
		"unknown enum number":                {edit(func(f *flowpb.Flow) { f.Verdict = 999 }), false},
		"zero enum reads as unset":           {edit(func(f *flowpb.Flow) { f.Verdict = 0; f.Type = 0 }), true},
		"deprecated reply alone":             {edit(func(f *flowpb.Flow) { f.IsReply = nil; f.Reply = true }), true},
		"is_reply present and empty":         {edit(func(f *flowpb.Flow) { f.IsReply = &wrapperspb.BoolValue{} }), true},
		"no time: the envelope's":            {edit(func(f *flowpb.Flow) { f.Time = nil; f.NodeName = "" }), true},
		"zero time is not no time":           {edit(func(f *flowpb.Flow) { f.Time = &timestamppb.Timestamp{} }), true},
		"IPv6":                               {edit(func(f *flowpb.Flow) { f.IP.Source, f.IP.Destination = "fd00::1", "fd00::2" }), true},
		"v4-mapped IPv6 compares as IPv4":    {edit(func(f *flowpb.Flow) { f.IP.Source = "::ffff:10.0.1.12" }), true},
		"IPv6 zone":                          {edit(func(f *flowpb.Flow) { f.IP.Source, f.IP.Destination = "fe80::1%eth0", "fe80::2" }), false},
		"mixed families":                     {edit(func(f *flowpb.Flow) { f.IP.Source = "fd00::1" }), false},
		"empty address":                      {edit(func(f *flowpb.Flow) { f.IP.Destination = "" }), false},
		"port above 65535":                   {edit(func(f *flowpb.Flow) { f.L4.GetTCP().DestinationPort = 70000 }), false},
		"UDP": {edit(func(f *flowpb.Flow) {
			f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: 1, DestinationPort: 53}}}
		}), true},
		"ICMPv4": {edit(func(f *flowpb.Flow) {
			f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_ICMPv4{ICMPv4: &flowpb.ICMPv4{Type: 8}}}
		}), true},
		"no IP layer":                         {edit(func(f *flowpb.Flow) { f.IP = nil }), false},
		"no flow fields":                      {wrap(nil), false},
		"truncated":                           {wrap(base)[:len(wrap(base))-3], false},
		"field number 0":                      {append(wrap(base), 0x00), false},
		"field number above the maximum":      {protowire.AppendVarint(wrap(base), uint64(protowire.MaxValidNumber+1)<<3), false},
		"lost events":                         {marshal(t, &observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{NumEventsLost: 3}}}), false},
		"unknown field in the envelope":       {protowire.AppendBytes(protowire.AppendTag(wrap(base), 77, protowire.BytesType), []byte("\xff")), true},
		"labels interleaved with other field": {edit(func(f *flowpb.Flow) { f.Source.Labels = []string{"a", "b", "c"} }), true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := hubble.NewWireDecoder()
			// Twice: the second decode takes endpoints from the cache.
			for range 2 {
				if got := agreeWire(t, d, name, tc.msg); got != tc.wantFast {
					t.Errorf("fast path taken = %v, want %v", got, tc.wantFast)
				}
			}
		})
	}
}

// FuzzWireDecoder holds the wire decoder to proto.Unmarshal and FromResponse on
// arbitrary input: whenever it does not decline, the events must be identical, and it
// must never accept a message proto.Unmarshal rejects.
func FuzzWireDecoder(f *testing.F) {
	for _, b := range fixtureMessages(f) {
		f.Add(b)
	}
	for _, b := range generatedMessages(f, bench.ProfileS, 50) {
		f.Add(b)
	}
	d := hubble.NewWireDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		agreeWire(t, d, "fuzzed message", b)
	})
}

// BenchmarkDecodeResponse decodes profile M flow messages, with the wire decoder and
// with the reference path it replaces (gRPC's proto codec, then flows.FromResponse). The
// messages cycle through a set of 100,000 so that the endpoint cache sees a realistic
// spread of pods.
func BenchmarkDecodeResponse(b *testing.B) {
	msgs := generatedMessages(b, bench.ProfileM, 100_000)
	run := func(b *testing.B, decode func([]byte) (flows.Event, error)) {
		for _, m := range msgs { // warm, as a long-running source is
			decode(m)
		}
		b.ReportAllocs()
		var ru0 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		i := 0
		for b.Loop() {
			if _, err := decode(msgs[i%len(msgs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		var ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
	b.Run("decoder=wire", func(b *testing.B) {
		d := hubble.NewWireDecoder()
		run(b, d.Decode)
	})
	b.Run("decoder=proto", func(b *testing.B) { run(b, reference) })
}

// TestWireDecoderMemoHits decodes, with one decoder, messages whose endpoints are
// remembered ones changed only late in their bytes (after the prefix that picks the
// memo slot, in the last label, in the workload kind), and endpoints that share a label
// list with another pod or spread theirs over two runs: each must still decode exactly
// as proto.Unmarshal and FromResponse do.
func TestWireDecoderMemoHits(t *testing.T) {
	edit := func(f func(*flowpb.Flow)) []byte {
		fl := baseFlow()
		f(fl)
		return wrap(marshal(t, fl))
	}
	manyLabels := []string{"k8s:app=orders", "k8s:io.cilium.k8s.policy.cluster=default", "k8s:team=billing", "k8s:tier=backend"}
	withLabels := func(labels ...string) func(*flowpb.Flow) {
		return func(f *flowpb.Flow) { f.Source.Labels = labels }
	}
	// splitLabels puts pod_name between two runs of labels, which proto.Marshal never
	// does: the lists must be joined in order.
	splitLabels := func(first, second []string) []byte {
		fl := baseFlow()
		fl.Source = nil
		var ep []byte
		ep = protowire.AppendTag(ep, 2, protowire.VarintType)
		ep = protowire.AppendVarint(ep, 48211)
		for _, l := range first {
			ep = protowire.AppendString(protowire.AppendTag(ep, 4, protowire.BytesType), l)
		}
		ep = protowire.AppendString(protowire.AppendTag(ep, 5, protowire.BytesType), "orders-1")
		for _, l := range second {
			ep = protowire.AppendString(protowire.AppendTag(ep, 4, protowire.BytesType), l)
		}
		b := marshal(t, fl)
		b = protowire.AppendBytes(protowire.AppendTag(b, 8, protowire.BytesType), ep)
		return wrap(b)
	}
	cases := map[string][][]byte{
		"last label differs in its last byte": {
			edit(withLabels(manyLabels...)),
			edit(withLabels(append(slices.Clone(manyLabels[:3]), "k8s:tier=backenD")...)),
			edit(withLabels(manyLabels...)),
		},
		"workload kind differs": {
			edit(func(f *flowpb.Flow) {}),
			edit(func(f *flowpb.Flow) { f.Source.Workloads[0].Kind = "StatefulSet" }),
			edit(func(f *flowpb.Flow) {
				f.Source.Workloads = append(f.Source.Workloads, &flowpb.Workload{Name: "x", Kind: "Job"})
			}),
			edit(func(f *flowpb.Flow) {}),
		},
		"same first bytes, pod name differs": {
			edit(func(f *flowpb.Flow) {}),
			edit(func(f *flowpb.Flow) { f.Source.PodName = "frontend-2" }),
			edit(func(f *flowpb.Flow) { f.Source.PodName = "" }),
			edit(func(f *flowpb.Flow) {}),
		},
		"one label list, several pods": {
			edit(func(f *flowpb.Flow) { f.Source.Labels, f.Source.PodName, f.Source.ID = manyLabels, "orders-1", 1 }),
			edit(func(f *flowpb.Flow) { f.Source.Labels, f.Source.PodName, f.Source.ID = manyLabels, "orders-2", 2 }),
			edit(func(f *flowpb.Flow) { f.Destination.Labels, f.Destination.PodName = manyLabels, "orders-3" }),
		},
		"labels in two runs": {
			splitLabels(manyLabels[:2], manyLabels[2:]),
			edit(withLabels(manyLabels[:2]...)),
			splitLabels(manyLabels[:2], manyLabels[2:]),
			splitLabels(manyLabels[:2], manyLabels[3:]),
			splitLabels(nil, manyLabels),
		},
		"no labels after labels": {
			edit(withLabels(manyLabels...)),
			edit(withLabels()),
			edit(withLabels(manyLabels...)),
		},
	}
	for name, msgs := range cases {
		t.Run(name, func(t *testing.T) {
			d := hubble.NewWireDecoder()
			for pass := range 2 {
				for i, b := range msgs {
					if !agreeWire(t, d, fmt.Sprintf("pass %d message %d", pass, i), b) {
						t.Errorf("pass %d message %d: the wire decoder declined", pass, i)
					}
				}
			}
		})
	}
}
