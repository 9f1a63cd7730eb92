package suggest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/suggest"
)

// The round trip: for random small clusters and flows, writing the suggestions to a
// directory and re-simulating with them overlaid (what `simulate --intents DIR` does)
// leaves no uncovered edge between workloads; what remains is exactly what the notes
// say ClientIntents cannot cover. Nothing that was covered before is dropped after, no
// existing target is lost, and the enforced namespaces stay the same.
func TestRoundTrip(t *testing.T) {
	const iterations = 80
	var uncoveredBefore, notes, extended, created int
	for seed := uint64(1); seed <= iterations; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			w := newWorld(rand.New(rand.NewPCG(seed, 0x5eed)))
			st := roundTrip(t, w)
			uncoveredBefore += st.uncovered
			notes += st.notes
			extended += st.extended
			created += st.created
		})
	}
	t.Logf("%d worlds: %d uncovered edges, %d notes, %d extended and %d new objects", iterations, uncoveredBefore, notes, extended, created)
	// The generator must exercise the interesting paths, or the property says little.
	if uncoveredBefore < iterations || notes == 0 || extended == 0 || created == 0 {
		t.Errorf("weak generator: %d uncovered edges, %d notes, %d extended and %d new objects over %d worlds",
			uncoveredBefore, notes, extended, created, iterations)
	}
}

type roundTripStats struct{ uncovered, notes, extended, created int }

func roundTrip(t *testing.T, w *world) roundTripStats {
	t.Helper()
	objs := w.objects()
	snap, err := cluster.Build(objs)
	if err != nil {
		t.Fatalf("generated cluster does not build: %v", err)
	}
	opts := w.simOptions
	rep := simulateAll(t, snap, &opts, bytes.NewReader(w.flows()))
	if rep.Flows.Evaluated != int64(len(w.conns)) {
		t.Fatalf("evaluated %d of %d generated flows: %+v", rep.Flows.Evaluated, len(w.conns), rep.Flows)
	}
	res, err := suggest.Suggest(rep, suggest.FromObjects(objs), suggest.Options{APIVersion: w.apiVersion})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Notes {
		if n.Kind == suggest.NoteAlreadyDeclared {
			t.Errorf("generated intents name every client and server correctly, yet: %s -> %s: %s", n.Edge.Source, n.Edge.Destination, n.Detail)
		}
	}

	// Apply as `simulate --intents DIR` does: through the files.
	dir := t.TempDir()
	if err := res.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	applied := objs
	if len(res.Intents) > 0 {
		written, err := cluster.LoadObjects(dir)
		if err != nil {
			t.Fatalf("suggestions do not load: %v", err)
		}
		applied = overlay(objs, written.ClientIntents)
	}
	snap2, err := cluster.Build(applied)
	if err != nil {
		t.Fatalf("cluster with suggestions does not build: %v", err)
	}
	checkKeptTargets(t, objs, applied)
	if opts.Compile.Namespaces == nil {
		if a, b := compile.TargetedNamespaces(snap), compile.TargetedNamespaces(snap2); !slices.Equal(a, b) {
			t.Fatalf("suggestions changed the enforced namespaces from %v to %v", a, b)
		}
	}
	rep2 := simulateAll(t, snap2, &opts, bytes.NewReader(w.flows()))

	noted := map[string]bool{}
	for _, n := range res.Notes {
		noted[suggest.EdgeKey(n.Edge)] = true
	}
	var left []string
	for _, e := range rep2.Uncovered {
		if !noted[suggest.EdgeKey(e)] {
			left = append(left, fmt.Sprintf("%s -> %s %s/%d: %s", e.Source, e.Destination, e.Protocol, e.Port, e.Reason))
		}
	}
	if len(left) > 0 {
		y := new(bytes.Buffer)
		_ = res.WriteStream(y)
		t.Errorf("uncovered after applying the suggestions:\n  %s\nsuggestions:\n%s", strings.Join(left, "\n  "), y)
	}
	if len(rep2.Uncovered) != len(res.Notes) {
		t.Errorf("%d uncovered edges remain, %d notes: every noted edge should remain uncovered", len(rep2.Uncovered), len(res.Notes))
	}
	before := map[string]simulate.EdgeStatus{}
	for _, e := range rep.Edges {
		before[suggest.EdgeKey(e)] = e.Status
	}
	for _, e := range rep2.Edges {
		if was := before[suggest.EdgeKey(e)]; was != simulate.StatusWouldDrop && e.Status == simulate.StatusWouldDrop {
			t.Errorf("%s -> %s %s/%d was %s, would drop after the suggestions", e.Source, e.Destination, e.Protocol, e.Port, was)
		}
	}
	st := roundTripStats{uncovered: len(rep.Uncovered), notes: len(res.Notes)}
	for _, s := range res.Intents {
		if s.Extends != "" {
			st.extended++
		} else {
			st.created++
		}
	}
	return st
}

