package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strconv"
	"time"
)

// Flow categories: each has its own edge list, and edges are drawn from it by Zipf rank,
// so a few edges carry most of a category's flows, as in a real cluster.
const (
	catCovered     = iota // client to server as the intents declare
	catUncovered          // client to server with no intent: what enforcement would drop
	catDNS                // pods to cluster DNS
	catProbe              // nodes to pods (kubelet probes, node-local agents)
	catExternalIn         // the internet to the gateways
	catExternalOut        // pods to the internet
	numCategories
)

// edge is a pair of endpoints flows are drawn from. A nil workload is the internet (ext
// is then its address) or, for probes, a node.
type edge struct {
	src, dst *workload
	ext      netip.Addr
}

// lineKinds weighs what each line is, per mille; together they make the mix issue 7
// asks for: mostly covered connections, replies, a tail of uncovered ones, DNS, probes
// and external traffic.
var lineKinds = []struct {
	kind   lineKind
	weight int
}{
	{kindRequest, 490}, {kindReply, 200}, {kindICMP, 10}, {kindGhost, 10},
	{kindUncovered, 30},
	{kindDNS, 60}, {kindDNSL7, 20}, {kindDNSReply, 20},
	{kindProbe, 50}, {kindRemoteProbe, 10},
	{kindExternalIn, 50}, {kindExternalOut, 50},
}

type lineKind int

const (
	kindRequest lineKind = iota
	kindReply
	kindICMP
	kindGhost // a request from a pod created after the snapshot
	kindUncovered
	kindDNS
	kindDNSL7
	kindDNSReply
	kindProbe
	kindRemoteProbe
	kindExternalIn
	kindExternalOut
)

// lostEvery: one line in this many is a lost_events notice instead of a flow.
const lostEvery = 100_000

// flowEpoch is the time of the first flow; lines are flowStep apart (plus jitter), so
// ten million lines span about an hour.
var flowEpoch = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

const flowStep = 360 * time.Microsecond

// edges builds every category's edge list and its Zipf table.
func (g *generator) edges() {
	w := g.w
	covered := map[[2]int]bool{}
	var list []edge
	for _, srv := range w.workloads {
		for _, c := range srv.clientsOf {
			if k := [2]int{c.index, srv.index}; !covered[k] {
				covered[k] = true
				list = append(list, edge{src: c, dst: srv})
			}
		}
	}
	w.edges[catCovered] = list

	var apps []*workload
	for _, ns := range w.namespaces[2:] {
		apps = append(apps, ns.workloads...)
	}
	// A small cluster may have fewer uncovered pairs than wanted: take them all.
	isApp := map[int]bool{}
	for _, a := range apps {
		isApp[a.index] = true
	}
	free := len(apps) * (len(apps) - 1)
	for k := range covered {
		if k[0] != k[1] && isApp[k[0]] && isApp[k[1]] {
			free--
		}
	}
	var uncovered []edge
	for n := min(max(8, len(list)/20), free); len(uncovered) < n; {
		c, s := apps[g.pick(len(apps))], apps[g.pick(len(apps))]
		if c == s || covered[[2]int{c.index, s.index}] {
			continue
		}
		covered[[2]int{c.index, s.index}] = true
		uncovered = append(uncovered, edge{src: c, dst: s})
	}
	w.edges[catUncovered] = uncovered

	for _, wl := range w.workloads {
		if wl != w.dns {
			w.edges[catDNS] = append(w.edges[catDNS], edge{src: wl, dst: w.dns})
		}
		w.edges[catProbe] = append(w.edges[catProbe], edge{dst: wl})
		if wl.gateway {
			for range 8 {
				w.edges[catExternalIn] = append(w.edges[catExternalIn], edge{dst: wl, ext: g.worldAddr()})
			}
		}
		if wl.tier == "frontend" || wl.tier == "backend" {
			w.edges[catExternalOut] = append(w.edges[catExternalOut], edge{src: wl, ext: g.worldAddr()})
		}
	}
	for c := range w.edges {
		es := w.edges[c]
		g.r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		w.cdf[c] = zipfCDF(len(es))
	}
}

func (g *generator) worldAddr() netip.Addr {
	p := worldNets[g.pick(len(worldNets))]
	return addrAdd(p.Addr(), 1+g.pick(254))
}

