// Package cluster is the in-memory model of a cluster snapshot: the namespaces, pods,
// workloads, services, ingresses, NetworkPolicies and ClientIntents that the evaluator
// and the compiler read. Objects enter through one door, Build, whether they come from
// manifest files (Load) or from informers, so every consumer sees the same model.
package cluster

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// WorkloadID is a workload identity as Otterize resolves it: the pod's
// intents.otterize.com/workload-name annotation, else its root controller, else the pod
// itself.
type WorkloadID struct {
	Namespace string `json:"namespace"`
	Name      string `json:"workload"`
	Kind      string `json:"kind"`
}

func (w WorkloadID) String() string {
	if w.Kind == "" {
		return w.Namespace + "/" + w.Name
	}
	return w.Namespace + "/" + w.Name + " (" + w.Kind + ")"
}

// IsZero reports whether the identity is unset.
func (w WorkloadID) IsZero() bool { return w.Name == "" }

// Namespace is a namespace and its labels. Namespaces referenced by objects but absent
// from the snapshot are synthesized with only the kubernetes.io/metadata.name label,
// which the API server sets on every namespace.
type Namespace struct {
	Name        string
	Labels      labels.Set
	Synthesized bool
}

// ContainerPort is a port a pod's containers declare; named NetworkPolicy ports resolve
// against these on the destination pod.
type ContainerPort struct {
	Name     string          `json:"name,omitempty"`
	Port     int32           `json:"port"`
	Protocol corev1.Protocol `json:"protocol"`
}

// Pod is a pod as the policy engine sees it.
type Pod struct {
	Namespace   string
	Name        string
	Labels      labels.Set
	IPs         []netip.Addr
	HostIP      netip.Addr // the node's IP, when known
	NodeName    string
	HostNetwork bool
	Ports       []ContainerPort
	Workload    WorkloadID
	// Selector is the label selector of the pod's root controller (Deployment.spec.selector
	// and the like); nil for bare pods and pods that take their identity from the
	// workload-name annotation. The compiler uses it to select exactly the identity's pods.
	Selector *metav1.LabelSelector
	// Synthesized pods come from a workload's pod template because the snapshot had no
	// pods for it; they have no IPs.
	Synthesized bool
	// Origin says where the object was read (file and document), for messages.
	Origin string
}

// Key is namespace/name.
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// Same reports whether p and q are the same pod in every field. Snapshots rebuilt from
// informers hold new objects for unchanged pods, and updates compare every pod of a large
// cluster this way: reflect.DeepEqual was most of the cost of applying one pod event.
// TestPodSameComparesEveryField fails when a field is added and not compared here. (Not
// named Equal: go-cmp would use it in place of the options a test gives.)
func (p *Pod) Same(q *Pod) bool {
	if p == q {
		return true
	}
	if p == nil || q == nil {
		return false
	}
	return p.Namespace == q.Namespace && p.Name == q.Name && p.HostIP == q.HostIP && p.NodeName == q.NodeName &&
		p.HostNetwork == q.HostNetwork && p.Workload == q.Workload && p.Synthesized == q.Synthesized && p.Origin == q.Origin &&
		maps.Equal(p.Labels, q.Labels) && (p.Labels == nil) == (q.Labels == nil) &&
		slices.Equal(p.IPs, q.IPs) && (p.IPs == nil) == (q.IPs == nil) &&
		slices.Equal(p.Ports, q.Ports) && (p.Ports == nil) == (q.Ports == nil) &&
		equalSelectors(p.Selector, q.Selector)
}

// ComparePodKeys orders pods as their keys (namespace/name) order, as Index sorts a
// snapshot's pods, without building the keys.
func ComparePodKeys(a, b *Pod) int {
	if a.Namespace == b.Namespace {
		return strings.Compare(a.Name, b.Name)
	}
	an, bn := a.Namespace, b.Namespace
	n := min(len(an), len(bn))
	if c := strings.Compare(an[:n], bn[:n]); c != 0 {
		return c
	}
	// One namespace begins the other: the shorter key goes on with '/', the longer with
	// its namespace's next byte, which a valid name never makes '/'.
	switch {
	case len(an) < len(bn) && bn[n] != '/':
		return cmp.Compare('/', bn[n])
	case len(bn) < len(an) && an[n] != '/':
		return cmp.Compare(an[n], '/')
	}
	return strings.Compare(a.Key(), b.Key())
}

