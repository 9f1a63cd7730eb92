package bench

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Address plan. Pods, nodes, pods the snapshot has not seen yet ("ghosts": created after
// the snapshot was taken) and the internet never overlap, so that a flow's addresses say
// unambiguously what the generator meant.
var (
	podBase   = netip.MustParseAddr("10.1.0.1")   // pod i is podBase + i
	nodeBase  = netip.MustParseAddr("172.16.0.1") // node i is nodeBase + i
	ghostBase = netip.MustParseAddr("10.250.0.1")
	// Documentation ranges (RFC 5737) stand for the internet.
	worldNets = []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("192.0.2.0/24"),
	}
)

// maxPods is what fits between podBase and ghostBase.
const maxPods = 1 << 22

const podsPerNode = 110

// Workload shapes. The words name the application workloads of each namespace; the
// first is the namespace's gateway, exposed by a LoadBalancer.
var (
	words = []string{
		"gateway", "web", "api", "cart", "checkout", "catalog", "search", "auth", "users", "orders",
		"inventory", "notifications", "billing", "ledger", "reports", "redis", "postgres", "kafka",
		"scheduler", "indexer", "recommender", "media", "thumbnails", "mailer", "pricing",
		"shipping", "tracking", "reviews", "memcache", "sessions",
	}
	teams = []string{"shop", "payments", "search", "identity", "media", "ads", "billing", "logistics", "data", "ml", "support", "growth"}
	// datastores run as StatefulSets and listen on their own port.
	datastores = map[string]corev1.ContainerPort{
		"redis":    {Name: "redis", ContainerPort: 6379},
		"postgres": {Name: "postgres", ContainerPort: 5432},
		"kafka":    {Name: "kafka", ContainerPort: 9092},
		"memcache": {Name: "memcache", ContainerPort: 11211},
	}
)

// World is a generated cluster: its Kubernetes objects and the traffic model its flows
// are drawn from. It is read-only once generated; Objects, Snapshot and any number of
// FlowGens may be used concurrently.
type World struct {
	Profile Profile
	Seed    uint64

	objects    *cluster.Objects
	nodes      []node
	namespaces []*namespace
	workloads  []*workload
	pods       []*pod
	dns        *workload // coredns in kube-system
	// edges lists, per flow category, the edges flows are drawn from, in Zipf rank order.
	edges [numCategories][]edge
	cdf   [numCategories][]uint64
}

type node struct {
	name   string
	ip     netip.Addr
	labels []byte // the flow's node_name and node_labels members, rendered once
}

type namespace struct {
	name   string
	team   string
	labels map[string]string
	// workloads of the namespace, the gateway first in application namespaces.
	workloads []*workload
}

type workload struct {
	index  int
	ns     *namespace
	name   string
	kind   string // Deployment or StatefulSet
	tier   string
	labels map[string]string // pod template labels
	// selector is spec.selector; exprSelector marks the ones written as matchExpressions.
	selector     *metav1.LabelSelector
	appKey       string // the label key carrying the name: app or app.kubernetes.io/name
	ports        []corev1.ContainerPort
	port         corev1.ContainerPort // the port clients call
	hash         string               // ReplicaSet pod-template-hash
	identity     uint32               // Cilium security identity in flows
	pods         []*pod
	gateway      bool
	service      []byte      // the flow's destination_service object
	clientsOf    []*workload // callers the intents declare, in declaration order
	calledByName map[string]bool
}

type pod struct {
	w    *workload
	name string
	ip   netip.Addr
	node *node
	id   uint32 // Cilium endpoint ID
	// endpoint is the flow's source/destination object for this pod, rendered once.
	endpoint []byte
}

// Generate builds the world of profile p for seed. The same profile and seed give the
// same world, byte for byte, in manifests and flows. It panics on an invalid profile;
// call Validate first for profiles that do not come from Profiles.
func Generate(p Profile, seed uint64) *World {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	g := &generator{
		w: &World{Profile: p, Seed: seed},
		r: rand.New(rand.NewPCG(seed, 0x5ade_6a7e)),
		o: &cluster.Objects{},
	}
	g.nodes()
	g.namespaces()
	g.workloads()
	g.pods()
	g.services()
	g.intents()
	g.policies()
	g.edges()
	g.w.objects = g.o
	return g.w
}

