package cluster

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func equalTestPod() *Pod {
	return &Pod{
		Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"},
		IPs: []netip.Addr{netip.MustParseAddr("10.1.1.11")}, HostIP: netip.MustParseAddr("10.0.0.1"), NodeName: "node-1",
		Ports:    []ContainerPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
		Workload: WorkloadID{Namespace: "shop", Name: "web", Kind: "Deployment"},
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}}},
		Origin: "pods.yaml#1",
	}
}

// TestPodSameComparesEveryField changes each field of a Pod, and of its selector, in
// turn: Same must see every change, and agree with reflect.DeepEqual (whose work it
// does faster) on each pair, nil against empty included.
func TestPodSameComparesEveryField(t *testing.T) {
	mutations := map[string]func(p *Pod){
		"Namespace":   func(p *Pod) { p.Namespace = "other" },
		"Name":        func(p *Pod) { p.Name = "web-2" },
		"Labels":      func(p *Pod) { p.Labels = map[string]string{"app": "api"} },
		"Labels nil":  func(p *Pod) { p.Labels = nil },
		"Labels none": func(p *Pod) { p.Labels = map[string]string{} },
		"IPs":         func(p *Pod) { p.IPs = []netip.Addr{netip.MustParseAddr("10.1.1.12")} },
		"IPs nil":     func(p *Pod) { p.IPs = nil },
		"HostIP":      func(p *Pod) { p.HostIP = netip.MustParseAddr("10.0.0.2") },
		"NodeName":    func(p *Pod) { p.NodeName = "node-2" },
		"HostNetwork": func(p *Pod) { p.HostNetwork = true },
		"Ports":       func(p *Pod) { p.Ports[0].Port = 9090 },
		"Ports nil":   func(p *Pod) { p.Ports = nil },
		"Workload":    func(p *Pod) { p.Workload.Kind = "StatefulSet" },
		"Selector":    func(p *Pod) { p.Selector = nil },
		"Selector.MatchLabels": func(p *Pod) {
			p.Selector.MatchLabels = map[string]string{"app": "api"}
		},
		"Selector.MatchLabels nil":          func(p *Pod) { p.Selector.MatchLabels = nil },
		"Selector.MatchExpressions nil":     func(p *Pod) { p.Selector.MatchExpressions = nil },
		"Selector.MatchExpressions.Key":     func(p *Pod) { p.Selector.MatchExpressions[0].Key = "zone" },
		"Selector.MatchExpressions.Op":      func(p *Pod) { p.Selector.MatchExpressions[0].Operator = metav1.LabelSelectorOpNotIn },
		"Selector.MatchExpressions.Values":  func(p *Pod) { p.Selector.MatchExpressions[0].Values = []string{"b"} },
		"Selector.MatchExpressions.no vals": func(p *Pod) { p.Selector.MatchExpressions[0].Values = nil },
		"Synthesized":                       func(p *Pod) { p.Synthesized = true },
		"Origin":                            func(p *Pod) { p.Origin = "pods.yaml#2" },
	}
	// Every field of Pod is changed by some case: a new field fails here until Same and
	// this table know it.
	covered := map[string]bool{}
	for name := range mutations {
		for i := 0; i < len(name); i++ {
			if name[i] == ' ' || name[i] == '.' {
				name = name[:i]
				break
			}
		}
		covered[name] = true
	}
	for f := range reflect.TypeFor[Pod]().Fields() {
		if !covered[f.Name] {
			t.Errorf("no case changes Pod.%s", f.Name)
		}
	}
	if a, b := equalTestPod(), equalTestPod(); !a.Same(b) || !reflect.DeepEqual(a, b) {
		t.Fatal("two copies of the same pod differ")
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			a, b := equalTestPod(), equalTestPod()
			mutate(b)
			if got, want := a.Same(b), reflect.DeepEqual(a, b); got != want || got {
				t.Errorf("Same = %v, reflect.DeepEqual = %v: want both false", got, want)
			}
			if b.Same(a) {
				t.Error("Same is not symmetric")
			}
		})
	}
	var nilPod *Pod
	if nilPod.Same(equalTestPod()) || equalTestPod().Same(nil) || !nilPod.Same(nil) {
		t.Error("nil pods: want equal to nil only")
	}
}
