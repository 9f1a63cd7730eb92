package evaluator

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// benchCluster is a mid-sized cluster: 20 namespaces of 25 pods (5 apps x 5 replicas)
// with 16 policies each (320 in all): a default deny, per-app ingress allowances by
// pod, namespace and named port, DNS and internet egress with ipBlocks.
func benchCluster(b *testing.B) (*cluster.Snapshot, []*networkingv1.NetworkPolicy, []Connection) {
	b.Helper()
	s := &cluster.Snapshot{Namespaces: map[string]*cluster.Namespace{}}
	var src string
	apps := []string{"web", "api", "db", "cache", "worker"}
	for n := range 20 {
		ns := fmt.Sprintf("team-%02d", n)
		s.Namespaces[ns] = &cluster.Namespace{Name: ns, Labels: labels.Set{
			corev1.LabelMetadataName: ns, "tier": []string{"prod", "staging"}[n%2],
		}}
		for a, app := range apps {
			for r := range 5 {
				s.Pods = append(s.Pods, &cluster.Pod{
					Namespace: ns, Name: fmt.Sprintf("%s-%d", app, r),
					Labels:   labels.Set{"app": app, "version": fmt.Sprintf("v%d", r%2)},
					IPs:      []netip.Addr{netip.AddrFrom4([4]byte{10, byte(n), byte(a), byte(r + 1)})},
					NodeName: fmt.Sprintf("node-%d", r), HostIP: netip.AddrFrom4([4]byte{192, 168, 0, byte(r + 1)}),
					Ports: []cluster.ContainerPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP},
						{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP}},
				})
			}
		}
		src += fmt.Sprintf(`
metadata: {namespace: %[1]s, name: default-deny}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
metadata: {namespace: %[1]s, name: dns}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
---
metadata: {namespace: %[1]s, name: internet}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 192.168.0.0/16]}}]
    ports: [{port: 443}]
---
metadata: {namespace: %[1]s, name: scrape}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
    ports: [{port: metrics}]
`, ns)
		for i, app := range apps {
			peer := apps[(i+len(apps)-1)%len(apps)]
			src += fmt.Sprintf(`---
metadata: {namespace: %[1]s, name: %[2]s-in}
spec:
  podSelector: {matchLabels: {app: %[2]s}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: %[3]s}}}]
    ports: [{port: http}]
  - from: [{namespaceSelector: {matchLabels: {tier: prod}}, podSelector: {matchExpressions: [{key: app, operator: In, values: [%[3]s, web]}]}}]
    ports: [{port: 8000, endPort: 8100}]
---
metadata: {namespace: %[1]s, name: %[2]s-out}
spec:
  podSelector: {matchLabels: {app: %[3]s}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: %[2]s}}}, {ipBlock: {cidr: 10.%[4]d.0.0/16}}]
`, ns, app, peer, n)
		}
		src += "---\n"
	}
	s.Index()
	policies := parsePolicies(b, src)
	r := rand.New(rand.NewPCG(7, 7))
	var conns []Connection
	for range 4096 {
		dst := pickOf(r, s.Pods)
		var from Endpoint
		switch r.IntN(10) {
		case 0:
			from = Endpoint{Kind: External, IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(r.IntN(256))})}
		case 1:
			from = Endpoint{Kind: Host, Node: "node-1", IP: netip.AddrFrom4([4]byte{192, 168, 0, 2})}
		default:
			p := pickOf(r, s.Pods)
			from = Endpoint{Kind: Pod, Pod: p, IP: p.IPs[0]}
		}
		conns = append(conns, tcp(from, Endpoint{Kind: Pod, Pod: dst, IP: dst.IPs[0]}, pickOf(r, []int32{8080, 8050, 9090, 443})))
	}
	return s, policies, conns
}

// BenchmarkEngineEvaluate measures the cache-hit hot path.
func BenchmarkEngineEvaluate(b *testing.B) {
	s, policies, conns := benchCluster(b)
	e := NewEngine(s, policies)
	for _, c := range conns {
		e.Evaluate(c)
	}
	b.ReportAllocs()
	cpu := processCPU(b)
	i := 0
	for b.Loop() {
		e.Evaluate(conns[i%len(conns)])
		i++
	}
	reportCPU(b, cpu)
}

// BenchmarkEngineEvaluateRef is the cache-hit hot path for resolved connections.
func BenchmarkEngineEvaluateRef(b *testing.B) {
	s, policies, conns := benchCluster(b)
	e := NewEngine(s, policies)
	refs := make([]refConn, len(conns))
	for i, c := range conns {
		refs[i] = resolveConn(e, c)
		refs[i].eval(e)
	}
	b.ReportAllocs()
	cpu := processCPU(b)
	i := 0
	for b.Loop() {
		rc := &refs[i%len(refs)]
		e.EvaluateRef(&rc.src, &rc.dst, rc.c.Protocol, rc.c.Port)
		i++
	}
	reportCPU(b, cpu)
}

// processCPU is the process's CPU time: on a shared machine, wall time per operation
// measures the neighbours as much as the code.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(processCPU(b)-since)/float64(b.N), "cpu-ns/op")
}

// BenchmarkEngineEvaluateParallel is the hot path under concurrent callers.
func BenchmarkEngineEvaluateParallel(b *testing.B) {
	s, policies, conns := benchCluster(b)
	e := NewEngine(s, policies)
	for _, c := range conns {
		e.Evaluate(c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e.Evaluate(conns[i%len(conns)])
			i++
		}
	})
}

// BenchmarkEngineEvaluateCold is the miss path: every evaluation recomputes its verdict.
func BenchmarkEngineEvaluateCold(b *testing.B) {
	s, policies, conns := benchCluster(b)
	e := NewEngine(s, policies)
	e.setCacheLimit(0) // the smallest cache: virtually every lookup misses
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Evaluate(conns[i%len(conns)])
		i++
	}
}

func BenchmarkOracleEvaluate(b *testing.B) {
	s, policies, conns := benchCluster(b)
	o := NewOracle(s, policies)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o.Evaluate(conns[i%len(conns)])
		i++
	}
}

func BenchmarkNewEngine(b *testing.B) {
	s, policies, _ := benchCluster(b)
	b.ReportAllocs()
	for b.Loop() {
		NewEngine(s, policies)
	}
}