// Objects returns the cluster's objects, ClientIntents included. They are shared: do not
// modify them.
func (w *World) Objects() *cluster.Objects { return w.objects }

// Snapshot builds the cluster snapshot from the world's objects, as loading the written
// manifests would.
func (w *World) Snapshot() (*cluster.Snapshot, error) { return cluster.Build(w.objects) }

// generator carries the state of one Generate call.
type generator struct {
	w *World
	r *rand.Rand
	o *cluster.Objects
}

func (g *generator) pick(n int) int { return g.r.IntN(n) }

func (g *generator) nodes() {
	n := max(3, (g.w.Profile.Pods+podsPerNode-1)/podsPerNode)
	width := len(strconv.Itoa(n))
	for i := range n {
		name := fmt.Sprintf("node-%0*d", width, i)
		nd := node{name: name, ip: addrAdd(nodeBase, i)}
		nd.labels = fmt.Appendf(nil, `"node_name":%q,"node_labels":["beta.kubernetes.io/arch=amd64","kubernetes.io/hostname=%s","kubernetes.io/os=linux","topology.kubernetes.io/zone=zone-%c"]`,
			name, name, 'a'+rune(i%3))
		g.w.nodes = append(g.w.nodes, nd)
	}
}

func (g *generator) namespaces() {
	add := func(name, team string) *namespace {
		ns := &namespace{name: name, team: team, labels: map[string]string{corev1.LabelMetadataName: name}}
		if team != "" {
			ns.labels["team"] = team
		}
		g.w.namespaces = append(g.w.namespaces, ns)
		return ns
	}
	add("kube-system", "")
	add("monitoring", "platform")
	for i := range g.w.Profile.Namespaces - 2 {
		team := teams[i%len(teams)]
		ns := add(fmt.Sprintf("%s-%d", team, i/len(teams)), team)
		ns.labels["env"] = []string{"prod", "prod", "staging"}[i%3]
	}
	for _, ns := range g.w.namespaces {
		g.o.Namespaces = append(g.o.Namespaces, &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns.name, Labels: ns.labels},
		})
	}
}

func (g *generator) workloads() {
	p := g.w.Profile
	sys, mon := g.w.namespaces[0], g.w.namespaces[1]
	g.w.dns = g.addWorkload(sys, "coredns", "Deployment", "system", corev1.ContainerPort{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP})
	g.w.dns.labels = map[string]string{"k8s-app": "kube-dns"}
	g.w.dns.appKey = "k8s-app"
	g.w.dns.selector = &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}}
	g.w.dns.ports = append(g.w.dns.ports, corev1.ContainerPort{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP})
	g.addWorkload(mon, "prometheus", "StatefulSet", "system", corev1.ContainerPort{Name: "web", ContainerPort: 9090})

	apps := g.w.namespaces[2:]
	remaining := p.Workloads - 2
	for i, ns := range apps {
		n := remaining / len(apps)
		if i < remaining%len(apps) {
			n++
		}
		for j := range n {
			word := words[j%len(words)]
			name := word
			if j >= len(words) {
				name = word + "-" + strconv.Itoa(j/len(words))
			}
			kind, tier := "Deployment", "backend"
			port := corev1.ContainerPort{Name: "http", ContainerPort: 8080}
			switch ds, ok := datastores[word]; {
			case ok:
				kind, tier, port = "StatefulSet", "data", ds
			case j == 0:
				tier, port = "frontend", corev1.ContainerPort{Name: "https", ContainerPort: 8443}
			case word == "web" || word == "api":
				tier = "frontend"
			case j%3 == 0:
				// The same port name on another number: named ports must resolve per pod.
				port.ContainerPort = 9000
			}
			w := g.addWorkload(ns, name, kind, tier, port)
			w.gateway = j == 0
		}
	}
}

