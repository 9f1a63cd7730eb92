package simulate

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/flows"
)

// LineVerdict is the JSON contract of `shadowgate evaluate -o jsonl`: one object per input
// line, in input order.
type LineVerdict struct {
	Line        int            `json:"line"`
	Verdict     Outcome        `json:"verdict"`
	Reason      string         `json:"reason"`
	Source      *EndpointInfo  `json:"source,omitempty"`
	Destination *EndpointInfo  `json:"destination,omitempty"`
	Protocol    string         `json:"protocol,omitempty"`
	Port        uint32         `json:"port,omitempty"`
	WouldDrop   bool           `json:"wouldDrop,omitempty"`
	Policies    []PolicyEffect `json:"policies"`
}

// EndpointInfo describes one end of a judged flow.
type EndpointInfo struct {
	Kind         string `json:"kind"` // pod, host, external (or "unresolved")
	Namespace    string `json:"namespace,omitempty"`
	Pod          string `json:"pod,omitempty"`
	Workload     string `json:"workload,omitempty"`
	WorkloadKind string `json:"workloadKind,omitempty"`
	IP           string `json:"ip,omitempty"`
	Node         string `json:"node,omitempty"`
}

// PolicyEffect is one policy's part in a verdict: it isolates a side, or one of its rules
// allows the connection.
type PolicyEffect struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Direction string `json:"direction"` // ingress | egress
	Effect    string `json:"effect"`    // isolates | allows
	Rule      *int   `json:"rule,omitempty"`
}

// LineResult renders the judgement of one event for the jsonl output.
func LineResult(ev flows.Event, j Judgement) LineVerdict {
	lv := LineVerdict{Line: ev.Line, Verdict: j.Outcome, Reason: j.Reason, Policies: []PolicyEffect{}}
	switch ev.Kind {
	case flows.KindMalformed:
		lv.Reason = "malformed: " + ev.Reason
		if ev.Detail != "" {
			lv.Reason += ": " + ev.Detail
		}
		return lv
	case flows.KindLost:
		lv.Reason = fmt.Sprintf("lost-events: %d flows lost (%s)", ev.Lost.NumEvents, ev.Lost.Source)
		return lv
	case flows.KindNodeStatus:
		lv.Reason = "node-status: " + ev.NodeStatus.State
		return lv
	}
	f := ev.Flow
	lv.Protocol, lv.Port = f.Protocol, f.DestinationPort
	if j.Outcome == Skipped {
		lv.Source, lv.Destination = rawEndpoint(&f.Source), rawEndpoint(&f.Destination)
		return lv
	}
	lv.Source, lv.Destination = endpointInfo(j.Conn.Src), endpointInfo(j.Conn.Dst)
	lv.WouldDrop = j.WouldDrop
	lv.Policies = effects(j.Enforced)
	return lv
}

func rawEndpoint(ep *flows.Endpoint) *EndpointInfo {
	info := &EndpointInfo{Kind: "unresolved", Namespace: ep.Namespace, Pod: ep.PodName}
	if ep.IP.IsValid() {
		info.IP = ep.IP.String()
	}
	return info
}

func endpointInfo(ep evaluator.Endpoint) *EndpointInfo {
	info := &EndpointInfo{Kind: ep.Kind.String(), Node: ep.Node}
	if ep.IP.IsValid() {
		info.IP = ep.IP.String()
	}
	if ep.Pod != nil {
		info.Namespace, info.Pod = ep.Pod.Namespace, ep.Pod.Name
		info.Workload, info.WorkloadKind = ep.Pod.Workload.Name, ep.Pod.Workload.Kind
	}
	return info
}

