package evaluator

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

var (
	differentialN    = flag.Int("differential.n", 300, "number of random worlds TestDifferential generates")
	differentialSeed = flag.Uint64("differential.seed", 1, "seed of TestDifferential's first world (world i uses seed+i)")
)

// TestDifferential generates random worlds (a snapshot, a policy set and connections)
// and requires the Engine to return exactly the Oracle's verdicts, on a cold cache, on a
// warm one, from concurrent goroutines, and with a cache so small it is emptied all the
// time. The vocabularies (label keys and values, addresses, ports) are kept small so
// that selectors, ipBlocks and ports match often enough for every branch to be taken.
func TestDifferential(t *testing.T) {
	for i := range *differentialN {
		seed := *differentialSeed + uint64(i)
		w := newWorld(seed)
		oracle := NewOracle(w.snap, w.policies)
		want := make([]Verdict, len(w.conns))
		for ci, c := range w.conns {
			want[ci] = oracle.Evaluate(c)
		}
		engine, refEngine := NewEngine(w.snap, w.policies), NewEngine(w.snap, w.policies)
		if i%4 == 3 {
			engine.setCacheLimit(cacheWays) // one window: constant eviction
			refEngine.setCacheLimit(cacheWays)
		}
		var mu sync.Mutex
		failures := 0
		check := func(pass string, ci int, got Verdict) {
			diff := cmp.Diff(want[ci], got)
			if diff == "" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if failures++; failures > 3 {
				return
			}
			t.Errorf("world seed %d (-differential.seed=%d -differential.n=1), %s, connection %d %s: engine disagrees with oracle (-oracle +engine):\n%s\n%s",
				seed, seed, pass, ci, w.conns[ci], diff, w.dump())
		}
		for _, pass := range []string{"cold", "warm"} {
			for ci, c := range w.conns {
				check(pass, ci, engine.Evaluate(c))
			}
		}
		// The resolved path on its own engine, so that its misses fill the cache, and
		// with Refs of the other engine, which must be recognized as foreign.
		refs, foreign := make([]refConn, len(w.conns)), make([]refConn, len(w.conns))
		for ci, c := range w.conns {
			refs[ci], foreign[ci] = resolveConn(refEngine, c), resolveConn(engine, c)
		}
		for _, pass := range []string{"resolved, cold", "resolved, warm"} {
			for ci := range refs {
				check(pass, ci, refs[ci].eval(refEngine))
			}
		}
		for ci := range foreign {
			check("resolved by another engine", ci, foreign[ci].eval(refEngine))
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for k := range w.conns {
					ci := (k*7 + g*13) % len(w.conns)
					check(fmt.Sprintf("goroutine %d", g), ci, engine.Evaluate(w.conns[ci]))
					check(fmt.Sprintf("goroutine %d, resolved", g), ci, refs[ci].eval(refEngine))
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

// world is one generated scenario.
type world struct {
	seed     uint64
	snap     *cluster.Snapshot
	policies []*networkingv1.NetworkPolicy
	conns    []Connection
}

func (w *world) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pods:\n")
	for _, p := range w.snap.Pods {
		fmt.Fprintf(&b, "  %s labels=%v ips=%v node=%s hostIP=%v hostNetwork=%v ports=%v\n", p.Key(), p.Labels, p.IPs, p.NodeName, p.HostIP, p.HostNetwork, p.Ports)
	}
	fmt.Fprintf(&b, "namespaces:\n")
	for name, ns := range w.snap.Namespaces {
		fmt.Fprintf(&b, "  %s %v\n", name, ns.Labels)
	}
	for _, p := range w.policies {
		out, err := yaml.Marshal(p)
		if err != nil {
			out = []byte(err.Error())
		}
		fmt.Fprintf(&b, "---\n%s", out)
	}
	return b.String()
}

// gen draws the parts of a world.
type gen struct {
	r     *rand.Rand
	nodes []netip.Addr
}

var (
	genNamespaces = []string{"ns0", "ns1", "ns2", "ns3"}
	// Policies and namespace selectors also name a namespace no pod of the snapshot is in.
	genPolicyNamespaces = []string{"ns0", "ns1", "ns2", "ns3", "ghost"}
	genKeys             = []string{"app", "tier", "env"}
	genValues           = []string{"x", "y", "z"}
	genPortNames        = []string{"http", "dns", "sig", "metrics", "nope", ""}
	genPortNums         = []int32{53, 80, 81, 443, 3868, 8080, 9090}
	genProtocols        = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
	genContainer        = []cluster.ContainerPort{
		{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolTCP},
		{Name: "sig", Port: 3868, Protocol: corev1.ProtocolSCTP},
		{Name: "metrics", Port: 9090},
		{Port: 81, Protocol: corev1.ProtocolTCP},
	}
)

func newWorld(seed uint64) *world {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	for i := range 3 {
		g.nodes = append(g.nodes, netip.AddrFrom4([4]byte{192, 168, 0, byte(i + 1)}))
	}
	w := &world{seed: seed, snap: &cluster.Snapshot{Namespaces: map[string]*cluster.Namespace{}}}
	// ns3 is left out of the snapshot's namespaces: it exists only through its pods.
	for _, name := range genNamespaces[:3] {
		l := labels.Set{corev1.LabelMetadataName: name}
		for _, k := range []string{"team", "env"} {
			if g.r.IntN(3) > 0 {
				l[k] = g.pick(genValues)
			}
		}
		w.snap.Namespaces[name] = &cluster.Namespace{Name: name, Labels: l}
	}
	for i := range 6 + g.r.IntN(8) {
		p := g.pod(fmt.Sprintf("pod-%d", i))
		if i > 0 && g.chance(2) {
			// A replica: same namespace and labels as an earlier pod, its own ports
			// and address, so that identities are shared and must still tell the
			// replicas' named ports apart.
			orig := pickOf(g.r, w.snap.Pods)
			p.Namespace, p.Labels = orig.Namespace, orig.Labels
		}
		w.snap.Pods = append(w.snap.Pods, p)
	}
	w.snap.Index()
	for range 2 + g.r.IntN(10) {
		w.policies = append(w.policies, g.policy())
	}
	if g.r.IntN(8) == 0 {
		w.policies = append(w.policies, nil)
	}
	for range 60 {
		w.conns = append(w.conns, g.conn(w.snap))
	}
	return w
}

func pickOf[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func (g *gen) pick(s []string) string { return pickOf(g.r, s) }

func (g *gen) chance(n int) bool { return g.r.IntN(n) == 0 }

func (g *gen) labels() labels.Set {
	l := labels.Set{}
	for _, k := range genKeys {
		if g.r.IntN(5) < 3 {
			l[k] = g.pick(genValues)
		}
	}
	return l
}

func (g *gen) podIP() netip.Addr {
	return netip.AddrFrom4([4]byte{10, 0, byte(g.r.IntN(2)), byte(g.r.IntN(16))})
}

func (g *gen) pod(name string) *cluster.Pod {
	ni := g.r.IntN(len(g.nodes))
	p := &cluster.Pod{
		Namespace: g.pick(genNamespaces),
		Name:      name,
		Labels:    g.labels(),
		NodeName:  fmt.Sprintf("n%d", ni),
		HostIP:    g.nodes[ni],
	}
	switch {
	case g.chance(8):
		p.HostNetwork = true
		p.IPs = []netip.Addr{p.HostIP}
	case g.chance(8):
		p.Synthesized = true
	default:
		p.IPs = []netip.Addr{g.podIP()}
		if g.chance(3) {
			p.IPs = append(p.IPs, netip.MustParseAddr(fmt.Sprintf("fd00::%x", g.r.IntN(32))))
		}
	}
	p.Ports = g.containerPorts()
	return p
}

func (g *gen) containerPorts() []cluster.ContainerPort {
	var out []cluster.ContainerPort
	for _, cp := range genContainer {
		if g.chance(3) {
			out = append(out, cp)
		}
	}
	return out
}

func (g *gen) policy() *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{
		Namespace: g.pick(genPolicyNamespaces),
		Name:      fmt.Sprintf("p%d", g.r.IntN(4)), // collisions exercise dedupe
	}}
	p.Spec.PodSelector = *g.selector()
	switch g.r.IntN(8) {
	case 0:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{}
	case 1:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 2:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	case 3:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress}
	case 4:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{"Sideways"}
	}
	switch g.r.IntN(5) {
	case 0:
	case 1:
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{}
	default:
		for range 1 + g.r.IntN(3) {
			peers, ports := g.rule()
			p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports})
		}
	}
	switch g.r.IntN(4) {
	case 0:
	case 1:
		p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{}
	default:
		for range 1 + g.r.IntN(3) {
			peers, ports := g.rule()
			p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports})
		}
	}
	return p
}