// PodsIn returns the pods of namespace in pods, which are sorted by key (as a
// snapshot's are): in key order a namespace's pods are contiguous, from "namespace/" on.
func PodsIn(pods []*Pod, namespace string) []*Pod {
	i, _ := slices.BinarySearchFunc(pods, &Pod{Namespace: namespace}, ComparePodKeys)
	j := i
	for j < len(pods) && pods[j].Namespace == namespace {
		j++
	}
	return pods[i:j]
}

// DiffPods compares two pod lists by namespace/name: changed is called with each pod of
// next that prev holds no Same pod for (new or changed), gone with each pod of prev
// that next does not hold. Lists sorted by key, as snapshots keep them, are merged in
// one pass; others are diffed through a map. It reports whether both were sorted.
func DiffPods(prev, next []*Pod, changed, gone func(*Pod)) (sorted bool) {
	if len(prev) == len(next) && (len(prev) == 0 || &prev[0] == &next[0]) {
		return slices.IsSortedFunc(prev, ComparePodKeys) // one list: nothing changed
	}
	if !slices.IsSortedFunc(prev, ComparePodKeys) || !slices.IsSortedFunc(next, ComparePodKeys) {
		diffPodsByMap(prev, next, changed, gone)
		return false
	}
	i, j := 0, 0
	for i < len(prev) && j < len(next) {
		switch c := ComparePodKeys(prev[i], next[j]); {
		case c < 0:
			gone(prev[i])
			i++
		case c > 0:
			changed(next[j])
			j++
		default:
			if !prev[i].Same(next[j]) {
				changed(next[j])
			}
			i++
			j++
		}
	}
	for ; i < len(prev); i++ {
		gone(prev[i])
	}
	for ; j < len(next); j++ {
		changed(next[j])
	}
	return true
}

func diffPodsByMap(prev, next []*Pod, changed, gone func(*Pod)) {
	type key struct{ namespace, name string }
	old := make(map[key]*Pod, len(prev))
	for _, p := range prev {
		old[key{p.Namespace, p.Name}] = p
	}
	for _, p := range next {
		k := key{p.Namespace, p.Name}
		q, ok := old[k]
		delete(old, k)
		if !ok || !q.Same(p) {
			changed(p)
		}
	}
	for _, p := range prev {
		if q, ok := old[key{p.Namespace, p.Name}]; ok && q == p {
			gone(p)
		}
	}
}

// equalSelectors is reflect.DeepEqual for label selectors.
func equalSelectors(a, b *metav1.LabelSelector) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || (a.MatchLabels == nil) != (b.MatchLabels == nil) || (a.MatchExpressions == nil) != (b.MatchExpressions == nil) {
		return false
	}
	return maps.Equal(a.MatchLabels, b.MatchLabels) &&
		slices.EqualFunc(a.MatchExpressions, b.MatchExpressions, func(x, y metav1.LabelSelectorRequirement) bool {
			return x.Key == y.Key && x.Operator == y.Operator && slices.Equal(x.Values, y.Values) && (x.Values == nil) == (y.Values == nil)
		})
}

// Workload is a controller at the root of an ownership chain (or a bare pod's identity).
type Workload struct {
	ID          WorkloadID
	Selector    *metav1.LabelSelector // spec.selector, or the template labels when none
	Template    labels.Set            // pod template labels
	Ports       []ContainerPort       // pod template container ports
	HostNetwork bool
	Origin      string
}

// Service is a Service and what the compiler needs from it.
type Service struct {
	Namespace  string
	Name       string
	Type       corev1.ServiceType
	Selector   labels.Set // nil for selector-less services
	Ports      []corev1.ServicePort
	ClusterIPs []netip.Addr
	Origin     string
}

// IngressBackend is one Service backend referenced by an Ingress.
type IngressBackend struct {
	Service string
	Port    networkingv1.ServiceBackendPort
}

// Ingress is an Ingress reduced to the Services it routes to.
type Ingress struct {
	Namespace string
	Name      string
	Backends  []IngressBackend
	Origin    string
}

