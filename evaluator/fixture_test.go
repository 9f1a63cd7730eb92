package evaluator

import (
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// fx is the hand-built cluster the semantics cases run against. It is read-only: every
// case builds its own evaluators over it.
//
//	namespace    labels                 pods (node)
//	shop         team=shop env=prod     frontend-abc (n1), cart-1 (n1), redis-0 (n2),
//	                                    legacy-0 (n2, no labels), cart-synth (no IP)
//	payments     team=payments env=prod api-1 (n2, dual-stack)
//	dev          env=dev                frontend-xyz (n1)
//	kube-system  -                      node-exporter (n1, host network)
//
// Nodes: n1 192.168.0.1, n2 192.168.0.2.
var fx = newFixture()

var (
	n1IP    = netip.MustParseAddr("192.168.0.1")
	n2IP    = netip.MustParseAddr("192.168.0.2")
	worldIP = netip.MustParseAddr("203.0.113.7")
)

func newFixture() *cluster.Snapshot {
	ns := func(name string, l labels.Set) *cluster.Namespace {
		all := labels.Set{corev1.LabelMetadataName: name}
		for k, v := range l {
			all[k] = v
		}
		return &cluster.Namespace{Name: name, Labels: all}
	}
	ips := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	s := &cluster.Snapshot{
		Namespaces: map[string]*cluster.Namespace{
			"shop":        ns("shop", labels.Set{"team": "shop", "env": "prod"}),
			"payments":    ns("payments", labels.Set{"team": "payments", "env": "prod"}),
			"dev":         ns("dev", labels.Set{"env": "dev"}),
			"kube-system": ns("kube-system", nil),
		},
		Pods: []*cluster.Pod{
			{Namespace: "shop", Name: "frontend-abc", Labels: labels.Set{"app": "frontend"}, IPs: ips("10.244.1.10"), NodeName: "n1", HostIP: n1IP},
			{Namespace: "shop", Name: "cart-1", Labels: labels.Set{"app": "cart", "tier": "backend"}, IPs: ips("10.244.1.11"), NodeName: "n1", HostIP: n1IP,
				Ports: []cluster.ContainerPort{
					{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP},
					{Name: "metrics", Port: 9090}, // protocol defaults to TCP
					{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP},
					{Name: "sig", Port: 3868, Protocol: corev1.ProtocolSCTP},
					{Port: 7000, Protocol: corev1.ProtocolTCP},
				}},
			{Namespace: "shop", Name: "redis-0", Labels: labels.Set{"app": "redis", "tier": "backend"}, IPs: ips("10.244.2.20"), NodeName: "n2", HostIP: n2IP,
				Ports: []cluster.ContainerPort{{Name: "redis", Port: 6379, Protocol: corev1.ProtocolTCP}}},
			{Namespace: "shop", Name: "legacy-0", IPs: ips("10.244.2.21"), NodeName: "n2", HostIP: n2IP},
			{Namespace: "shop", Name: "cart-synth", Labels: labels.Set{"app": "cart", "tier": "backend"}, Synthesized: true},
			{Namespace: "payments", Name: "api-1", Labels: labels.Set{"app": "api"}, IPs: ips("10.244.3.30", "fd00::30"), NodeName: "n2", HostIP: n2IP},
			{Namespace: "dev", Name: "frontend-xyz", Labels: labels.Set{"app": "frontend"}, IPs: ips("10.244.3.40"), NodeName: "n1", HostIP: n1IP},
			{Namespace: "kube-system", Name: "node-exporter", Labels: labels.Set{"app": "node-exporter"}, IPs: ips("192.168.0.1"), NodeName: "n1", HostIP: n1IP, HostNetwork: true},
		},
	}
	s.Index()
	return s
}

// pod is the endpoint of fixture pod "ns/name" with its primary address on the wire.
func pod(key string) Endpoint {
	ns, name, _ := strings.Cut(key, "/")
	p := fx.Pod(ns, name)
	if p == nil {
		panic("fixture has no pod " + key)
	}
	e := Endpoint{Kind: Pod, Pod: p}
	if len(p.IPs) > 0 {
		e.IP = p.IPs[0]
	}
	return e
}

func node(name string, ip netip.Addr) Endpoint { return Endpoint{Kind: Host, Node: name, IP: ip} }

func external(ip string) Endpoint {
	return Endpoint{Kind: External, IP: netip.MustParseAddr(ip)}
}

func tcp(src, dst Endpoint, port int32) Connection {
	return Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolTCP, Port: port}
}

func udp(src, dst Endpoint, port int32) Connection {
	return Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolUDP, Port: port}
}

func sctp(src, dst Endpoint, port int32) Connection {
	return Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolSCTP, Port: port}
}

// Expected directions.
var (
	open   = Direction{Allowed: true}
	notPod = Direction{Allowed: true, Exempt: ExemptNotPod}
)

// isolated starts an expected isolated direction: isolated("shop/a", "shop/b").denied()
// or .by("shop/a#0").
type isolated []string

func (i isolated) refs() []PolicyRef {
	var out []PolicyRef
	for _, s := range i {
		ns, name, _ := strings.Cut(s, "/")
		out = append(out, PolicyRef{Namespace: ns, Name: name})
	}
	return out
}

func (i isolated) denied() Direction { return Direction{Isolated: i.refs()} }

func (i isolated) by(rules ...string) Direction {
	d := Direction{Allowed: true, Isolated: i.refs()}
	for _, r := range rules {
		policy, index, _ := strings.Cut(r, "#")
		ns, name, _ := strings.Cut(policy, "/")
		n := 0
		for _, c := range index {
			n = n*10 + int(c-'0')
		}
		d.AllowedBy = append(d.AllowedBy, RuleRef{Policy: PolicyRef{Namespace: ns, Name: name}, Index: n})
	}
	return d
}

func verdict(egress, ingress Direction) Verdict {
	return Verdict{Allowed: egress.Allowed && ingress.Allowed, Egress: egress, Ingress: ingress}
}

// parsePolicies reads a stream of YAML documents into NetworkPolicies, in order.
func parsePolicies(t testing.TB, src string) []*networkingv1.NetworkPolicy {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(src), 4096)
	var out []*networkingv1.NetworkPolicy
	for i := 1; ; i++ {
		var p networkingv1.NetworkPolicy
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("policy document %d: %v", i, err)
		}
		if p.Name == "" && p.Namespace == "" {
			continue // an empty document
		}
		out = append(out, &p)
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got); run go test -update if the change is intended:\n%s", path, diff)
	}
}
