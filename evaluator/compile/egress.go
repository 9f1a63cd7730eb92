package compile

import (
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// internetTarget records an internet target's addresses. Domains cannot be expressed in
// a NetworkPolicy (it matches addresses, and a name's addresses change), so they are
// reported rather than guessed.
func (c *compiler) internetTarget(object string, clients []cluster.WorkloadID, t intents.Target, src IntentRef) {
	in := t.Internet
	if in == nil {
		c.warn(object, "target %q: internet target without addresses; ignored", t.Raw)
		return
	}
	if len(in.Domains) > 0 {
		c.warn(object, "target %q: domains %s cannot be compiled to NetworkPolicy (it matches addresses only); egress to them stays denied",
			t.Raw, strings.Join(in.Domains, ", "))
	}
	var cidrs []string
	for _, ip := range in.IPs {
		cidr, canonical, ok := parseCIDR(ip)
		switch {
		case !ok:
			c.warn(object, "target %q: %q is neither an IP address nor a CIDR; ignored", t.Raw, ip)
			continue
		case !canonical:
			c.warn(object, "target %q: %q has host bits set; allowing %s", t.Raw, ip, cidr)
		}
		cidrs = append(cidrs, cidr)
	}
	if len(cidrs) == 0 {
		return
	}
	var ports []networkingv1.NetworkPolicyPort
	seen := map[int32]bool{}
	for _, p := range in.Ports {
		if p < 1 || p > 65535 {
			c.warn(object, "target %q: port %d out of range; ignored", t.Raw, p)
			continue
		}
		if !seen[p] {
			seen[p] = true
			// Otterize internet targets list bare port numbers; they mean TCP, the API
			// server's default protocol.
			ports = append(ports, numericPort(corev1.ProtocolTCP, p))
		}
	}
	if len(in.Ports) > 0 && len(ports) == 0 {
		// Every listed port was bad: allowing all ports would be wider than written.
		return
	}
	key := portsKey(ports)
	for _, cl := range clients {
		es := c.clients[cl]
		r := es.internet[key]
		if r == nil {
			var ps portSet
			ps.add(ports...)
			r = &internetRule{ports: ps.list(), cidrs: map[string]bool{}, sources: map[IntentRef]bool{}}
			if len(ports) == 0 {
				r.ports = nil
			}
			es.internet[key] = r
		}
		for _, cidr := range cidrs {
			r.cidrs[cidr] = true
		}
		r.sources[src] = true
	}
}

// parseCIDR reads an address (as a host prefix) or a CIDR. canonical is false when the
// CIDR had host bits set; the API server rejects such CIDRs on new objects, so the
// masked form is used.
func parseCIDR(s string) (cidr string, canonical, ok bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()).String(), true, true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", false, false
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return "", false, false
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	m := p.Masked()
	return m.String(), m == p, true
}

// egressPlans renders the egress policies of one client: DNS first, then one rule per
// server, then one rule per internet port list.
func (c *compiler) egressPlans(es *egressSet) []*plan {
	dns := networkingv1.NetworkPolicyPeer{}
	if c.o.DNS.NamespaceSelector != nil {
		dns.NamespaceSelector = newSelector(c.o.DNS.NamespaceSelector).sel
	}
	if c.o.DNS.PodSelector != nil {
		dns.PodSelector = newSelector(c.o.DNS.PodSelector).sel
	}
	var dnsPorts portSet
	if len(c.o.DNS.Ports) == 0 {
		dnsPorts.addAll()
	} else {
		dnsPorts.add(c.o.DNS.Ports...)
	}
	egress := []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{dns}, Ports: dnsPorts.list()}}
	origins := []RuleOrigin{{Peer: PeerDNS}}
	sources := []map[IntentRef]bool{nil}

	for _, srv := range sortedIDs(es.rules) {
		r := es.rules[srv]
		peers := c.peersOf(srv)
		if len(peers) == 0 {
			continue
		}
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: r.ports.list()})
		origins = append(origins, RuleOrigin{Workload: &srv, Intents: sortedRefs(r.sources)})
		sources = append(sources, r.sources)
	}
	for _, key := range sortedKeys(es.internet) {
		r := es.internet[key]
		var to []networkingv1.NetworkPolicyPeer
		for _, cidr := range sortedCIDRs(r.cidrs) {
			to = append(to, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr}})
		}
		var ports []networkingv1.NetworkPolicyPort
		for _, p := range r.ports {
			ports = append(ports, deepCopyPort(p))
		}
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{To: to, Ports: ports})
		origins = append(origins, RuleOrigin{Peer: PeerInternet, Intents: sortedRefs(r.sources)})
		sources = append(sources, r.sources)
	}

	plans := c.identityPlans("client", egressPrefix, es.id)
	for _, pl := range plans {
		pl.p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		pl.p.Spec.Egress = (&networkingv1.NetworkPolicySpec{Egress: egress}).DeepCopy().Egress
		annotate(pl.p, origins, sources)
	}
	return plans
}

// sortedCIDRs orders CIDRs numerically, IPv4 first, rather than as strings, so that
// 9.0.0.0/8 comes before 10.0.0.0/8.
func sortedCIDRs(m map[string]bool) []string {
	ps := make([]netip.Prefix, 0, len(m))
	for s := range m {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	sort.Slice(ps, func(i, j int) bool {
		if c := ps[i].Addr().Compare(ps[j].Addr()); c != 0 {
			return c < 0
		}
		return ps[i].Bits() < ps[j].Bits()
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