func (g *generator) addWorkload(ns *namespace, name, kind, tier string, port corev1.ContainerPort) *workload {
	i := len(g.w.workloads)
	if port.Protocol == "" {
		port.Protocol = corev1.ProtocolTCP
	}
	w := &workload{
		index: i, ns: ns, name: name, kind: kind, tier: tier, port: port,
		ports:        []corev1.ContainerPort{port, {Name: "metrics", ContainerPort: 9102, Protocol: corev1.ProtocolTCP}},
		identity:     uint32(10_000 + i),
		calledByName: map[string]bool{},
	}
	// Mixed label conventions: most workloads use app=, every fifth the recommended
	// app.kubernetes.io labels, and every fourth Deployment selects by expression.
	w.appKey = "app"
	if i%5 == 4 {
		w.appKey = "app.kubernetes.io/name"
	}
	w.labels = map[string]string{w.appKey: name, "tier": tier}
	if ns.team != "" {
		w.labels["team"] = ns.team
	}
	if i%37 == 36 {
		w.labels["legacy"] = "true"
	}
	switch {
	case kind == "Deployment" && i%4 == 3:
		w.selector = &metav1.LabelSelector{
			MatchLabels:      map[string]string{"tier": tier},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: w.appKey, Operator: metav1.LabelSelectorOpIn, Values: []string{name}}},
		}
	default:
		w.selector = &metav1.LabelSelector{MatchLabels: map[string]string{w.appKey: name}}
	}
	if kind == "Deployment" {
		w.hash = g.hash(10)
	}
	ns.workloads = append(ns.workloads, w)
	g.w.workloads = append(g.w.workloads, w)
	return w
}

// hash draws a name suffix from the alphabet Kubernetes uses for generated names.
func (g *generator) hash(n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.pick(len(alphabet))]
	}
	return string(b)
}

// pods spreads the profile's pods over the workloads: an even share each, then replicas
// moved between random pairs so that some workloads are much larger than others.
func (g *generator) pods() {
	ws := g.w.workloads
	replicas := make([]int, len(ws))
	total := g.w.Profile.Pods
	for i := range replicas {
		replicas[i] = total / len(ws)
		if i < total%len(ws) {
			replicas[i]++
		}
	}
	for range len(ws) / 2 {
		from, to := g.pick(len(ws)), g.pick(len(ws))
		if from == to || replicas[from] < 2 {
			continue
		}
		n := 1 + g.pick(replicas[from]-1)
		replicas[from] -= n
		replicas[to] += n
	}
	for i, w := range ws {
		g.controller(w, replicas[i])
		for r := range replicas[i] {
			name := w.name + "-" + strconv.Itoa(r)
			if w.kind == "Deployment" {
				name = w.name + "-" + w.hash + "-" + g.hash(5)
			}
			nd := &g.w.nodes[g.pick(len(g.w.nodes))]
			p := &pod{w: w, name: name, ip: addrAdd(podBase, len(g.w.pods)), node: nd, id: uint32(len(g.w.pods) + 1)}
			w.pods = append(w.pods, p)
			g.w.pods = append(g.w.pods, p)
			g.o.Pods = append(g.o.Pods, g.podObject(p))
			p.endpoint = endpointJSON(p.id, w, name, p.podLabels())
		}
	}
}

// podLabels returns the pod's labels.
func (p *pod) podLabels() map[string]string {
	l := make(map[string]string, len(p.w.labels)+1)
	for k, v := range p.w.labels {
		l[k] = v
	}
	switch p.w.kind {
	case "Deployment":
		l[appsv1.DefaultDeploymentUniqueLabelKey] = p.w.hash
	case "StatefulSet":
		// Per-pod labels give every replica an identity of its own, as they do in
		// Cilium until excluded.
		l[appsv1.StatefulSetPodNameLabel] = p.name
	}
	return l
}