// overlay replaces ClientIntents by namespace/name, as simulate --intents does.
func overlay(base *cluster.Objects, extra []*unstructured.Unstructured) *cluster.Objects {
	key := func(u *unstructured.Unstructured) string { return u.GetNamespace() + "/" + u.GetName() }
	byKey := map[string]*unstructured.Unstructured{}
	for _, u := range base.ClientIntents {
		byKey[key(u)] = u
	}
	for _, u := range extra {
		byKey[key(u)] = u
	}
	out := *base
	out.ClientIntents = nil
	for _, u := range byKey {
		out.ClientIntents = append(out.ClientIntents, u)
	}
	sort.Slice(out.ClientIntents, func(i, j int) bool { return key(out.ClientIntents[i]) < key(out.ClientIntents[j]) })
	return &out
}

// checkKeptTargets: every target of every original object is still declared, L7
// details included.
func checkKeptTargets(t *testing.T, before, after *cluster.Objects) {
	t.Helper()
	now := map[string]*unstructured.Unstructured{}
	for _, u := range after.ClientIntents {
		now[u.GetNamespace()+"/"+u.GetName()] = u
	}
	for _, u := range before.ClientIntents {
		k := u.GetNamespace() + "/" + u.GetName()
		v := now[k]
		if v == nil {
			t.Errorf("ClientIntents %s disappeared", k)
			continue
		}
		old, newer := entries(t, u), entries(t, v)
		for _, e := range old {
			if !slices.Contains(newer, e) {
				t.Errorf("ClientIntents %s lost target %s", k, e)
			}
		}
	}
}

func entries(t *testing.T, u *unstructured.Unstructured) []string {
	t.Helper()
	var list []any
	for _, k := range []string{"targets", "calls"} {
		if l, ok, _ := unstructured.NestedSlice(u.Object, "spec", k); ok {
			list = l
		}
	}
	out := make([]string, len(list))
	for i, e := range list {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

// world is a random small cluster and its traffic.
type world struct {
	r          *rand.Rand
	namespaces []string
	workloads  []*genWorkload
	nodes      []genNode
	intents    []*unstructured.Unstructured
	policies   []*networkingv1.NetworkPolicy
	services   []*corev1.Service
	conns      []genConn
	simOptions simulate.Options
	apiVersion string
}

type genNode struct{ name, ip string }

type genWorkload struct {
	ns, name, kind string // kind: Deployment, StatefulSet, Pod
	pods           []genPod
	service        bool
}

type genPod struct {
	name, ip string
	node     genNode
}

type genConn struct {
	src, dst hubbleEP
	proto    string
	port     uint32
}

type hubbleEP struct {
	ns, pod, ip string
	labels      []string
	node        string // the node the endpoint is on, for pods and hosts
}

var (
	namespacePool = []string{"alpha", "beta", "gamma"}
	namePool      = []string{"api", "web", "db", "cache", "queue", "worker", "auth"}
	portPool      = []uint32{80, 443, 5432, 6379, 8080}
)

func newWorld(r *rand.Rand) *world {
	w := &world{r: r}
	w.namespaces = namespacePool[:1+r.IntN(len(namespacePool))]
	for i := 0; i < 2; i++ {
		w.nodes = append(w.nodes, genNode{name: fmt.Sprintf("node-%d", i), ip: fmt.Sprintf("10.0.0.%d", 10+i)})
	}
	ip := 10
	for _, ns := range w.namespaces {
		names := append([]string(nil), namePool...)
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		for _, n := range names[:2+r.IntN(3)] {
			wl := &genWorkload{ns: ns, name: n, kind: []string{"Deployment", "StatefulSet", "Pod"}[r.IntN(3)], service: r.IntN(2) == 0}
			replicas := 1
			if wl.kind != "Pod" {
				replicas += r.IntN(2)
			}
			for i := 0; i < replicas; i++ {
				name := n
				if wl.kind != "Pod" {
					name = fmt.Sprintf("%s-%d", n, i)
				}
				ip++
				wl.pods = append(wl.pods, genPod{name: name, ip: fmt.Sprintf("10.244.%d.%d", ip/200, ip%200+1), node: w.nodes[r.IntN(len(w.nodes))]})
			}
			w.workloads = append(w.workloads, wl)
		}
	}
	w.genIntents()
	w.genPolicies()
	w.genConns()
	w.genOptions()
	return w
}

func (w *world) pick() *genWorkload { return w.workloads[w.r.IntN(len(w.workloads))] }

// genIntents writes ClientIntents for some clients, in the versions teams use, some
// with L7 details and Service targets, so that merging has something to keep.
func (w *world) genIntents() {
	for _, c := range w.workloads {
		if w.r.IntN(3) == 0 {
			continue
		}
		version := []string{"v1alpha2", "v1alpha3", "v2beta1"}[w.r.IntN(3)]
		v2 := strings.HasPrefix(version, "v2")
		var targets []any
		for i := 0; i < 1+w.r.IntN(2); i++ {
			s := w.pick()
			name := s.name
			if s.ns != c.ns {
				name += "." + s.ns
			}
			switch {
			case s.service && w.r.IntN(3) == 0:
				if v2 {
					targets = append(targets, map[string]any{"service": map[string]any{"name": name}})
				} else {
					targets = append(targets, map[string]any{"name": "svc:" + name})
				}
			case v2:
				k := map[string]any{"name": name, "kind": s.kind}
				if w.r.IntN(2) == 0 {
					k["http"] = []any{map[string]any{"path": "/v1", "methods": []any{"GET"}}}
				}
				targets = append(targets, map[string]any{"kubernetes": k})
			default:
				call := map[string]any{"name": name}
				if version != "v1alpha2" {
					call["kind"] = s.kind
				}
				if w.r.IntN(2) == 0 {
					call["type"] = "kafka"
					call["topics"] = []any{map[string]any{"name": "orders", "operations": []any{"produce"}}}
				}
				targets = append(targets, call)
			}
		}
		client := map[string]any{"name": c.name, "kind": c.kind}
		spec := map[string]any{}
		if v2 {
			spec["workload"], spec["targets"] = client, targets
		} else {
			spec["service"], spec["calls"] = client, targets
		}
		objName := c.name
		if w.r.IntN(4) == 0 {
			objName += "-intents"
		}
		w.intents = append(w.intents, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": intents.Group + "/" + version,
			"kind":       "ClientIntents",
			"metadata":   map[string]any{"name": objName, "namespace": c.ns},
			"spec":       spec,
		}})
	}
	// A ClientIntents of another client that holds a new client's name: the suggestion
	// must not take it over.
	if c := w.pick(); w.r.IntN(3) == 0 {
		w.intents = append(w.intents, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": intents.Group + "/v2beta1",
			"kind":       "ClientIntents",
			"metadata":   map[string]any{"name": c.name, "namespace": c.ns},
			"spec":       map[string]any{"workload": map[string]any{"name": "someone-else"}, "targets": []any{}},
		}})
	}
	// Keep the first object per namespace/name.
	seen := map[string]bool{}
	kept := w.intents[:0]
	for _, u := range w.intents {
		k := u.GetNamespace() + "/" + u.GetName()
		if !seen[k] {
			seen[k] = true
			kept = append(kept, u)
		}
	}
	w.intents = kept
}