func effects(v evaluator.Verdict) []PolicyEffect {
	out := []PolicyEffect{}
	add := func(dir string, d evaluator.Direction) {
		for _, p := range d.Isolated {
			out = append(out, PolicyEffect{Namespace: p.Namespace, Name: p.Name, Direction: dir, Effect: "isolates"})
		}
		for _, r := range d.AllowedBy {
			idx := r.Index
			out = append(out, PolicyEffect{Namespace: r.Policy.Namespace, Name: r.Policy.Name, Direction: dir, Effect: "allows", Rule: &idx})
		}
	}
	add("egress", v.Egress)
	add("ingress", v.Ingress)
	return out
}

// TableStyle says how WriteTableStyled decorates the table.
type TableStyle struct {
	// Color marks what would be dropped in red and a clean result in green (ANSI).
	Color bool
}

// WriteTable writes the report for people, without colour.
func WriteTable(w io.Writer, r *Report) error { return WriteTableStyled(w, r, TableStyle{}) }

// WriteTableStyled writes the report for people.
func WriteTableStyled(w io.Writer, r *Report, style TableStyle) error {
	paint := func(code, s string) string {
		if !style.Color {
			return s
		}
		return "\033[" + code + "m" + s + "\033[0m"
	}
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprintf(ew, "Enforced namespaces: %s\n\n", strings.Join(r.Enforced, ", "))
	fmt.Fprintln(tw, "NAMESPACE\tENFORCED\tCONNECTIONS\tWOULD DROP\tUNCOVERED EDGES")
	for _, n := range r.Namespaces {
		fmt.Fprintf(tw, "%s\t%t\t%d\t%d\t%d\n", n.Namespace, n.Enforced, n.Connections, n.WouldDrop, n.UncoveredEdges)
	}
	tw.Flush()
	fmt.Fprintln(ew)
	if len(r.Uncovered) == 0 {
		fmt.Fprintln(ew, paint("32", "Nothing would be dropped."))
	} else {
		fmt.Fprintln(ew, paint("1;31", fmt.Sprintf("Would be dropped (%d edges):", len(r.Uncovered))))
		tw = tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tDESTINATION\tPORT\tCOUNT\tLAST SEEN")
		for _, e := range r.Uncovered {
			fmt.Fprintf(tw, "%s\t%s\t%d/%s\t%d\t%s\n", e.Source, e.Destination, e.Port, e.Protocol, e.Count, fmtTime(e.LastSeen))
		}
		tw.Flush()
		fmt.Fprintln(ew)
		fmt.Fprintln(ew, "Why:")
		for _, e := range r.Uncovered {
			fmt.Fprintf(ew, "  %s -> %s %d/%s: %s\n", e.Source, e.Destination, e.Port, e.Protocol, e.Reason)
		}
		fmt.Fprintln(ew, "\n'shadowgate suggest' with the same inputs writes the ClientIntents that would cover them;")
		fmt.Fprintln(ew, "'shadowgate report --html FILE' draws the access graph.")
	}
	fmt.Fprintln(ew)
	fmt.Fprintf(ew, "Flows: %d read, %d evaluated", r.Flows.Read, r.Flows.Evaluated)
	if s := fmtCounts(r.Flows.Skipped); s != "" {
		fmt.Fprintf(ew, ", skipped: %s", s)
	}
	if s := fmtCounts(r.Flows.Malformed); s != "" {
		fmt.Fprintf(ew, ", malformed: %s", s)
	}
	fmt.Fprintln(ew)
	for _, m := range r.Flows.MalformedLines {
		fmt.Fprintf(ew, "  line %d: %s %s\n", m.Line, m.Reason, m.Detail)
	}
	if r.Flows.LostEvents > 0 {
		fmt.Fprintf(ew, "Hubble reported %d lost flows in %d lost_events lines: the report may be incomplete.\n", r.Flows.LostEvents, r.Flows.LostEventLines)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(ew, "\nWarnings:")
		for _, w := range r.Warnings {
			fmt.Fprintf(ew, "  %s\n", w)
		}
	}
	return ew.err
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// errWriter keeps the first write error so the table code can stay linear.
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