func (g *generator) controller(w *workload, replicas int) {
	n := int32(replicas)
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: w.labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: w.name, Image: "registry.example.com/" + w.ns.team + "/" + w.name + ":1.0.0", Ports: w.ports}}},
	}
	meta := metav1.ObjectMeta{Name: w.name, Namespace: w.ns.name, UID: uid("workload", w.index)}
	switch w.kind {
	case "StatefulSet":
		g.o.StatefulSets = append(g.o.StatefulSets, &appsv1.StatefulSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: meta,
			Spec:       appsv1.StatefulSetSpec{Replicas: &n, Selector: w.selector, Template: tmpl, ServiceName: w.name},
		})
	default:
		g.o.Deployments = append(g.o.Deployments, &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: meta,
			Spec:       appsv1.DeploymentSpec{Replicas: &n, Selector: w.selector, Template: tmpl},
		})
		rsLabels := copyMap(w.labels)
		rsLabels[appsv1.DefaultDeploymentUniqueLabelKey] = w.hash
		rsSel := w.selector.DeepCopy()
		if rsSel.MatchLabels == nil {
			rsSel.MatchLabels = map[string]string{}
		}
		rsSel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = w.hash
		rsTmpl := *tmpl.DeepCopy()
		rsTmpl.Labels = rsLabels
		g.o.ReplicaSets = append(g.o.ReplicaSets, &appsv1.ReplicaSet{
			TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
			ObjectMeta: metav1.ObjectMeta{
				Name: w.name + "-" + w.hash, Namespace: w.ns.name, Labels: rsLabels, UID: uid("replicaset", w.index),
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: w.name, UID: meta.UID, Controller: ptr(true)}},
			},
			Spec: appsv1.ReplicaSetSpec{Replicas: &n, Selector: rsSel, Template: rsTmpl},
		})
	}
}

func (g *generator) podObject(p *pod) *corev1.Pod {
	w := p.w
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: w.name, UID: uid("workload", w.index), Controller: ptr(true)}
	if w.kind == "Deployment" {
		owner = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: w.name + "-" + w.hash, UID: uid("replicaset", w.index), Controller: ptr(true)}
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: p.name, Namespace: w.ns.name, Labels: p.podLabels(), OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: corev1.PodSpec{
			NodeName:   p.node.name,
			Containers: []corev1.Container{{Name: w.name, Image: "registry.example.com/" + w.ns.team + "/" + w.name + ":1.0.0", Ports: w.ports}},
		},
		Status: corev1.PodStatus{
			Phase:  corev1.PodRunning,
			HostIP: p.node.ip.String(),
			PodIP:  p.ip.String(),
			PodIPs: []corev1.PodIP{{IP: p.ip.String()}},
		},
	}
}

// services gives every workload a ClusterIP Service named after it, and every gateway a
// LoadBalancer, which the compiler turns into an external allowance.
func (g *generator) services() {
	for _, w := range g.w.workloads {
		svc := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: w.ns.name},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{w.appKey: w.labels[w.appKey]},
				Ports: []corev1.ServicePort{{
					Name: w.port.Name, Protocol: w.port.Protocol, Port: servicePort(w), TargetPort: intstr.FromString(w.port.Name),
				}},
			},
		}
		if w == g.w.dns {
			svc.Name = "kube-dns"
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromString("dns-tcp")})
		}
		if w.gateway {
			svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		}
		w.service = serviceJSON(svc.Name, svc.Namespace)
		g.o.Services = append(g.o.Services, svc)
	}
}

func servicePort(w *workload) int32 {
	switch {
	case w.gateway:
		return 443
	case w.port.Name == "http":
		return 80
	}
	return w.port.ContainerPort
}

// target is one ClientIntents target as the generator chose it.
type target struct {
	form   string // kubernetes, service, kafka, http or internet
	server *workload
}

// intents spreads the profile's targets over the application workloads as clients:
// mostly servers of the same namespace, a quarter in other namespaces, a few Services,
// Kafka and HTTP targets, and internet targets that only egress enforcement reads.
func (g *generator) intents() {
	var clients []*workload
	for _, ns := range g.w.namespaces[2:] {
		clients = append(clients, ns.workloads...)
	}
	total := g.w.Profile.IntentTargets
	for i, c := range clients {
		n := total / len(clients)
		if i < total%len(clients) {
			n++
		}
		if n == 0 {
			continue
		}
		var ts []target
		for range n {
			ts = append(ts, g.target(c))
		}
		g.o.ClientIntents = append(g.o.ClientIntents, g.clientIntents(c, ts))
	}
}

