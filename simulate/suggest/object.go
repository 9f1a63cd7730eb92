package suggest

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/simulate"
)

// build renders one group as a ClientIntents object.
func (b *builder) build(g *group) (*Intents, error) {
	s := &Intents{merged: b.ex.known}
	var obj map[string]any
	if g.extends != nil {
		ci := g.extends.ci
		obj = g.extends.u.DeepCopy().Object
		cleanServerFields(obj)
		s.Namespace, s.Name, s.Client, s.APIVersion, s.Extends = ci.Namespace, ci.Name, ci.Client, g.extends.u.GetAPIVersion(), ci.Key()
		// An object read without metadata.namespace lives in "default"; say so, so that the
		// object lands there whatever the applying context's namespace.
		if err := unstructured.SetNestedField(obj, ci.Namespace, "metadata", "namespace"); err != nil {
			return nil, fmt.Errorf("suggest: ClientIntents %s: %w", ci.Key(), err)
		}
	} else {
		s.Namespace = g.client.Namespace
		s.Client = intents.Workload{Name: g.client.Workload, Kind: g.client.Kind}
		s.APIVersion = b.o.apiVersion()
		s.Name = b.newName(g.client)
		obj = newObject(s)
	}
	b.ex.take(s.Namespace, s.Name)

	v2 := isV2(obj)
	withKind := versionOf(s.APIVersion) != "v1alpha2"
	listKey := "calls"
	if v2 {
		listKey = "targets"
	}
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		obj["spec"] = spec
	}
	list, _ := spec[listKey].([]any)
	s.Kept = len(list)

	for _, k := range sortedServerKeys(g.servers, s.Namespace) {
		st := g.servers[k]
		name := targetName(s.Namespace, st.peer)
		list = append(list, workloadEntry(v2, withKind, name, st.peer.Kind))
		s.Added = append(s.Added, Added{Target: name, Edges: sortEdges(st.edges)})
	}
	inetKeys := make([]string, 0, len(g.inet))
	for k := range g.inet {
		inetKeys = append(inetKeys, k)
	}
	sort.Strings(inetKeys)
	for _, k := range inetKeys {
		t := g.inet[k]
		cidrs := sortedCIDRs(t.cidrs)
		list = append(list, internetEntry(v2, cidrs, t.port))
		desc := "internet " + strings.Join(cidrs, ",")
		if t.port > 0 {
			desc += fmt.Sprintf(" port %d", t.port)
		}
		s.Added = append(s.Added, Added{Target: desc, Edges: sortEdges(t.edges)})
	}
	spec[listKey] = list
	s.Object = &unstructured.Unstructured{Object: obj}
	return s, nil
}

func sortedServerKeys(m map[string]*serverTarget, clientNS string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := m[keys[i]].peer, m[keys[j]].peer
		na, nb := targetName(clientNS, a), targetName(clientNS, b)
		if na != nb {
			return na < nb
		}
		return a.Kind < b.Kind
	})
	return keys
}

func sortEdges(es []simulate.Edge) []simulate.Edge {
	out := append([]simulate.Edge(nil), es...)
	sort.Slice(out, func(i, j int) bool { return EdgeKey(out[i]) < EdgeKey(out[j]) })
	return out
}

func sortedCIDRs(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// newObject is a fresh ClientIntents for s.Client in s.APIVersion's shape.
func newObject(s *Intents) map[string]any {
	client := map[string]any{"name": s.Client.Name}
	if s.Client.Kind != "" {
		client["kind"] = s.Client.Kind
	}
	spec := map[string]any{}
	if strings.HasPrefix(versionOf(s.APIVersion), "v2") {
		spec["workload"] = client
	} else {
		spec["service"] = client
	}
	return map[string]any{
		"apiVersion": s.APIVersion,
		"kind":       "ClientIntents",
		"metadata":   map[string]any{"name": s.Name, "namespace": s.Namespace},
		"spec":       spec,
	}
}

// isV2 reads the shape as the intents parser does: spec.workload or spec.targets.
func isV2(obj map[string]any) bool {
	spec, _ := obj["spec"].(map[string]any)
	if spec != nil {
		if _, ok := spec["workload"]; ok {
			return true
		}
		if _, ok := spec["targets"]; ok {
			return true
		}
		if _, ok := spec["service"]; ok {
			return false
		}
		if _, ok := spec["calls"]; ok {
			return false
		}
	}
	api, _ := obj["apiVersion"].(string)
	return strings.HasPrefix(versionOf(api), "v2")
}

func versionOf(apiVersion string) string {
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		return apiVersion[i+1:]
	}
	return apiVersion
}

func workloadEntry(v2, withKind bool, name, kind string) map[string]any {
	t := map[string]any{"name": name}
	if kind != "" && withKind {
		t["kind"] = kind
	}
	if v2 {
		return map[string]any{"kubernetes": t}
	}
	return t
}

func internetEntry(v2 bool, cidrs []string, port int32) map[string]any {
	ips := make([]any, len(cidrs))
	for i, c := range cidrs {
		ips[i] = c
	}
	in := map[string]any{"ips": ips}
	if port > 0 {
		in["ports"] = []any{int64(port)}
	}
	if v2 {
		return map[string]any{"internet": in}
	}
	return map[string]any{"type": "internet", "internet": in}
}

// serverFields are metadata the API server or controllers own: an object read back from
// a cluster (kubectl get -o yaml) carries them, and applying them back is wrong or
// refused.
var serverFields = []string{"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "managedFields", "selfLink", "finalizers"}

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

func cleanServerFields(obj map[string]any) {
	delete(obj, "status")
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		return
	}
	for _, f := range serverFields {
		delete(md, f)
	}
	if ann, ok := md["annotations"].(map[string]any); ok {
		delete(ann, lastApplied)
		if len(ann) == 0 {
			delete(md, "annotations")
		}
	}
}

// newName picks the name of a new object: the client's name made a valid object name,
// else with its kind, else numbered, never one taken by an existing object or by another
// suggestion. Without the cluster's ClientIntents every name ends in SuggestedSuffix.
func (b *builder) newName(client simulate.Peer) string {
	suffix := ""
	if !b.ex.known {
		suffix = SuggestedSuffix
	}
	base := objectName(client.Workload)
	kind := strings.ToLower(client.Kind)
	if kind == "" {
		kind = "workload"
	}
	withKind := trimName(base, len(kind)+1+len(suffix)) + "-" + kind
	candidates := []string{trimName(base, len(suffix)) + suffix, withKind + suffix}
	for _, n := range candidates {
		if !b.ex.taken(client.Namespace, n) {
			return n
		}
	}
	for i := 2; ; i++ {
		tail := fmt.Sprintf("-%d", i) + suffix
		if n := trimName(withKind, len(tail)) + tail; !b.ex.taken(client.Namespace, n) {
			return n
		}
	}
}

// objectName turns a workload name into a DNS-1123 subdomain: identities may carry
// underscores (Otterize turns dots into them) and upper case from annotations.
func objectName(s string) string {
	var bld strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			bld.WriteRune(r)
		default:
			bld.WriteByte('-')
		}
	}
	n := strings.Trim(bld.String(), "-.")
	if n == "" {
		n = "client"
	}
	return trimName(n, 0)
}

// trimName shortens n so that reserve more characters still fit a subdomain.
func trimName(n string, reserve int) string {
	max := validation.DNS1123SubdomainMaxLength - reserve
	if len(n) > max {
		n = strings.TrimRight(n[:max], "-.")
	}
	return n
}
