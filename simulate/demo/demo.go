// Package demo is the built-in demo: a microservice shop's manifests and a day of Hubble
// flows generated from them, so `shadowgate simulate` has something worth reading on a
// fresh machine. The flows are real `hubble observe -o jsonpb` lines, marshalled from the
// Cilium API types, and go through the same parser as any capture.
package demo

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

//go:embed cluster/*.yaml
var manifests embed.FS

// Snapshot loads the demo cluster.
func Snapshot() (*cluster.Snapshot, error) {
	sub, err := fs.Sub(manifests, "cluster")
	if err != nil {
		return nil, err
	}
	return cluster.LoadFS(sub, ".")
}

// Flows returns the demo's Hubble jsonpb lines.
func Flows() io.Reader { return bytes.NewReader(generate()) }

// WriteTo writes the demo to dir/cluster/*.yaml and dir/flows.jsonl.
func WriteTo(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "cluster"), 0o755); err != nil {
		return err
	}
	err := fs.WalkDir(manifests, "cluster", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := manifests.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), b, 0o644)
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "flows.jsonl"), generate(), 0o644)
}

// endpoint is a pod (or node, or outside address) as Hubble would describe it.
type endpoint struct {
	ns, pod, workload, kind string
	ip, node                string
	labels                  []string
}

func pod(ns, name, workload, kind, ip, node string, labels ...string) endpoint {
	ls := append([]string{}, labels...)
	ls = append(ls, "k8s:io.kubernetes.pod.namespace="+ns)
	sort.Strings(ls)
	return endpoint{ns: ns, pod: name, workload: workload, kind: kind, ip: ip, node: node, labels: ls}
}

var nodeIPs = map[string]string{"node-a": "10.0.0.11", "node-b": "10.0.0.12", "node-c": "10.0.0.13"}

// The pods behind the manifests. catalog, payments, data, the platform pods and the
// reporting job are not in the snapshot (only their controllers are): they resolve through
// the workloads Hubble reports, as they would after pods were rescheduled.
var (
	frontend = []endpoint{
		pod("shop", "frontend-7c9d5f6b8-x7k2p", "frontend", "Deployment", "10.244.1.10", "node-a", "k8s:app=frontend"),
		pod("shop", "frontend-7c9d5f6b8-m4n8q", "frontend", "Deployment", "10.244.2.10", "node-b", "k8s:app=frontend"),
	}
	cart = []endpoint{
		pod("shop", "cart-5b8f7d9c4-r2d2c", "cart", "Deployment", "10.244.1.11", "node-a", "k8s:app=cart"),
		pod("shop", "cart-5b8f7d9c4-c3p0x", "cart", "Deployment", "10.244.3.11", "node-c", "k8s:app=cart"),
	}
	checkout = []endpoint{
		pod("shop", "checkout-6f4c8b7d5-q9w8e", "checkout", "Deployment", "10.244.2.12", "node-b", "k8s:app=checkout"),
		pod("shop", "checkout-6f4c8b7d5-t5y6u", "checkout", "Deployment", "10.244.3.12", "node-c", "k8s:app=checkout"),
	}
	catalog    = []endpoint{pod("shop", "catalog-84d7b9c6f-j2k4l", "catalog", "Deployment", "10.244.1.13", "node-a", "k8s:app=catalog")}
	payment    = []endpoint{pod("payments", "payment-5c6d7e8f9-a1b2c", "payment", "Deployment", "10.244.2.20", "node-b", "k8s:app=payment")}
	ledger     = []endpoint{pod("payments", "ledger-7f8e9d6c5-d4e5f", "ledger", "Deployment", "10.244.3.21", "node-c", "k8s:app=ledger")}
	reporting  = []endpoint{pod("payments", "reporting-29876540-x8z7v", "reporting", "CronJob", "10.244.1.22", "node-a", "k8s:app=reporting")}
	redis      = []endpoint{pod("data", "redis-0", "redis", "StatefulSet", "10.244.2.40", "node-b", "k8s:app=redis")}
	postgres   = []endpoint{pod("data", "postgres-0", "postgres", "StatefulSet", "10.244.3.41", "node-c", "k8s:app=postgres")}
	ingress    = []endpoint{pod("ingress-nginx", "ingress-nginx-controller-6b9f7c5d8-k9l8m", "ingress-nginx-controller", "Deployment", "10.244.1.50", "node-a", "k8s:app.kubernetes.io/component=controller", "k8s:app.kubernetes.io/name=ingress-nginx")}
	prometheus = []endpoint{pod("monitoring", "prometheus-0", "prometheus", "StatefulSet", "10.244.3.60", "node-c", "k8s:app.kubernetes.io/name=prometheus")}
	coredns    = []endpoint{pod("kube-system", "coredns-5d78c9869d-abcde", "coredns", "Deployment", "10.244.2.70", "node-b", "k8s:k8s-app=kube-dns")}
	kafka      = []endpoint{
		pod("kafka", "kafka-0", "kafka", "StatefulSet", "10.244.1.30", "node-a", "k8s:app=kafka"),
		pod("kafka", "kafka-1", "kafka", "StatefulSet", "10.244.2.30", "node-b", "k8s:app=kafka"),
		pod("kafka", "kafka-2", "kafka", "StatefulSet", "10.244.3.30", "node-c", "k8s:app=kafka"),
	}
)