func (g *gen) rule() ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort) {
	var peers []networkingv1.NetworkPolicyPeer
	var ports []networkingv1.NetworkPolicyPort
	switch g.r.IntN(4) {
	case 0:
	case 1:
		peers = []networkingv1.NetworkPolicyPeer{}
	default:
		for range 1 + g.r.IntN(3) {
			peers = append(peers, g.peer())
		}
	}
	switch g.r.IntN(4) {
	case 0:
	case 1:
		ports = []networkingv1.NetworkPolicyPort{}
	default:
		for range 1 + g.r.IntN(3) {
			ports = append(ports, g.port())
		}
	}
	return peers, ports
}

func (g *gen) peer() networkingv1.NetworkPolicyPeer {
	switch g.r.IntN(12) {
	case 0, 1:
		return networkingv1.NetworkPolicyPeer{PodSelector: g.selector()}
	case 2, 3:
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: g.nsSelector()}
	case 4, 5:
		return networkingv1.NetworkPolicyPeer{PodSelector: g.selector(), NamespaceSelector: g.nsSelector()}
	case 6, 7, 8, 9:
		return networkingv1.NetworkPolicyPeer{IPBlock: g.ipBlock()}
	case 10:
		return networkingv1.NetworkPolicyPeer{}
	}
	return networkingv1.NetworkPolicyPeer{IPBlock: g.ipBlock(), PodSelector: g.selector()}
}

