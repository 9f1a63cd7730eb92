package cluster

import (
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// yamlTree keeps a document's node tree to turn field paths back into line numbers.
// Decoding goes through sigs.k8s.io/yaml, which loses positions; this second parse is
// only made when an error needs a line.
type yamlTree struct {
	root *yamlv3.Node
}

func parseTree(data []byte) *yamlTree {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	return &yamlTree{root: doc.Content[0]}
}

// pathElem is one step of a field path: a field name, a list index, or a map key.
type pathElem struct {
	name  string
	index int // -1 unless a list index
}

// parsePath splits a field path as field.Path renders it ("spec.ingress[0].from",
// "metadata.labels[app.kubernetes.io/name]").
func parsePath(s string) []pathElem {
	var out []pathElem
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return append(out, pathElem{name: s[1:], index: -1})
			}
			inner := s[1:end]
			if n, err := strconv.Atoi(inner); err == nil && n >= 0 {
				out = append(out, pathElem{index: n})
			} else {
				out = append(out, pathElem{name: inner, index: -1})
			}
			s = s[end+1:]
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			out = append(out, pathElem{name: s[:end], index: -1})
			s = s[end:]
		}
	}
	return out
}

func resolve(n *yamlv3.Node) *yamlv3.Node {
	for n != nil && n.Kind == yamlv3.AliasNode {
		n = n.Alias
	}
	return n
}

// child steps from n along e, or returns nil.
func child(n *yamlv3.Node, e pathElem) *yamlv3.Node {
	n = resolve(n)
	if n == nil {
		return nil
	}
	if e.index >= 0 {
		if n.Kind == yamlv3.SequenceNode && e.index < len(n.Content) {
			return n.Content[e.index]
		}
		return nil
	}
	if n.Kind != yamlv3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == e.name {
			return n.Content[i+1]
		}
	}
	return nil
}

// line is the 1-based line (within the document) of the node at path, or of its
// deepest ancestor present. A field's line is its key's, where the reader looks.
func (t *yamlTree) line(path []pathElem) int {
	n, ln := t.root, t.root.Line
	for _, e := range path {
		c := child(n, e)
		if c == nil {
			break
		}
		ln = c.Line
		if e.index < 0 {
			ln = keyLine(n, e.name, c.Line)
		}
		n = c
	}
	return ln
}

func keyLine(parent *yamlv3.Node, key string, fallback int) int {
	parent = resolve(parent)
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == key {
			return parent.Content[i].Line
		}
	}
	return fallback
}

// typeError finds the value a JSON type error is about. encoding/json names the field
// by its names alone ("spec.template.spec.containers.ports.containerPort"), so every
// list on the way is searched for an element whose value at the path has the JSON kind
// the error reports ("string", "number", "bool", "array", "object"). It returns the
// line and the field path with the list indexes found, relative to prefix, or ok false.
func (t *yamlTree) typeError(prefix []pathElem, names []string, value string) (line int, path string, ok bool) {
	start := t.root
	for _, e := range prefix {
		if start = child(start, e); start == nil {
			return 0, "", false
		}
	}
	kind, _, _ := strings.Cut(value, " ")
	var trail []string
	var search func(n *yamlv3.Node, names []string) *yamlv3.Node
	search = func(n *yamlv3.Node, names []string) *yamlv3.Node {
		n = resolve(n)
		if n == nil {
			return nil
		}
		if len(names) == 0 {
			if jsonKindOf(n) == kind {
				return n
			}
			return nil
		}
		if n.Kind == yamlv3.SequenceNode {
			for i, c := range n.Content {
				trail = append(trail, "["+strconv.Itoa(i)+"]")
				if found := search(c, names); found != nil {
					return found
				}
				trail = trail[:len(trail)-1]
			}
			return nil
		}
		trail = append(trail, "."+names[0])
		if found := search(child(n, pathElem{name: names[0], index: -1}), names[1:]); found != nil {
			return found
		}
		trail = trail[:len(trail)-1]
		return nil
	}
	found := search(start, names)
	if found == nil {
		return 0, "", false
	}
	return found.Line, strings.TrimPrefix(strings.Join(trail, ""), "."), true
}

func jsonKindOf(n *yamlv3.Node) string {
	switch n.Kind {
	case yamlv3.MappingNode:
		return "object"
	case yamlv3.SequenceNode:
		return "array"
	case yamlv3.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "number"
		case "!!bool":
			return "bool"
		case "!!null":
			return "null"
		}
		return "string"
	}
	return ""
}