func (g *generator) target(c *workload) target {
	forms := []string{"kubernetes", "kubernetes", "kubernetes", "kubernetes", "kubernetes", "kubernetes", "kubernetes", "kubernetes",
		"kubernetes", "kubernetes", "kubernetes", "kubernetes", "service", "service", "service", "kafka", "http", "internet"}
	form := forms[g.pick(len(forms))]
	if form == "internet" {
		return target{form: form}
	}
	// A few tries for a server the client does not call yet; a repeat is a valid
	// intent too, just a redundant one.
	var srv *workload
	for range 4 {
		ns := c.ns
		if g.pick(4) == 0 {
			ns = g.w.namespaces[2+g.pick(len(g.w.namespaces)-2)]
		}
		srv = ns.workloads[g.pick(len(ns.workloads))]
		if srv != c && !srv.calledByName[c.ns.name+"/"+c.name] {
			break
		}
	}
	if srv == c {
		return target{form: "internet"}
	}
	srv.calledByName[c.ns.name+"/"+c.name] = true
	srv.clientsOf = append(srv.clientsOf, c)
	return target{form: form, server: srv}
}

// clientIntents renders a client's targets, in v2beta1 or (one in five) the v1alpha3
// shape, which has no internet or Kafka targets written the v2 way.
func (g *generator) clientIntents(c *workload, ts []target) *unstructured.Unstructured {
	v1 := c.index%5 == 0
	var list []any
	for _, t := range ts {
		name := ""
		if t.server != nil {
			name = t.server.name
			if t.server.ns != c.ns {
				name += "." + t.server.ns.name
			}
		}
		if v1 {
			switch t.form {
			case "internet":
				list = append(list, map[string]any{"type": "internet", "internet": map[string]any{"domains": []any{"api.example.com"}, "ports": []any{int64(443)}}})
			case "service":
				list = append(list, map[string]any{"name": "svc:" + name})
			case "kafka":
				list = append(list, map[string]any{"name": name, "type": "kafka", "kafkaTopics": []any{map[string]any{"name": "orders", "operations": []any{"produce"}}}})
			case "http":
				list = append(list, map[string]any{"name": name, "type": "http", "HTTPResources": []any{map[string]any{"path": "/v1/orders", "methods": []any{"GET"}}}})
			default:
				list = append(list, map[string]any{"name": name})
			}
			continue
		}
		switch t.form {
		case "internet":
			list = append(list, map[string]any{"internet": map[string]any{"domains": []any{"api.example.com"}, "ports": []any{int64(443)}}})
		case "service":
			list = append(list, map[string]any{"service": map[string]any{"name": name}})
		case "kafka":
			list = append(list, map[string]any{"kafka": map[string]any{"name": name, "topics": []any{map[string]any{"name": "orders", "operations": []any{"produce"}}}}})
		case "http":
			list = append(list, map[string]any{"kubernetes": map[string]any{"name": name, "kind": t.server.kind, "http": []any{map[string]any{"path": "/v1/orders", "methods": []any{"GET"}}}}})
		default:
			k := map[string]any{"name": name}
			if g.pick(2) == 0 {
				k["kind"] = t.server.kind
			}
			list = append(list, map[string]any{"kubernetes": k})
		}
	}
	spec := map[string]any{"workload": map[string]any{"name": c.name, "kind": c.kind}, "targets": list}
	apiVersion := "k8s.otterize.com/v2beta1"
	if v1 {
		spec = map[string]any{"service": map[string]any{"name": c.name}, "calls": list}
		apiVersion = "k8s.otterize.com/v1alpha3"
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       "ClientIntents",
		"metadata":   map[string]any{"name": c.name, "namespace": c.ns.name},
		"spec":       spec,
	}}
}

// policies writes the cluster's existing NetworkPolicies, cycling through shapes that
// use every selector and port form: per-server allow lists with matchExpressions and
// named ports, namespace isolation by team, egress lockdowns with ipBlocks, DNS and
// port ranges, and a deny-all for legacy pods.
func (g *generator) policies() {
	apps := g.w.namespaces[2:]
	for i := range g.w.Profile.Policies {
		ns := apps[i%len(apps)]
		round := i / len(apps)
		var np *networkingv1.NetworkPolicy
		switch round % 5 {
		case 0:
			np = g.serverAllowList(ns, round)
		case 1:
			np = egressLockdown(ns, round)
		case 2:
			np = gatewayIngress(ns, round)
		case 3:
			np = teamIsolation(ns, round)
		default:
			np = legacyDeny(ns, round)
		}
		g.o.NetworkPolicies = append(g.o.NetworkPolicies, np)
	}
}