// genPolicies: sometimes a namespace already admits everything from one other
// namespace, which enforcement keeps.
func (w *world) genPolicies() {
	if w.r.IntN(3) != 0 {
		return
	}
	ns := w.namespaces[w.r.IntN(len(w.namespaces))]
	from := w.namespaces[w.r.IntN(len(w.namespaces))]
	w.policies = append(w.policies, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "from-" + from},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: from}},
			}}}},
		},
	})
}

func podEP(wl *genWorkload, p genPod) hubbleEP {
	return hubbleEP{ns: wl.ns, pod: p.name, ip: p.ip, node: p.node.name, labels: []string{"k8s:app=" + wl.name}}
}

func (w *world) genConns() {
	n := 5 + w.r.IntN(20)
	for i := 0; i < n; i++ {
		s, d := w.pick(), w.pick()
		sp, dp := s.pods[w.r.IntN(len(s.pods))], d.pods[w.r.IntN(len(d.pods))]
		proto := "TCP"
		if w.r.IntN(5) == 0 {
			proto = "UDP"
		}
		c := genConn{src: podEP(s, sp), dst: podEP(d, dp), proto: proto, port: portPool[w.r.IntN(len(portPool))]}
		switch w.r.IntN(10) {
		case 0: // a caller from the internet
			c.src = hubbleEP{ip: fmt.Sprintf("198.51.100.%d", 1+w.r.IntN(200)), labels: []string{"reserved:world"}}
		case 1: // egress to the internet
			c.dst = hubbleEP{ip: fmt.Sprintf("203.0.%d.%d", 113+w.r.IntN(2), 1+w.r.IntN(200)), labels: []string{"reserved:world"}}
		case 2: // a probe from the pod's own node (always admitted) or another node's host network
			node := dp.node
			label := "reserved:host"
			if w.r.IntN(2) == 0 {
				node = w.nodes[(slices.Index(w.nodes, dp.node)+1)%len(w.nodes)]
				label = "reserved:remote-node"
			}
			c.src = hubbleEP{ip: node.ip, node: node.name, labels: []string{label}}
		case 3: // egress to a node (the kubelet's port)
			node := w.nodes[w.r.IntN(len(w.nodes))]
			c.dst, c.port = hubbleEP{ip: node.ip, node: node.name, labels: []string{"reserved:remote-node"}}, 10250
		}
		w.conns = append(w.conns, c)
	}
}