// conn is a kind of connection the shop makes, with how many per day.
type conn struct {
	from, to []endpoint
	port     uint32
	proto    string
	perDay   int
	// hour restricts the connections to one hour of the day (nightly jobs), -1 for all day.
	hour int
	// dropped marks connections the cluster's current policies already drop.
	dropped bool
}

func traffic() []conn {
	all := func(groups ...[]endpoint) []endpoint {
		var out []endpoint
		for _, g := range groups {
			out = append(out, g...)
		}
		return out
	}
	apps := all(frontend, cart, checkout, catalog, payment, ledger)
	return []conn{
		{from: nil, to: ingress, port: 443, proto: "TCP", perDay: 520, hour: -1}, // shoppers, from the internet
		{from: ingress, to: frontend, port: 8080, proto: "TCP", perDay: 480, hour: -1},
		{from: frontend, to: catalog, port: 8080, proto: "TCP", perDay: 360, hour: -1},
		{from: frontend, to: cart, port: 8080, proto: "TCP", perDay: 220, hour: -1},
		{from: frontend, to: checkout, port: 8080, proto: "TCP", perDay: 90, hour: -1},
		{from: cart, to: redis, port: 6379, proto: "TCP", perDay: 200, hour: -1},
		{from: checkout, to: cart, port: 8080, proto: "TCP", perDay: 80, hour: -1},
		{from: checkout, to: payment, port: 8443, proto: "TCP", perDay: 70, hour: -1},
		{from: checkout, to: kafka, port: 9092, proto: "TCP", perDay: 60, hour: -1},
		{from: catalog, to: postgres, port: 5432, proto: "TCP", perDay: 150, hour: -1},
		{from: payment, to: ledger, port: 8080, proto: "TCP", perDay: 70, hour: -1},
		{from: payment, to: kafka, port: 9092, proto: "TCP", perDay: 60, hour: -1},
		{from: ledger, to: postgres, port: 5432, proto: "TCP", perDay: 80, hour: -1},
		{from: ledger, to: kafka, port: 9092, proto: "TCP", perDay: 50, hour: -1},
		{from: nil, to: payment, port: 8443, proto: "TCP", perDay: 40, hour: -1}, // provider webhooks
		{from: prometheus, to: apps, port: 9090, proto: "TCP", perDay: 96, hour: -1},
		{from: apps, to: coredns, port: 53, proto: "UDP", perDay: 300, hour: -1},
		// What the intents miss: Prometheus scraping the Kafka exporter, the rarely used
		// refund path from checkout to the ledger, and the nightly reporting job.
		{from: prometheus, to: kafka, port: 9308, proto: "TCP", perDay: 48, hour: -1},
		{from: checkout, to: ledger, port: 8080, proto: "TCP", perDay: 3, hour: -1},
		{from: reporting, to: ledger, port: 8080, proto: "TCP", perDay: 6, hour: 2},
		// Already dropped today by data/redis-from-shop: not news, not "would be dropped".
		{from: ledger, to: redis, port: 6379, proto: "TCP", perDay: 4, hour: -1, dropped: true},
	}
}

