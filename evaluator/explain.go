package evaluator

import (
	"strconv"
	"strings"
)

// Reason explains v in one line, for logs and reports, e.g.
//
//	allowed: not isolated
//	allowed: ingress rule shop/allow-cart#0
//	denied: ingress isolated by shop/allow-cart, shop/default-deny; no rule allows it
//
// Allowed verdicts name what admitted each isolated direction; denied verdicts name only
// the denied directions, since those are what would have to change. Verdicts are
// cached per identity, not per pod, so they do not know the peer: ReasonFor names it.
func (v Verdict) Reason() string { return v.reason(nil) }

// ReasonFor is Reason with the connection the verdict was given for, e.g.
//
//	denied: ingress isolated by shop/allow-cart, shop/default-deny; no rule allows TCP/6379 from shop/frontend-abc
func (v Verdict) ReasonFor(c Connection) string { return v.reason(&c) }

func (v Verdict) reason(c *Connection) string {
	var b strings.Builder
	if v.Allowed {
		if v.Egress.Exempt == ExemptSelf {
			return "allowed: same pod"
		}
		b.WriteString("allowed: ")
		n := 0
		for _, d := range [...]struct {
			name string
			dir  Direction
		}{{"egress", v.Egress}, {"ingress", v.Ingress}} {
			switch {
			case len(d.dir.AllowedBy) > 0:
				if n > 0 {
					b.WriteString("; ")
				}
				n++
				b.WriteString(d.name)
				b.WriteString(" rule")
				if len(d.dir.AllowedBy) > 1 {
					b.WriteString("s")
				}
				for i, r := range d.dir.AllowedBy {
					if i > 0 {
						b.WriteString(",")
					}
					b.WriteString(" ")
					b.WriteString(r.String())
				}
			case d.dir.Exempt == ExemptOwnNode:
				if n > 0 {
					b.WriteString("; ")
				}
				n++
				b.WriteString(d.name)
				b.WriteString(" from own node")
			}
		}
		if n == 0 {
			b.WriteString("not isolated")
		}
		return b.String()
	}
	b.WriteString("denied: ")
	n := 0
	for _, d := range [...]struct {
		name, prep string
		dir        Direction
		peer       func(Connection) Endpoint
	}{
		{"egress", "to", v.Egress, func(c Connection) Endpoint { return c.Dst }},
		{"ingress", "from", v.Ingress, func(c Connection) Endpoint { return c.Src }},
	} {
		if d.dir.Allowed {
			continue
		}
		if n > 0 {
			b.WriteString("; ")
		}
		n++
		b.WriteString(d.name)
		b.WriteString(" isolated by ")
		for i, p := range d.dir.Isolated {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(p.String())
		}
		b.WriteString("; no rule allows ")
		if c == nil {
			b.WriteString("it")
			continue
		}
		b.WriteString(c.Service())
		b.WriteString(" ")
		b.WriteString(d.prep)
		b.WriteString(" ")
		b.WriteString(d.peer(*c).String())
	}
	return b.String()
}

func (r RuleRef) String() string { return r.Policy.String() + "#" + strconv.Itoa(r.Index) }

// Service is protocol/port, e.g. TCP/6379.
func (c Connection) Service() string {
	proto := string(c.Protocol)
	if proto == "" {
		proto = "unknown-protocol"
	}
	return proto + "/" + strconv.Itoa(int(c.Port))
}

func (c Connection) String() string {
	return c.Service() + " from " + c.Src.String() + " to " + c.Dst.String()
}

// String names the endpoint for humans: namespace/name for a pod, "node NAME (IP)" for
// a host, the address for an external endpoint.
func (e Endpoint) String() string {
	switch e.Kind {
	case Pod:
		if e.Pod != nil {
			return e.Pod.Key()
		}
	case Host:
		switch {
		case e.Node != "" && e.IP.IsValid():
			return "node " + e.Node + " (" + e.IP.String() + ")"
		case e.Node != "":
			return "node " + e.Node
		case e.IP.IsValid():
			return "node " + e.IP.String()
		}
		return "unknown node"
	}
	if e.IP.IsValid() {
		return e.IP.String()
	}
	return "unknown " + e.Kind.String() + " endpoint"
}
