package cluster

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// summary renders a Snapshot as stable, reviewable JSON for golden files.
func summary(s *Snapshot) []byte {
	type pod struct {
		Key         string          `json:"pod"`
		Labels      string          `json:"labels,omitempty"`
		IPs         []string        `json:"ips,omitempty"`
		HostIP      string          `json:"hostIP,omitempty"`
		Node        string          `json:"node,omitempty"`
		HostNetwork bool            `json:"hostNetwork,omitempty"`
		Ports       []ContainerPort `json:"ports,omitempty"`
		Workload    string          `json:"workload"`
		Selector    string          `json:"selector,omitempty"`
		Synthesized bool            `json:"synthesized,omitempty"`
		Origin      string          `json:"origin"`
	}
	type workload struct {
		ID          string          `json:"id"`
		Selector    string          `json:"selector,omitempty"`
		Template    string          `json:"template,omitempty"`
		Ports       []ContainerPort `json:"ports,omitempty"`
		HostNetwork bool            `json:"hostNetwork,omitempty"`
		Origin      string          `json:"origin"`
	}
	type out struct {
		Namespaces      []string       `json:"namespaces"`
		Pods            []pod          `json:"pods"`
		Workloads       []workload     `json:"workloads"`
		Services        []*Service     `json:"services"`
		Ingresses       []*Ingress     `json:"ingresses"`
		NetworkPolicies []any          `json:"networkPolicies"`
		Intents         any            `json:"intents"`
		Ignored         map[string]int `json:"ignored"`
		Warnings        []string       `json:"warnings"`
	}
	sel := func(ls *metav1.LabelSelector) string {
		if ls == nil {
			return ""
		}
		return metav1.FormatLabelSelector(ls)
	}
	var o out
	for name, ns := range s.Namespaces {
		o.Namespaces = append(o.Namespaces, fmt.Sprintf("%s %s synthesized=%v", name, ns.Labels, ns.Synthesized))
	}
	sort.Strings(o.Namespaces)
	for _, p := range s.Pods {
		q := pod{Key: p.Key(), Labels: p.Labels.String(), Node: p.NodeName, HostNetwork: p.HostNetwork, Ports: p.Ports,
			Workload: p.Workload.String(), Selector: sel(p.Selector), Synthesized: p.Synthesized, Origin: p.Origin}
		for _, ip := range p.IPs {
			q.IPs = append(q.IPs, ip.String())
		}
		if p.HostIP.IsValid() {
			q.HostIP = p.HostIP.String()
		}
		o.Pods = append(o.Pods, q)
	}
	for id, w := range s.Workloads {
		o.Workloads = append(o.Workloads, workload{ID: id.String(), Selector: sel(w.Selector), Template: w.Template.String(),
			Ports: w.Ports, HostNetwork: w.HostNetwork, Origin: w.Origin})
	}
	sort.Slice(o.Workloads, func(i, j int) bool { return o.Workloads[i].ID < o.Workloads[j].ID })
	o.Services, o.Ingresses, o.Intents, o.Ignored, o.Warnings = s.Services, s.Ingresses, s.Intents, s.Ignored, s.Warnings
	for _, np := range s.NetworkPolicies {
		o.NetworkPolicies = append(o.NetworkPolicies, map[string]any{"name": np.Namespace + "/" + np.Name, "spec": np.Spec})
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got); run go test -update if intended:\n%s", path, diff)
	}
}