func policyObject(ns *namespace, name string, round int) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + strconv.Itoa(round), Namespace: ns.name},
	}
}

// serverAllowList admits a server's declared callers on its named port, and monitoring
// on the metrics port: the policy a team would have written by hand.
func (g *generator) serverAllowList(ns *namespace, round int) *networkingv1.NetworkPolicy {
	srv := ns.workloads[(round/5)%len(ns.workloads)]
	np := policyObject(ns, "allow-"+srv.name, round)
	np.Spec.PodSelector = *srv.selector.DeepCopy()
	var local []string
	var peers []networkingv1.NetworkPolicyPeer
	for _, c := range srv.clientsOf {
		if c.ns == ns {
			if c.appKey == "app" {
				local = append(local, c.name)
			} else {
				peers = append(peers, networkingv1.NetworkPolicyPeer{PodSelector: c.selector.DeepCopy()})
			}
			continue
		}
		peers = append(peers, networkingv1.NetworkPolicyPeer{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: c.ns.name}},
			PodSelector:       c.selector.DeepCopy(),
		})
	}
	if len(local) > 0 {
		sort.Strings(local)
		peers = append([]networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: dedupeSorted(local)},
		}}}}, peers...)
	}
	if len(peers) > 0 {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{
			From: peers, Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromString(srv.port.Name))}},
		})
	}
	np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{
		From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "monitoring"}}}},
		Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromString("metrics"))}},
	})
	return np
}

// egressLockdown confines the namespace's frontends to DNS, HTTPS on the internet, their
// own namespace and their team's namespaces.
func egressLockdown(ns *namespace, round int) *networkingv1.NetworkPolicy {
	np := policyObject(ns, "egress-frontends", round)
	np.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"frontend"}}}}
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{
		{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "kube-system"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
			}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: ptr(intstr.FromInt32(53))}, {Protocol: &tcp, Port: ptr(intstr.FromInt32(53))}},
		},
		{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "172.16.0.0/12"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(443))}},
		},
		{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
		{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": ns.team}}}}},
	}
	return np
}

// gatewayIngress opens the gateway to the internet on its port and a NodePort range,
// and to its own namespace.
func gatewayIngress(ns *namespace, round int) *networkingv1.NetworkPolicy {
	gw := ns.workloads[0]
	np := policyObject(ns, "gateway-ingress", round)
	np.Spec.PodSelector = *gw.selector.DeepCopy()
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{
		{
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}}},
			Ports: []networkingv1.NetworkPolicyPort{
				{Port: ptr(intstr.FromString(gw.port.Name))},
				{Port: ptr(intstr.FromInt32(30000)), EndPort: ptr(int32(32767))},
			},
		},
		{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
		{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: nodeBase.String() + "/16"}}}},
	}
	return np
}

// teamIsolation admits, to everything but the data tier, the pods of the team's
// namespaces and monitoring.
func teamIsolation(ns *namespace, round int) *networkingv1.NetworkPolicy {
	np := policyObject(ns, "team-isolation", round)
	np.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"data", "frontend"}},
		{Key: "team", Operator: metav1.LabelSelectorOpExists},
	}}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{ns.team, "platform"}}}}},
		},
	}}
	return np
}

// legacyDeny isolates pods labelled legacy for ingress and admits nothing.
func legacyDeny(ns *namespace, round int) *networkingv1.NetworkPolicy {
	np := policyObject(ns, "deny-legacy", round)
	np.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "legacy", Operator: metav1.LabelSelectorOpExists},
		{Key: "canary", Operator: metav1.LabelSelectorOpDoesNotExist},
	}}
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	return np
}

func uid(kind string, i int) types.UID { return types.UID(fmt.Sprintf("%s-%08d", kind, i)) }

func ptr[T any](v T) *T { return &v }

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func dedupeSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// addrAdd returns a + n for an IPv4 address.
func addrAdd(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