// Snapshot is the whole model. Build it with Build (or Load); after that it is read-only
// and safe for concurrent readers.
type Snapshot struct {
	Namespaces      map[string]*Namespace
	Pods            []*Pod // sorted by namespace/name
	Workloads       map[WorkloadID]*Workload
	Services        []*Service // sorted by namespace/name
	Ingresses       []*Ingress // sorted by namespace/name
	NetworkPolicies []*networkingv1.NetworkPolicy
	Intents         []*intents.ClientIntents // sorted by namespace/name
	// Ignored counts objects of kinds the model does not use, by apiVersion/kind.
	Ignored map[string]int
	// Warnings are problems that do not stop the load (an owner missing from the
	// snapshot, a pod without IPs, ...), sorted.
	Warnings []string

	podsByKey map[string]*Pod
	podsByIP  map[netip.Addr]*Pod
	nodeIPs   map[netip.Addr]string
	nodeAddrs map[string]netip.Addr
}

// Index (re)builds the lookup tables. Build calls it; tests that assemble a Snapshot by
// hand call it themselves.
func (s *Snapshot) Index() {
	sort.Slice(s.Pods, func(i, j int) bool { return s.Pods[i].Key() < s.Pods[j].Key() })
	s.podsByKey = make(map[string]*Pod, len(s.Pods))
	s.podsByIP = make(map[netip.Addr]*Pod, len(s.Pods))
	s.nodeIPs = map[netip.Addr]string{}
	s.nodeAddrs = map[string]netip.Addr{}
	if s.Namespaces == nil {
		s.Namespaces = map[string]*Namespace{}
	}
	for _, p := range s.Pods {
		s.podsByKey[p.Key()] = p
		if p.HostIP.IsValid() {
			s.nodeIPs[p.HostIP] = p.NodeName
			if p.NodeName != "" {
				s.nodeAddrs[p.NodeName] = p.HostIP
			}
		}
		if p.HostNetwork {
			// A host-network pod shares its node's address: traffic from it is node traffic.
			continue
		}
		for _, ip := range p.IPs {
			s.podsByIP[ip] = p
		}
		if _, ok := s.Namespaces[p.Namespace]; !ok {
			s.Namespaces[p.Namespace] = SynthesizeNamespace(p.Namespace)
		}
	}
}

// SynthesizeNamespace returns a namespace known only by name.
func SynthesizeNamespace(name string) *Namespace {
	return &Namespace{Name: name, Labels: labels.Set{corev1.LabelMetadataName: name}, Synthesized: true}
}

// ReusePods replaces each pod of s that is the Same as prev's pod of that name with
// prev's, and returns how many it replaced. A snapshot rebuilt from informers makes new
// objects for the pods that did not change; sharing the old ones makes every later
// comparison of the two snapshots (Simulator.Update, compile.Compiler.Update, once per
// governed namespace in the controller) a pointer comparison for those. Pods are not
// modified once built, so two snapshots may share them.
func (s *Snapshot) ReusePods(prev *Snapshot) int {
	if prev == nil || prev == s {
		return 0
	}
	if s.podsByKey == nil {
		s.Index()
	}
	n := 0
	for i, p := range s.Pods {
		q := prev.Pod(p.Namespace, p.Name)
		if q == nil || q == p || !q.Same(p) {
			continue
		}
		s.Pods[i] = q
		n++
		// The same pod has the same key, addresses and host networking: the indexes
		// need only the new pointer.
		s.podsByKey[q.Key()] = q
		if !q.HostNetwork {
			for _, ip := range q.IPs {
				if s.podsByIP[ip] == p {
					s.podsByIP[ip] = q
				}
			}
		}
	}
	return n
}

// ReuseUnchanged is ReusePods for every collection: each pod, namespace, workload,
// Service, Ingress, NetworkPolicy and ClientIntents of s equal to prev's of the same
// name is replaced by prev's, and a collection that came out all prev's objects, in
// prev's order, by prev's collection itself, so that comparing the two snapshots later
// (once per governed namespace in the controller) is a pointer comparison for it. It
// returns how many objects it replaced. Snapshots are not modified once built, so they
// may share objects and collections.
func (s *Snapshot) ReuseUnchanged(prev *Snapshot) int {
	if prev == nil || prev == s {
		return 0
	}
	n := s.ReusePods(prev)
	if sameElems(s.Pods, prev.Pods) {
		s.Pods = prev.Pods // the same pods in the same order: the indexes stand
	}
	var k int
	s.Namespaces, k = reuseMap(s.Namespaces, prev.Namespaces)
	n += k
	s.Workloads, k = reuseMap(s.Workloads, prev.Workloads)
	n += k
	s.Services, k = reuseSlice(s.Services, prev.Services, func(v *Service) string { return v.Namespace + "/" + v.Name })
	n += k
	s.Ingresses, k = reuseSlice(s.Ingresses, prev.Ingresses, func(v *Ingress) string { return v.Namespace + "/" + v.Name })
	n += k
	s.NetworkPolicies, k = reuseSlice(s.NetworkPolicies, prev.NetworkPolicies, func(v *networkingv1.NetworkPolicy) string { return v.Namespace + "/" + v.Name })
	n += k
	s.Intents, k = reuseSlice(s.Intents, prev.Intents, func(v *intents.ClientIntents) string { return v.Key() })
	return n + k
}