var (
	start    = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	shoppers = []string{"198.51.100.", "192.0.2."}
	provider = "203.0.113."
)

type line struct {
	at  time.Time
	msg *observer.GetFlowsResponse
}

// generate builds one day of flows, deterministically.
func generate() []byte {
	r := rand.New(rand.NewPCG(20261120, 7))
	var lines []line
	seq := 0
	emit := func(at time.Time, f *flowpb.Flow) {
		seq++
		f.Time = timestamppb.New(at)
		f.Uuid = fmt.Sprintf("00000000-0000-4000-8000-%012d", seq)
		lines = append(lines, line{at: at, msg: &observer.GetFlowsResponse{
			NodeName: f.NodeName, Time: f.Time, ResponseTypes: &observer.GetFlowsResponse_Flow{Flow: f}}})
	}
	pick := func(eps []endpoint) endpoint { return eps[r.IntN(len(eps))] }
	when := func(hour int) time.Time {
		if hour >= 0 {
			return start.Add(time.Duration(hour)*time.Hour + time.Duration(r.Int64N(int64(time.Hour))))
		}
		return start.Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
	}
	for _, c := range traffic() {
		for i := 0; i < c.perDay; i++ {
			at := when(c.hour)
			dst := pick(c.to)
			var src endpoint
			if c.from == nil {
				prefix := shoppers[r.IntN(len(shoppers))]
				if c.port == 8443 {
					prefix = provider
				}
				src = endpoint{ip: fmt.Sprintf("%s%d", prefix, 1+r.IntN(250)), labels: []string{"reserved:world"}}
			} else {
				src = pick(c.from)
			}
			sport := uint32(32768 + r.IntN(28000))
			if c.proto == "UDP" {
				emit(at, udp(src, dst, sport, c.port, false))
				emit(at.Add(300*time.Microsecond), udp(dst, src, c.port, sport, true))
				continue
			}
			if c.dropped {
				f := tcp(src, dst, sport, c.port, syn, ptr(false))
				f.Verdict, f.DropReasonDesc = flowpb.Verdict_DROPPED, flowpb.DropReason_POLICY_DENIED
				emit(at, f)
				continue
			}
			emit(at, tcp(src, dst, sport, c.port, syn, ptr(false)))
			// Some observation points cannot tell replies: the SYN-ACK says it.
			var reply *bool
			if r.IntN(10) > 0 {
				reply = ptr(true)
			}
			emit(at.Add(400*time.Microsecond), tcp(dst, src, c.port, sport, synAck, reply))
			if r.IntN(4) == 0 {
				// A later packet of the established connection: still its traffic.
				emit(at.Add(time.Duration(1+r.IntN(900))*time.Millisecond), tcp(src, dst, sport, c.port, psh, ptr(false)))
			}
		}
	}
	// The kubelet probes every pod from its own node.
	for _, p := range []endpoint{frontend[0], frontend[1], cart[0], cart[1], checkout[0], checkout[1], catalog[0], payment[0], ledger[0]} {
		host := endpoint{ip: nodeIPs[p.node], node: p.node, labels: []string{"reserved:host"}}
		for i := 0; i < 48; i++ {
			at := start.Add(time.Duration(i)*30*time.Minute + time.Duration(r.Int64N(int64(time.Minute))))
			emit(at, tcp(host, p, uint32(40000+r.IntN(20000)), 8080, syn, ptr(false)))
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	// A burst on node-b overflowed its ring buffer once: Hubble says so.
	lost := &observer.GetFlowsResponse{NodeName: "node-b", Time: timestamppb.New(start.Add(14*time.Hour + 3*time.Minute)),
		ResponseTypes: &observer.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
			Source: flowpb.LostEventSource_PERF_EVENT_RING_BUFFER, NumEventsLost: 12, Cpu: wrapperspb.Int32(1)}}}
	at := sort.Search(len(lines), func(i int) bool { return !lines[i].at.Before(lost.Time.AsTime()) })
	lines = append(lines[:at], append([]line{{at: lost.Time.AsTime(), msg: lost}}, lines[at:]...)...)

	var buf bytes.Buffer
	opts := protojson.MarshalOptions{UseProtoNames: true}
	for _, l := range lines {
		b, err := opts.Marshal(l.msg)
		if err != nil {
			panic(fmt.Sprintf("demo: marshal flow: %v", err)) // the types are ours: a bug
		}
		// protojson output is deliberately unstable in whitespace; Hubble writes it compact.
		buf.Write(compact(b))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

type tcpFlags int

const (
	syn tcpFlags = iota
	synAck
	psh
)

func tcp(src, dst endpoint, sport, dport uint32, fl tcpFlags, reply *bool) *flowpb.Flow {
	f := base(src, dst, reply)
	flags := &flowpb.TCPFlags{}
	switch fl {
	case syn:
		flags.SYN = true
	case synAck:
		flags.SYN, flags.ACK = true, true
	case psh:
		flags.PSH, flags.ACK = true, true
	}
	f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: sport, DestinationPort: dport, Flags: flags}}}
	f.Summary = "TCP Flags: " + flagNames(flags)
	return f
}