// selector draws every form: empty, matchLabels, matchExpressions with each operator,
// both, and now and then one that does not convert.
func (g *gen) selector() *metav1.LabelSelector {
	return g.selectorOver(genKeys, genValues)
}

func (g *gen) nsSelector() *metav1.LabelSelector {
	if g.chance(6) {
		return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: g.pick(genPolicyNamespaces)}}
	}
	return g.selectorOver([]string{"team", "env"}, genValues)
}

func (g *gen) selectorOver(keys, values []string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{}
	if g.chance(4) {
		return s
	}
	for range g.r.IntN(3) {
		if s.MatchLabels == nil {
			s.MatchLabels = map[string]string{}
		}
		s.MatchLabels[g.pick(keys)] = g.pick(values)
	}
	for range g.r.IntN(3) {
		e := metav1.LabelSelectorRequirement{Key: g.pick(keys)}
		switch g.r.IntN(9) {
		case 0, 1:
			e.Operator, e.Values = metav1.LabelSelectorOpIn, g.values(values)
		case 2, 3:
			e.Operator, e.Values = metav1.LabelSelectorOpNotIn, g.values(values)
		case 4, 5:
			e.Operator = metav1.LabelSelectorOpExists
		case 6, 7:
			e.Operator = metav1.LabelSelectorOpDoesNotExist
		default:
			switch g.r.IntN(4) {
			case 0:
				e.Operator = metav1.LabelSelectorOpIn // without values
			case 1:
				e.Operator, e.Values = metav1.LabelSelectorOpExists, []string{"x"}
			case 2:
				e.Operator = "Sideways"
			default:
				e.Operator, e.Values = metav1.LabelSelectorOpIn, []string{"not a value!"}
			}
		}
		s.MatchExpressions = append(s.MatchExpressions, e)
	}
	return s
}

func (g *gen) values(from []string) []string {
	var out []string
	for range 1 + g.r.IntN(2) {
		out = append(out, g.pick(from))
	}
	return out
}

// addr draws an address from every population a connection can carry.
func (g *gen) addr() netip.Addr {
	switch g.r.IntN(6) {
	case 0, 1:
		return g.podIP()
	case 2:
		return pickOf(g.r, g.nodes)
	case 3:
		return netip.AddrFrom4([4]byte{203, 0, 113, byte(g.r.IntN(256))})
	case 4:
		return netip.MustParseAddr(fmt.Sprintf("fd00::%x", g.r.IntN(64)))
	}
	return netip.AddrFrom4([4]byte{byte(g.r.IntN(256)), byte(g.r.IntN(256)), byte(g.r.IntN(256)), byte(g.r.IntN(256))})
}

func (g *gen) prefix(min int) netip.Prefix {
	a := g.addr()
	bits := []int{0, 8, 16, 24, 28, 30, 32}
	if a.Is6() {
		bits = []int{0, 16, 64, 120, 124, 128}
	}
	var ok []int
	for _, b := range bits {
		if b >= min {
			ok = append(ok, b)
		}
	}
	if len(ok) == 0 {
		ok = []int{a.BitLen()}
	}
	p, _ := a.Prefix(pickOf(g.r, ok))
	return p
}

