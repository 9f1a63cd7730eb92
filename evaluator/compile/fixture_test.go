package compile

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// This file builds snapshots by hand for the table tests: each helper adds one kind of
// object the way cluster.Build would leave it.

type edit func(*cluster.Snapshot)

func snapshot(edits ...edit) *cluster.Snapshot {
	s := &cluster.Snapshot{Workloads: map[cluster.WorkloadID]*cluster.Workload{}}
	for _, e := range edits {
		e(s)
	}
	sort.Slice(s.Services, func(i, j int) bool {
		return s.Services[i].Namespace+"/"+s.Services[i].Name < s.Services[j].Namespace+"/"+s.Services[j].Name
	})
	sort.Slice(s.Intents, func(i, j int) bool { return s.Intents[i].Key() < s.Intents[j].Key() })
	s.Index()
	return s
}

// nextIP hands out pod addresses in 10.0.0.0/16 in insertion order.
func nextIP(s *cluster.Snapshot) netip.Addr {
	n := len(s.Pods) + 1
	return netip.AddrFrom4([4]byte{10, 0, byte(n / 250), byte(n%250 + 1)})
}

// controlled adds a controller kind ns/name selecting sel with n pods labelled
// sel+extra and declaring ports.
func controlled(kind, ns, name string, sel, extra labels.Set, n int, ports ...cluster.ContainerPort) edit {
	return func(s *cluster.Snapshot) {
		id := cluster.WorkloadID{Namespace: ns, Name: name, Kind: kind}
		podLabels := labels.Merge(sel, extra)
		ls := &metav1.LabelSelector{MatchLabels: sel}
		s.Workloads[id] = &cluster.Workload{ID: id, Selector: ls, Template: podLabels, Ports: ports, Origin: "test"}
		for i := 0; i < n; i++ {
			s.Pods = append(s.Pods, &cluster.Pod{
				Namespace: ns,
				Name:      fmt.Sprintf("%s-%s-%d", name, strings.ToLower(kind), i),
				Labels:    podLabels,
				IPs:       []netip.Addr{nextIP(s)},
				NodeName:  "node-1",
				Ports:     ports,
				Workload:  id,
				Selector:  ls.DeepCopy(),
				Origin:    "test",
			})
		}
	}
}

// deploy adds a Deployment selecting app=name with one pod.
func deploy(ns, name string, ports ...cluster.ContainerPort) edit {
	return controlled("Deployment", ns, name, labels.Set{"app": name}, nil, 1, ports...)
}

// annotated adds a pod whose identity (of the given kind, possibly none) comes from the
// workload-name annotation: it has no controller selector.
func annotated(ns, pod, identity, kind string, l labels.Set) edit {
	return func(s *cluster.Snapshot) {
		s.Pods = append(s.Pods, &cluster.Pod{
			Namespace: ns, Name: pod, Labels: l, IPs: []netip.Addr{nextIP(s)}, NodeName: "node-1",
			Workload: cluster.WorkloadID{Namespace: ns, Name: identity, Kind: kind}, Origin: "test",
		})
	}
}

// bare adds a pod without controller: its own identity.
func bare(ns, pod string, l labels.Set, ports ...cluster.ContainerPort) edit {
	return func(s *cluster.Snapshot) {
		id := cluster.WorkloadID{Namespace: ns, Name: pod, Kind: "Pod"}
		s.Workloads[id] = &cluster.Workload{ID: id, Template: l, Ports: ports, Origin: "test"}
		s.Pods = append(s.Pods, &cluster.Pod{
			Namespace: ns, Name: pod, Labels: l, IPs: []netip.Addr{nextIP(s)}, NodeName: "node-1",
			Ports: ports, Workload: id, Origin: "test",
		})
	}
}

func hostNetwork(ns, pod string) edit {
	return func(s *cluster.Snapshot) {
		for _, p := range s.Pods {
			if p.Namespace == ns && p.Name == pod {
				p.HostNetwork = true
				p.HostIP = netip.MustParseAddr("192.168.0.10")
			}
		}
	}
}

// ipv6Only readdresses a pod to a single IPv6 address.
func ipv6Only(ns, pod string) edit {
	return func(s *cluster.Snapshot) {
		for _, p := range s.Pods {
			if p.Namespace == ns && p.Name == pod {
				p.IPs = []netip.Addr{netip.MustParseAddr("fd00::5")}
			}
		}
	}
}

func tcp(name string, port int32) cluster.ContainerPort {
	return cluster.ContainerPort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
}

func service(ns, name string, typ corev1.ServiceType, sel labels.Set, ports ...corev1.ServicePort) edit {
	return func(s *cluster.Snapshot) {
		s.Services = append(s.Services, &cluster.Service{Namespace: ns, Name: name, Type: typ, Selector: sel, Ports: ports, Origin: "test"})
	}
}

func svcPort(name string, proto corev1.Protocol, port int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port, TargetPort: target}
}

func ingress(ns, name string, backends ...cluster.IngressBackend) edit {
	return func(s *cluster.Snapshot) {
		s.Ingresses = append(s.Ingresses, &cluster.Ingress{Namespace: ns, Name: name, Backends: backends, Origin: "test"})
	}
}

func netpol(ns, doc string) edit {
	return func(s *cluster.Snapshot) {
		var p networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
			panic(err)
		}
		p.Namespace = ns
		s.NetworkPolicies = append(s.NetworkPolicies, &p)
	}
}

func ci(ns, name string, client intents.Workload, targets ...intents.Target) edit {
	return func(s *cluster.Snapshot) {
		s.Intents = append(s.Intents, &intents.ClientIntents{
			Namespace: ns, Name: name, APIVersion: "k8s.otterize.com/v2beta1",
			Client: client, Targets: targets, Origin: "test",
		})
	}
}

func client(name string) intents.Workload { return intents.Workload{Name: name} }

// wl is a workload target "name" or "name.ns".
func wl(raw string) intents.Target {
	name, ns, _ := strings.Cut(raw, ".")
	return intents.Target{Type: intents.TargetWorkload, Name: name, Namespace: ns, Raw: raw}
}

func wlKind(raw, kind string) intents.Target {
	t := wl(raw)
	t.Kind = kind
	return t
}

// svcT is a Service target "svc:name" or "svc:name.ns".
func svcT(raw string) intents.Target {
	name, ns, _ := strings.Cut(strings.TrimPrefix(raw, "svc:"), ".")
	return intents.Target{Type: intents.TargetService, Name: name, Namespace: ns, Raw: raw}
}

func internet(raw string, ips, domains []string, ports ...int32) intents.Target {
	return intents.Target{Type: intents.TargetInternet, Raw: raw, Internet: &intents.Internet{IPs: ips, Domains: domains, Ports: ports}}
}