func (w *world) genOptions() {
	o := simulate.DefaultOptions()
	o.Compile.External = compile.ExternalModes[w.r.IntN(len(compile.ExternalModes))]
	if w.r.IntN(2) == 0 {
		// An explicit enforced set, the only way to keep it fixed once egress suggestions
		// name servers in namespaces nobody targeted before.
		for _, ns := range w.namespaces {
			if w.r.IntN(3) > 0 {
				o.Compile.Namespaces = append(o.Compile.Namespaces, ns)
			}
		}
		if len(o.Compile.Namespaces) == 0 {
			o.Compile.Namespaces = []string{w.namespaces[0]}
		}
		o.Compile.Egress = w.r.IntN(2) == 0
	}
	w.simOptions = o
	w.apiVersion = suggest.APIVersions[w.r.IntN(len(suggest.APIVersions))]
}

// objects renders the world as the objects a loader would return.
func (w *world) objects() *cluster.Objects {
	o := &cluster.Objects{}
	for _, ns := range w.namespaces {
		o.Namespaces = append(o.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	for _, wl := range w.workloads {
		lbls := map[string]string{"app": wl.name}
		tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		sel := &metav1.LabelSelector{MatchLabels: lbls}
		var owner []metav1.OwnerReference
		switch wl.kind {
		case "Deployment":
			o.Deployments = append(o.Deployments, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: wl.ns, Name: wl.name},
				Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}})
			rs := wl.name + "-5d9f8b7c4"
			o.ReplicaSets = append(o.ReplicaSets, &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Namespace: wl.ns, Name: rs, OwnerReferences: []metav1.OwnerReference{
					{APIVersion: "apps/v1", Kind: "Deployment", Name: wl.name, Controller: ptr(true)}}},
				Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tmpl}})
			owner = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, Controller: ptr(true)}}
		case "StatefulSet":
			o.StatefulSets = append(o.StatefulSets, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: wl.ns, Name: wl.name},
				Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}})
			owner = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: wl.name, Controller: ptr(true)}}
		}
		for _, p := range wl.pods {
			o.Pods = append(o.Pods, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: wl.ns, Name: p.name, Labels: lbls, OwnerReferences: owner},
				Spec:       corev1.PodSpec{NodeName: p.node.name, Containers: []corev1.Container{{Name: "c", Image: "i"}}},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, HostIP: p.node.ip, PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}}},
			})
		}
		if wl.service {
			o.Services = append(o.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: wl.ns, Name: wl.name},
				Spec: corev1.ServiceSpec{Selector: lbls, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}})
		}
	}
	o.NetworkPolicies = w.policies
	o.ClientIntents = w.intents
	return o
}

// flows renders the connections as `hubble observe -o jsonpb` lines.
func (w *world) flows() []byte {
	var b bytes.Buffer
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i, c := range w.conns {
		at := start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano)
		node, dir := c.dst.node, "INGRESS"
		if c.dst.pod == "" {
			node, dir = c.src.node, "EGRESS"
		}
		l4 := map[string]any{"UDP": map[string]any{"source_port": 40000 + i, "destination_port": c.port}}
		if c.proto == "TCP" {
			l4 = map[string]any{"TCP": map[string]any{"source_port": 40000 + i, "destination_port": c.port, "flags": map[string]any{"SYN": true}}}
		}
		version := "IPv4"
		if netip.MustParseAddr(c.src.ip).Is6() {
			version = "IPv6"
		}
		line := map[string]any{
			"flow": map[string]any{
				"time": at, "verdict": "FORWARDED", "Type": "L3_L4", "node_name": node,
				"IP":                map[string]any{"source": c.src.ip, "destination": c.dst.ip, "ipVersion": version},
				"l4":                l4,
				"source":            endpointJSON(c.src),
				"destination":       endpointJSON(c.dst),
				"traffic_direction": dir,
				"is_reply":          false,
			},
			"node_name": node, "time": at,
		}
		raw, err := json.Marshal(line)
		if err != nil {
			panic(err) // maps of strings and numbers
		}
		// Every line must parse as Hubble's: the generator is wrong otherwise.
		if ev, ok := flows.ParseLine(raw); !ok || ev.Kind != flows.KindFlow {
			panic(fmt.Sprintf("generated line does not parse as a flow: %s: %s %s", raw, ev.Reason, ev.Detail))
		}
		b.Write(raw)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func endpointJSON(e hubbleEP) map[string]any {
	m := map[string]any{"labels": e.labels}
	if e.pod != "" {
		m["namespace"], m["pod_name"] = e.ns, e.pod
	}
	return m
}

func ptr[T any](v T) *T { return &v }