func sameElems[T any](a, b []*T) bool {
	return len(a) == len(b) && slices.Equal(a, b)
}

// reuseSlice replaces the objects of cur equal to prev's of the same key with prev's,
// and returns prev itself when every object is prev's, in prev's order.
func reuseSlice[T any](cur, prev []*T, key func(*T) string) ([]*T, int) {
	byKey := make(map[string]*T, len(prev))
	for _, p := range prev {
		byKey[key(p)] = p
	}
	n := 0
	for i, c := range cur {
		if p, ok := byKey[key(c)]; ok && p != c && reflect.DeepEqual(p, c) {
			cur[i] = p
			n++
		}
	}
	if sameElems(cur, prev) {
		return prev, n
	}
	return cur, n
}

// reuseMap is reuseSlice for a map.
func reuseMap[K comparable, V any](cur, prev map[K]*V) (map[K]*V, int) {
	n, all := 0, len(cur) == len(prev)
	for k, c := range cur {
		p, ok := prev[k]
		if ok && p != c && reflect.DeepEqual(p, c) {
			cur[k] = p
			c = p
			n++
		}
		if c != p {
			all = false
		}
	}
	if all {
		return prev, n
	}
	return cur, n
}

// Pod returns the pod namespace/name.
func (s *Snapshot) Pod(namespace, name string) *Pod { return s.podsByKey[namespace+"/"+name] }

// PodByIP returns the (non-host-network) pod that owns ip.
func (s *Snapshot) PodByIP(ip netip.Addr) *Pod { return s.podsByIP[ip.Unmap()] }

// NodeByIP returns the name of the node with address ip, as learnt from pods' hostIP.
func (s *Snapshot) NodeByIP(ip netip.Addr) (string, bool) {
	n, ok := s.nodeIPs[ip.Unmap()]
	return n, ok
}

// NodeIP returns the address of node name, as learnt from pods' hostIP.
func (s *Snapshot) NodeIP(name string) (netip.Addr, bool) {
	ip, ok := s.nodeAddrs[name]
	return ip, ok
}

// NamespaceLabels returns the labels of namespace ns (synthesizing the metadata.name
// label for namespaces the snapshot does not list).
func (s *Snapshot) NamespaceLabels(ns string) labels.Set {
	if n, ok := s.Namespaces[ns]; ok {
		return n.Labels
	}
	return labels.Set{corev1.LabelMetadataName: ns}
}

// PodsOf returns the pods that resolve to workload id.
func (s *Snapshot) PodsOf(id WorkloadID) []*Pod {
	var out []*Pod
	for _, p := range s.Pods {
		if p.Workload == id {
			out = append(out, p)
		}
	}
	return out
}

// Service returns the service namespace/name.
func (s *Snapshot) Service(namespace, name string) *Service {
	i := sort.Search(len(s.Services), func(i int) bool {
		sv := s.Services[i]
		return sv.Namespace > namespace || (sv.Namespace == namespace && sv.Name >= name)
	})
	if i < len(s.Services) && s.Services[i].Namespace == namespace && s.Services[i].Name == name {
		return s.Services[i]
	}
	return nil
}

// ObjectError locates a problem in the input: file, document (1-based) and line where the
// parser gives one, and the object.
type ObjectError struct {
	File     string
	Document int
	Line     int
	Object   string // kind namespace/name, when known
	Err      error
}

func (e *ObjectError) Error() string {
	loc := e.File
	if e.Document > 0 {
		loc += fmt.Sprintf(": document %d", e.Document)
	}
	if e.Line > 0 {
		loc += fmt.Sprintf(" (line %d)", e.Line)
	}
	if e.Object != "" {
		loc += ": " + e.Object
	}
	return loc + ": " + e.Err.Error()
}

func (e *ObjectError) Unwrap() error { return e.Err }
