package suggest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/shadowgate/shadowgate/simulate"
)

// YAML renders the object as a client team would keep it in a file: a comment saying
// which uncovered edges each new target covers, then the manifest with apiVersion, kind,
// metadata and spec first and the client before its targets.
func (s *Intents) YAML() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(s.header())
	body, err := marshalOrdered(s.Object.Object)
	if err != nil {
		return nil, fmt.Errorf("suggest: ClientIntents %s: %w", s.Key(), err)
	}
	b.Write(body)
	return b.Bytes(), nil
}

func (s *Intents) header() string {
	var b strings.Builder
	edges := s.Edges()
	fmt.Fprintf(&b, "# %s: %d uncovered %s.\n", describeClient(s.Namespace, s.Client.Name, s.Client.Kind), len(edges), plural(len(edges), "edge", "edges"))
	for _, a := range s.Added {
		fmt.Fprintf(&b, "#   + %s: %s\n", a.Target, describeEdges(a.Edges))
	}
	switch {
	case s.Extends != "":
		fmt.Fprintf(&b, "# Extends ClientIntents %s: its %d %s kept; applying this replaces it.\n", s.Extends, s.Kept, plural(s.Kept, "target is", "targets are"))
	case !s.merged:
		fmt.Fprintf(&b, "# Not merged with existing ClientIntents (none were given): the %s suffix keeps\n# applying it from replacing an existing object.\n", SuggestedSuffix)
	default:
		b.WriteString("# New ClientIntents: the client has none.\n")
	}
	return b.String()
}

func describeClient(ns, name, kind string) string {
	if kind == "" {
		return ns + "/" + name
	}
	return ns + "/" + name + " (" + kind + ")"
}

// describeEdges summarizes the edges of one target: ports, flow count, time span.
func describeEdges(es []simulate.Edge) string {
	var ports []string
	seen := map[string]bool{}
	var count int64
	var first, last time.Time
	for _, e := range es {
		p := portString(e)
		if e.Destination.Kind == simulate.KindExternal {
			p = e.Destination.CIDR + " " + p
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
		count += e.Count
		if !e.FirstSeen.IsZero() && (first.IsZero() || e.FirstSeen.Before(first)) {
			first = e.FirstSeen
		}
		if e.LastSeen.After(last) {
			last = e.LastSeen
		}
	}
	sort.Strings(ports)
	out := fmt.Sprintf("%s, %d %s", strings.Join(ports, " "), count, plural(int(count), "flow", "flows"))
	if !last.IsZero() {
		out += ", last seen " + last.UTC().Format(time.RFC3339)
	}
	return out
}

func portString(e simulate.Edge) string {
	if e.Port == 0 {
		return "any port"
	}
	return fmt.Sprintf("%s/%d", e.Protocol, e.Port)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WriteStream writes every object as one multi-document YAML stream.
func (r *Result) WriteStream(w io.Writer) error {
	for _, s := range r.Intents {
		y, err := s.YAML()
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, "---\n"); err != nil {
			return err
		}
		if _, err := w.Write(y); err != nil {
			return err
		}
	}
	return nil
}

// WriteDir writes each object to dir/<namespace>.<client>.yaml, creating dir. Other files
// in dir are left alone; files of the same name are replaced.
func (r *Result) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("suggest: output directory: %w", err)
	}
	for _, s := range r.Intents {
		y, err := s.YAML()
		if err != nil {
			return err
		}
		path := filepath.Join(dir, s.File)
		if err := os.WriteFile(path, y, 0o644); err != nil {
			return fmt.Errorf("suggest: %w", err)
		}
	}
	return nil
}