func (g *gen) ipBlock() *networkingv1.IPBlock {
	switch g.r.IntN(20) {
	case 0:
		return &networkingv1.IPBlock{CIDR: "10.0.0/8"}
	case 1:
		return &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"bogus"}}
	case 2:
		return &networkingv1.IPBlock{CIDR: "::ffff:10.0.0.0/112"}
	}
	cidr := g.prefix(0)
	b := &networkingv1.IPBlock{CIDR: cidr.String()}
	if g.chance(4) {
		b.CIDR = cidr.Addr().String() + "/" + fmt.Sprint(cidr.Bits()) // host bits as written
	}
	for range g.r.IntN(3) {
		// An except inside the cidr, mostly; sometimes anywhere.
		e := g.prefix(cidr.Bits())
		if !g.chance(4) {
			for range 8 {
				if cidr.Contains(e.Addr()) {
					break
				}
				e = g.prefix(cidr.Bits())
			}
		}
		b.Except = append(b.Except, e.String())
	}
	return b
}

func (g *gen) port() networkingv1.NetworkPolicyPort {
	var p networkingv1.NetworkPolicyPort
	if !g.chance(3) {
		proto := pickOf(g.r, genProtocols)
		p.Protocol = &proto
	}
	switch g.r.IntN(6) {
	case 0:
		if g.chance(4) {
			end := pickOf(g.r, genPortNums)
			p.EndPort = &end
		}
	case 1, 2:
		v := intstr.FromString(g.pick(genPortNames))
		p.Port = &v
	default:
		n := pickOf(g.r, genPortNums)
		v := intstr.FromInt32(n)
		p.Port = &v
	}
	if p.Port != nil && g.chance(3) {
		end := pickOf(g.r, genPortNums) + int32(g.r.IntN(3)) - 1
		p.EndPort = &end
	}
	return p
}

func (g *gen) conn(s *cluster.Snapshot) Connection {
	c := Connection{Src: g.endpoint(s), Protocol: pickOf(g.r, genProtocols)}
	if g.chance(10) {
		c.Dst = c.Src
	} else {
		c.Dst = g.endpoint(s)
	}
	switch {
	case c.Dst.Pod != nil && len(c.Dst.Pod.Ports) > 0 && g.chance(2):
		// Most real connections go to a port the destination declares.
		cp := pickOf(g.r, c.Dst.Pod.Ports)
		c.Port, c.Protocol = cp.Port, containerProtocol(cp)
	case g.chance(5):
		c.Port = int32(g.r.IntN(10000))
	default:
		c.Port = pickOf(g.r, genPortNums) + int32(g.r.IntN(3)) - 1
	}
	return c
}

func (g *gen) endpoint(s *cluster.Snapshot) Endpoint {
	switch g.r.IntN(14) {
	case 0, 1, 2, 3, 4, 5:
		p := pickOf(g.r, s.Pods)
		e := Endpoint{Kind: Pod, Pod: p}
		switch {
		case g.chance(4):
			// no address on the wire
		case len(p.IPs) > 0:
			e.IP = pickOf(g.r, p.IPs)
			if e.IP.Is4() && g.chance(5) {
				e.IP = netip.AddrFrom16(e.IP.As16())
			}
		}
		return e
	case 6:
		// A pod the snapshot does not hold: a copy of one, or one in a namespace of
		// its own.
		orig := pickOf(g.r, s.Pods)
		cp := *orig
		switch g.r.IntN(3) {
		case 0:
			cp.Namespace, cp.Labels = "ghost", g.labels()
		case 1:
			cp.Ports = g.containerPorts()
		}
		return Endpoint{Kind: Pod, Pod: &cp, IP: g.addr()}
	case 7, 8:
		e := Endpoint{Kind: Host}
		ni := g.r.IntN(len(g.nodes) + 1)
		if g.r.IntN(3) > 0 {
			e.Node = fmt.Sprintf("n%d", ni)
		}
		if g.r.IntN(3) > 0 {
			if ni < len(g.nodes) {
				e.IP = g.nodes[ni]
			} else {
				e.IP = g.addr()
			}
		}
		return e
	case 9, 10, 11:
		return Endpoint{Kind: External, IP: g.addr()}
	case 12:
		return Endpoint{Kind: Pod, IP: g.addr()} // a Pod without a pod
	}
	return Endpoint{Kind: EndpointKind(7), IP: g.addr()}
}