// zipfCDF is the cumulative weight of ranks 0..n-1 for Zipf's law with exponent 1 (rank
// k weighs 1/(k+1)), in integers so that the draw is the same on every platform.
func zipfCDF(n int) []uint64 {
	const unit = 1 << 32
	cdf := make([]uint64, n)
	var sum uint64
	for k := range n {
		sum += unit / uint64(k+1)
		cdf[k] = sum
	}
	return cdf
}

// FlowGen draws flow lines from a World. Lines depend only on the world and their
// position, so the first N lines of a longer run are the N lines of a shorter one. A
// FlowGen is not safe for concurrent use; make one per goroutine.
type FlowGen struct {
	w *World
	r *rand.Rand
	n int
	// ghosts counts the pods created after the snapshot, per workload, that flows have
	// used so far.
	ghosts map[*workload]int
}

// NewFlowGen returns a generator positioned at the first line.
func (w *World) NewFlowGen() *FlowGen {
	return &FlowGen{w: w, r: rand.New(rand.NewPCG(w.Seed, 0xf10f_10f1)), ghosts: map[*workload]int{}}
}

// WriteFlows writes n lines of `hubble observe -o jsonpb` output to out.
func (w *World) WriteFlows(out io.Writer, n int) error {
	bw := bufio.NewWriterSize(out, 1<<20)
	g := w.NewFlowGen()
	var line []byte
	for range n {
		line = append(g.Append(line[:0]), '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Append appends the next line, without a newline, to dst.
func (g *FlowGen) Append(dst []byte) []byte {
	i := g.n
	g.n++
	t := flowEpoch.Add(time.Duration(i)*flowStep + time.Duration(g.r.IntN(100_000)))
	if i%lostEvery == lostEvery-1 {
		return g.lost(dst, t)
	}
	l := &line{g: g, t: t}
	switch g.kind() {
	case kindRequest:
		l.request(g.draw(catCovered))
	case kindReply:
		l.reply(g.draw(catCovered))
	case kindICMP:
		l.icmp(g.draw(catCovered))
	case kindGhost:
		l.ghost(g.draw(catCovered))
	case kindUncovered:
		l.request(g.draw(catUncovered))
	case kindDNS:
		l.dns(g.draw(catDNS), false)
	case kindDNSL7:
		l.dns(g.draw(catDNS), true)
	case kindDNSReply:
		l.dnsReply(g.draw(catDNS))
	case kindProbe:
		l.probe(g.draw(catProbe), false)
	case kindRemoteProbe:
		l.probe(g.draw(catProbe), true)
	case kindExternalIn:
		l.externalIn(g.draw(catExternalIn))
	default:
		l.externalOut(g.draw(catExternalOut))
	}
	return l.render(dst)
}

func (g *FlowGen) kind() lineKind {
	n := g.r.IntN(1000)
	for _, k := range lineKinds {
		if n < k.weight {
			return k.kind
		}
		n -= k.weight
	}
	return kindRequest
}

// draw picks an edge of category c by Zipf rank; a category without edges (a tiny
// profile) falls back to the covered edges and then to DNS, which always exist.
func (g *FlowGen) draw(c int) edge {
	for _, cat := range []int{c, catCovered, catDNS} {
		cdf := g.w.cdf[cat]
		if len(cdf) == 0 {
			continue
		}
		u := g.r.Uint64N(cdf[len(cdf)-1])
		return g.w.edges[cat][sort.Search(len(cdf), func(i int) bool { return cdf[i] > u })]
	}
	panic("bench: world has no DNS edges")
}

func (g *FlowGen) pod(w *workload) *pod { return w.pods[g.r.IntN(len(w.pods))] }

func (g *FlowGen) ephemeral() uint32 { return uint32(32768 + g.r.IntN(28232)) }

func (g *FlowGen) lost(dst []byte, t time.Time) []byte {
	nd := &g.w.nodes[g.r.IntN(len(g.w.nodes))]
	dst = append(dst, `{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"`...)
	dst = strconv.AppendInt(dst, int64(1+g.r.IntN(500)), 10)
	dst = append(dst, `","cpu":`...)
	dst = strconv.AppendInt(dst, int64(g.r.IntN(8)), 10)
	dst = append(dst, `,"first":"`...)
	dst = t.Add(-10*time.Millisecond).AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","last":"`...)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `"},"node_name":`...)
	dst = strconv.AppendQuote(dst, nd.name)
	dst = append(dst, `,"time":"`...)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

// line is one flow being assembled.
type line struct {
	g          *FlowGen
	t          time.Time
	srcIP      netip.Addr
	dstIP      netip.Addr
	src, dst   []byte // endpoint objects
	node       *node
	l4         []byte
	typ        string // L3_L4 or L7
	eventType  int
	service    []byte // destination_service object, or nil
	names      string // destination_names, or ""
	l7         []byte
	direction  string
	point      string // trace_observation_point
	reason     string // trace_reason
	isReply    bool
	summary    string
	unobserved bool // L7 records carry no trace fields
}

// Endpoints of reserved identities, as Cilium labels them.
var (
	worldEndpoint      = []byte(`{"identity":2,"labels":["reserved:world"]}`)
	hostEndpoint       = []byte(`{"identity":1,"labels":["reserved:host"]}`)
	remoteNodeEndpoint = []byte(`{"identity":6,"labels":["reserved:remote-node"]}`)
)

// request is a connection's forward packet, observed half the time leaving the client's
// node and half the time arriving at the server's.
func (l *line) request(e edge) {
	g := l.g
	sp, dp := g.pod(e.src), g.pod(e.dst)
	l.pods(sp, dp)
	syn := g.r.IntN(10) < 3
	l.tcp(g.ephemeral(), uint32(e.dst.port.ContainerPort), syn, false)
	l.forward(sp, dp, syn)
}

func (l *line) forward(sp, dp *pod, syn bool) {
	l.reason = "ESTABLISHED"
	if syn {
		l.reason = "NEW"
	}
	if l.g.r.IntN(2) == 0 {
		l.node, l.direction, l.point = sp.node, "EGRESS", "TO_STACK"
		l.service = dp.w.service
	} else {
		l.node, l.direction, l.point = dp.node, "INGRESS", "TO_ENDPOINT"
	}
}

// reply is the server's answer, flagged is_reply by the observation point.
func (l *line) reply(e edge) {
	g := l.g
	sp, dp := g.pod(e.dst), g.pod(e.src)
	l.pods(sp, dp)
	l.tcp(uint32(e.dst.port.ContainerPort), g.ephemeral(), false, true)
	l.isReply, l.reason = true, "REPLY"
	if g.r.IntN(2) == 0 {
		l.node, l.direction, l.point = sp.node, "EGRESS", "TO_STACK"
	} else {
		l.node, l.direction, l.point = dp.node, "INGRESS", "TO_ENDPOINT"
	}
}

func (l *line) icmp(e edge) {
	sp, dp := l.g.pod(e.src), l.g.pod(e.dst)
	l.pods(sp, dp)
	l.l4 = []byte(`{"ICMPv4":{"type":8}}`)
	l.summary = "ICMPv4 EchoRequest"
	l.forward(sp, dp, true)
}

// ghost is a request from a client pod that the snapshot does not have: a replica
// started after it was taken, with its workload's labels and a fresh address.
func (l *line) ghost(e edge) {
	g := l.g
	c := e.src
	k := g.r.IntN(4)
	if k >= g.ghosts[c] {
		k = g.ghosts[c]
		g.ghosts[c]++
	}
	name := c.name + "-" + strconv.Itoa(len(c.pods)+k)
	if c.kind == "Deployment" {
		name = c.name + "-" + c.hash + "-new" + strconv.Itoa(k)
	}
	nd := &g.w.nodes[(c.index*7+k)%len(g.w.nodes)]
	gp := &pod{w: c, name: name, ip: addrAdd(ghostBase, (c.index*4+k)%(1<<16)), node: nd, id: uint32(1_000_000 + c.index*4 + k)}
	labels := copyMap(c.labels)
	if c.kind == "StatefulSet" {
		labels["statefulset.kubernetes.io/pod-name"] = name
	}
	gp.endpoint = endpointJSON(gp.id, c, name, labels)
	dp := g.pod(e.dst)
	l.pods(gp, dp)
	l.tcp(g.ephemeral(), uint32(e.dst.port.ContainerPort), true, false)
	l.forward(gp, dp, true)
}

func (l *line) dns(e edge, l7 bool) {
	g := l.g
	sp, dp := g.pod(e.src), g.pod(e.dst)
	l.pods(sp, dp)
	l.udp(g.ephemeral(), 53)
	l.node, l.direction = sp.node, "EGRESS"
	l.service = dp.w.service
	if !l7 {
		l.point, l.reason, l.summary = "TO_STACK", "NEW", "UDP"
		return
	}
	target := g.w.workloads[g.r.IntN(len(g.w.workloads))]
	query := target.name + "." + target.ns.name + ".svc.cluster.local."
	l.typ, l.eventType, l.unobserved = "L7", 129, true
	l.l7 = fmt.Appendf(nil, `{"type":"REQUEST","dns":{"query":%q,"observation_source":"proxy","qtypes":["A"]}}`, query)
	l.summary = "DNS Query " + query + " A"
}

func (l *line) dnsReply(e edge) {
	g := l.g
	sp, dp := g.pod(e.dst), g.pod(e.src)
	l.pods(sp, dp)
	l.udp(53, g.ephemeral())
	l.node, l.direction, l.point, l.reason, l.summary = dp.node, "EGRESS", "TO_ENDPOINT", "REPLY", "UDP"
	l.isReply = true
}

// probe is the kubelet (from the pod's own node) or, for remote, another node's agent.
func (l *line) probe(e edge, remote bool) {
	g := l.g
	dp := g.pod(e.dst)
	l.dstIP, l.dst = dp.ip, dp.endpoint
	l.src, l.srcIP = hostEndpoint, dp.node.ip
	if remote {
		other := &g.w.nodes[g.r.IntN(len(g.w.nodes))]
		l.src, l.srcIP = remoteNodeEndpoint, other.ip
	}
	l.tcp(g.ephemeral(), uint32(e.dst.port.ContainerPort), true, false)
	l.node, l.direction, l.point, l.reason = dp.node, "INGRESS", "TO_ENDPOINT", "NEW"
}

func (l *line) externalIn(e edge) {
	g := l.g
	dp := g.pod(e.dst)
	l.dstIP, l.dst = dp.ip, dp.endpoint
	l.src, l.srcIP = worldEndpoint, e.ext
	syn := g.r.IntN(2) == 0
	l.tcp(g.ephemeral(), uint32(e.dst.port.ContainerPort), syn, false)
	l.node, l.direction, l.point, l.reason = dp.node, "INGRESS", "TO_ENDPOINT", "NEW"
}

func (l *line) externalOut(e edge) {
	g := l.g
	sp := g.pod(e.src)
	l.srcIP, l.src = sp.ip, sp.endpoint
	l.dst, l.dstIP = worldEndpoint, e.ext
	l.names = "api.partner-" + strconv.Itoa(int(e.ext.As4()[3])%16) + ".example.com"
	l.tcp(g.ephemeral(), 443, true, false)
	l.node, l.direction, l.point, l.reason = sp.node, "EGRESS", "TO_STACK", "NEW"
}

func (l *line) pods(sp, dp *pod) {
	l.srcIP, l.src = sp.ip, sp.endpoint
	l.dstIP, l.dst = dp.ip, dp.endpoint
}

func (l *line) tcp(sport, dport uint32, syn, reply bool) {
	b := append([]byte(`{"TCP":{"source_port":`), strconv.Itoa(int(sport))...)
	b = append(b, `,"destination_port":`...)
	b = strconv.AppendUint(b, uint64(dport), 10)
	switch {
	case syn:
		b = append(b, `,"flags":{"SYN":true}}}`...)
		l.summary = "TCP Flags: SYN"
	case reply:
		b = append(b, `,"flags":{"PSH":true,"ACK":true}}}`...)
		l.summary = "TCP Flags: ACK, PSH"
	default:
		b = append(b, `,"flags":{"ACK":true}}}`...)
		l.summary = "TCP Flags: ACK"
	}
	l.l4 = b
}

func (l *line) udp(sport, dport uint32) {
	l.l4 = fmt.Appendf(nil, `{"UDP":{"source_port":%d,"destination_port":%d}}`, sport, dport)
}

// render writes the line in the field order `hubble observe -o jsonpb` uses.
func (l *line) render(dst []byte) []byte {
	g := l.g
	dst = append(dst, `{"flow":{"time":"`...)
	dst = l.t.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","uuid":"`...)
	dst = appendUUID(dst, g.r.Uint64(), g.r.Uint64())
	dst = append(dst, `","verdict":"FORWARDED","ethernet":{"source":"9e:3c:1f:42:7a:01","destination":"6a:b2:9c:0e:55:13"},"IP":{"source":"`...)
	dst = l.srcIP.AppendTo(dst)
	dst = append(dst, `","destination":"`...)
	dst = l.dstIP.AppendTo(dst)
	dst = append(dst, `","ipVersion":"IPv4"},"l4":`...)
	dst = append(dst, l.l4...)
	dst = append(dst, `,"source":`...)
	dst = append(dst, l.src...)
	dst = append(dst, `,"destination":`...)
	dst = append(dst, l.dst...)
	typ := l.typ
	if typ == "" {
		typ = "L3_L4"
	}
	dst = append(dst, `,"Type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `",`...)
	dst = append(dst, l.node.labels...)
	if l.names != "" {
		dst = append(dst, `,"destination_names":["`...)
		dst = append(dst, l.names...)
		dst = append(dst, `"]`...)
	}
	if l.l7 != nil {
		dst = append(dst, `,"l7":`...)
		dst = append(dst, l.l7...)
	}
	dst = append(dst, `,"event_type":{"type":`...)
	et := l.eventType
	if et == 0 {
		et = 4
	}
	dst = strconv.AppendInt(dst, int64(et), 10)
	dst = append(dst, '}')
	if l.service != nil {
		dst = append(dst, `,"destination_service":`...)
		dst = append(dst, l.service...)
	}
	dst = append(dst, `,"traffic_direction":"`...)
	dst = append(dst, l.direction...)
	dst = append(dst, '"')
	if !l.unobserved {
		dst = append(dst, `,"trace_observation_point":"`...)
		dst = append(dst, l.point...)
		dst = append(dst, `","trace_reason":"`...)
		dst = append(dst, l.reason...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"is_reply":`...)
	dst = strconv.AppendBool(dst, l.isReply)
	dst = append(dst, `,"Summary":"`...)
	dst = append(dst, l.summary...)
	dst = append(dst, `"},"node_name":"`...)
	dst = append(dst, l.node.name...)
	dst = append(dst, `","time":"`...)
	dst = l.t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

func appendUUID(dst []byte, hi, lo uint64) []byte {
	const hex = "0123456789abcdef"
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	var b [16]byte
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[c>>4], hex[c&0xf])
	}
	return dst
}

// endpointJSON renders a pod as a flow endpoint. Cilium's security labels are the pod's
// labels less the ones it excludes from identities, the namespace's labels, the cluster
// and the service account, sorted.
func endpointJSON(id uint32, w *workload, name string, podLabels map[string]string) []byte {
	var ls []string
	for k, v := range podLabels {
		if k == "pod-template-hash" || k == "statefulset.kubernetes.io/pod-name" {
			continue
		}
		ls = append(ls, "k8s:"+k+"="+v)
	}
	for k, v := range w.ns.labels {
		ls = append(ls, "k8s:io.cilium.k8s.namespace.labels."+k+"="+v)
	}
	ls = append(ls,
		"k8s:io.cilium.k8s.policy.cluster=default",
		"k8s:io.cilium.k8s.policy.serviceaccount="+w.name,
		"k8s:io.kubernetes.pod.namespace="+w.ns.name)
	sort.Strings(ls)
	b := fmt.Appendf(nil, `{"ID":%d,"identity":%d,"namespace":%q,"labels":[`, id, w.identity, w.ns.name)
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, l)
	}
	return fmt.Appendf(b, `],"pod_name":%q,"workloads":[{"name":%q,"kind":%q}]}`, name, w.name, w.kind)
}

func serviceJSON(name, namespace string) []byte {
	return fmt.Appendf(nil, `{"name":%q,"namespace":%q}`, name, namespace)
}