// WriteNotes explains, for people, what the suggestions do not cover and what to do
// instead. It writes nothing when there is nothing to say.
func (r *Result) WriteNotes(w io.Writer) error {
	ew := &errWriter{w: w}
	if !r.Merged && len(r.Intents) > 0 {
		fmt.Fprintf(ew, "note: the cluster's ClientIntents are unknown (no --cluster): the suggestions are not merged\n"+
			"  with them, and new objects are named <client>%s so that applying one adds to, never\n"+
			"  replaces, a client's existing ClientIntents. Give --cluster to merge.\n", SuggestedSuffix)
	}
	by := map[NoteKind][]Note{}
	for _, n := range r.Notes {
		by[n.Kind] = append(by[n.Kind], n)
	}
	if ns := by[NoteExternalSource]; len(ns) > 0 {
		fmt.Fprintf(ew, "note: %d uncovered %s from outside the cluster; ClientIntents name workloads, not outside callers:\n",
			len(ns), plural(len(ns), "edge comes", "edges come"))
		writeNoteEdges(ew, ns)
		fmt.Fprintln(ew, "  Admit them with the compiler setting instead: expose the workload through a LoadBalancer or")
		fmt.Fprintln(ew, "  NodePort Service or an Ingress and run with --external always (or the default only-if-blocked).")
		fmt.Fprintln(ew, "  If they are in fact pods the snapshot lacks, add their manifests to --cluster, or admit their")
		fmt.Fprintln(ew, "  namespace with --allow-from-namespace NS.")
	}
	if ns := by[NoteNodeSource]; len(ns) > 0 {
		fmt.Fprintf(ew, "note: %d uncovered %s from nodes (host-network pods, other nodes' kubelets); ClientIntents cannot name a node:\n",
			len(ns), plural(len(ns), "edge comes", "edges come"))
		writeNoteEdges(ew, ns)
		fmt.Fprintln(ew, "  A pod's own node is always admitted. Admit other nodes with a NetworkPolicy of your own (an ipBlock")
		fmt.Fprintln(ew, "  of the node addresses): enforcement adds to the cluster's policies, it does not replace them.")
	}
	if ns := by[NoteNodeDestination]; len(ns) > 0 {
		fmt.Fprintf(ew, "note: %d uncovered egress %s to nodes; ClientIntents cannot name a node:\n", len(ns), plural(len(ns), "edge", "edges"))
		writeNoteEdges(ew, ns)
		fmt.Fprintln(ew, "  Admit them with an egress NetworkPolicy of your own (an ipBlock of the node addresses).")
	}
	if ns := by[NoteNoAddress]; len(ns) > 0 {
		fmt.Fprintf(ew, "note: %d uncovered egress %s to outside addresses the report does not name:\n", len(ns), plural(len(ns), "edge", "edges"))
		writeNoteEdges(ew, ns)
		fmt.Fprintln(ew, "  Find the addresses in the flows and add internet targets for them.")
	}
	if ns := by[NoteAlreadyDeclared]; len(ns) > 0 {
		fmt.Fprintf(ew, "note: %d uncovered %s already declared, so another target would not help:\n", len(ns), plural(len(ns), "edge is", "edges are"))
		for _, n := range ns {
			fmt.Fprintf(ew, "  %s -> %s %s: %s; %s\n", n.Edge.Source, n.Edge.Destination, portString(n.Edge), n.Detail, n.Edge.Reason)
		}
	}
	return ew.err
}

func writeNoteEdges(w io.Writer, ns []Note) {
	for _, n := range ns {
		fmt.Fprintf(w, "  %s -> %s %s (%d %s)\n", n.Edge.Source, n.Edge.Destination, portString(n.Edge), n.Edge.Count, plural(int(n.Edge.Count), "flow", "flows"))
	}
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// Key order: Kubernetes' conventional order at the top, and the names before what they
// qualify below (a target's name before its kind, the client before the targets).
var (
	rootOrder  = []string{"apiVersion", "kind", "metadata", "spec", "status"}
	innerOrder = []string{"name", "namespace", "kind", "type", "workload", "service", "targets", "calls"}
)

// marshalOrdered renders an unstructured object as YAML with a stable, readable key
// order (known keys first, the rest sorted) and two-space indentation.
func marshalOrdered(obj map[string]any) ([]byte, error) {
	n, err := node(obj, rootOrder)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func node(v any, order []string) (*yaml.Node, error) {
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range orderedKeys(x, order) {
			val, err := node(x[k], innerOrder)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, val)
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i, e := range x {
			val, err := node(e, innerOrder)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			n.Content = append(n.Content, val)
		}
		return n, nil
	default:
		n := &yaml.Node{}
		if err := n.Encode(v); err != nil {
			return nil, err
		}
		return n, nil
	}
}

func orderedKeys(m map[string]any, order []string) []string {
	rank := make(map[string]int, len(order))
	for i, k := range order {
		rank[k] = i + 1
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank[keys[i]], rank[keys[j]]
		switch {
		case ri > 0 && rj > 0:
			return ri < rj
		case ri > 0 || rj > 0:
			return ri > 0
		}
		return keys[i] < keys[j]
	})
	return keys
}
