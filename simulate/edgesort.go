package simulate

import (
	"fmt"
	"sort"
	"unsafe"
)

// sortEdges orders edges by count (most first), then by their key (appendEdgeKey), a
// total order so that output is byte-stable. Formatting both keys in every comparison
// made sorting the report most of the cost of a short replay of a large cluster (millions
// of Sprintf calls for a few hundred thousand edges): each key is built once, into one
// buffer, and the keys are sorted along with the edges.
func sortEdges(es []Edge) {
	if len(es) < 2 {
		return
	}
	buf := make([]byte, 0, 96*len(es))
	ends := make([]int, len(es))
	for i := range es {
		buf = appendEdgeKey(buf, &es[i])
		ends[i] = len(buf)
	}
	s := edgeSorter{es: es, keys: make([]string, len(es))}
	// The buffer is complete and never written again: the keys may share it.
	start := 0
	for i, end := range ends {
		if end > start {
			s.keys[i] = unsafe.String(&buf[start], end-start)
		}
		start = end
	}
	sort.Sort(s)
}

type edgeSorter struct {
	es   []Edge
	keys []string
}

func (s edgeSorter) Len() int { return len(s.es) }
func (s edgeSorter) Less(i, j int) bool {
	a, b := &s.es[i], &s.es[j]
	if a.Count != b.Count {
		return a.Count > b.Count
	}
	return s.keys[i] < s.keys[j]
}
func (s edgeSorter) Swap(i, j int) {
	s.es[i], s.es[j] = s.es[j], s.es[i]
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
}

// appendEdgeKey appends e's key: the destination's then the source's namespace,
// workload, kind, CIDR and node, and the protocol, each followed by '|', then the port
// as %05d. Reports have been ordered by this byte string since the first release.
func appendEdgeKey(b []byte, e *Edge) []byte {
	for _, f := range [...]string{
		e.Destination.Namespace, e.Destination.Workload, e.Destination.Kind, e.Destination.CIDR, e.Destination.Node,
		e.Source.Namespace, e.Source.Workload, e.Source.Kind, e.Source.CIDR, e.Source.Node, e.Protocol,
	} {
		b = append(b, f...)
		b = append(b, '|')
	}
	if p := e.Port; p >= 0 && p < 100000 {
		return append(b, byte('0'+p/10000), byte('0'+p/1000%10), byte('0'+p/100%10), byte('0'+p/10%10), byte('0'+p%10))
	}
	return fmt.Appendf(b, "%05d", e.Port)
}