func udp(src, dst endpoint, sport, dport uint32, reply bool) *flowpb.Flow {
	f := base(src, dst, ptr(reply))
	f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: sport, DestinationPort: dport}}}
	f.Summary = "UDP"
	return f
}

func base(src, dst endpoint, reply *bool) *flowpb.Flow {
	// Observed at the destination pod when there is one (to-endpoint), else at the source.
	node, dir, point := dst.node, flowpb.TrafficDirection_INGRESS, flowpb.TraceObservationPoint_TO_ENDPOINT
	if dst.pod == "" {
		node, dir, point = src.node, flowpb.TrafficDirection_EGRESS, flowpb.TraceObservationPoint_TO_STACK
	}
	if reply != nil && *reply {
		dir = map[flowpb.TrafficDirection]flowpb.TrafficDirection{flowpb.TrafficDirection_INGRESS: flowpb.TrafficDirection_EGRESS, flowpb.TrafficDirection_EGRESS: flowpb.TrafficDirection_INGRESS}[dir]
	}
	f := &flowpb.Flow{
		Verdict:               flowpb.Verdict_FORWARDED,
		IP:                    &flowpb.IP{Source: src.ip, Destination: dst.ip, IpVersion: flowpb.IPVersion_IPv4},
		Source:                hubbleEndpoint(src),
		Destination:           hubbleEndpoint(dst),
		Type:                  flowpb.FlowType_L3_L4,
		NodeName:              node,
		EventType:             &flowpb.CiliumEventType{Type: 4},
		TrafficDirection:      dir,
		TraceObservationPoint: point,
	}
	if reply != nil {
		f.IsReply = wrapperspb.Bool(*reply)
	}
	return f
}

func hubbleEndpoint(e endpoint) *flowpb.Endpoint {
	ep := &flowpb.Endpoint{Namespace: e.ns, PodName: e.pod, Labels: e.labels}
	switch {
	case e.pod != "":
		ep.Identity = 10000 + uint32(len(e.workload))*97 + uint32(len(e.ns))
		ep.Workloads = []*flowpb.Workload{{Name: e.workload, Kind: e.kind}}
	case e.node != "":
		ep.Identity = 1 // reserved:host
	default:
		ep.Identity = 2 // reserved:world
	}
	return ep
}

func flagNames(f *flowpb.TCPFlags) string {
	var s []string
	for _, x := range []struct {
		on   bool
		name string
	}{{f.SYN, "SYN"}, {f.ACK, "ACK"}, {f.PSH, "PSH"}, {f.FIN, "FIN"}, {f.RST, "RST"}} {
		if x.on {
			s = append(s, x.name)
		}
	}
	out := ""
	for i, n := range s {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// compact removes the insignificant whitespace protojson may add.
func compact(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}
