package evaluator

import (
	"net/netip"
	"sort"
)

// ipIndex folds every ipBlock of the policy set into address classes: two addresses are
// in the same class iff exactly the same ipBlocks contain them. The class, not the
// address, goes into the cache key, so verdicts for the whole internet side of a
// "0.0.0.0/0 except 10.0.0.0/8" policy share a handful of cache entries instead of one
// per address.
//
// The prefixes' first addresses and the addresses just past their ends cut each family
// into intervals that no prefix boundary crosses, so every address of an interval is in
// the same blocks. Lookup is a binary search over the interval starts: its cost grows
// with the log of the number of distinct prefixes, not with the number of policies.
type ipIndex struct {
	blocks []ipBlock
	v4, v6 []interval
	// classes[c] is the set of blocks (indexes into blocks) containing class c.
	// Class 0 contains no block; it is also the class of an unknown address.
	classes []bitset
}

type interval struct {
	start netip.Addr
	class uint32
}

func newIPIndex(blocks []ipBlock) ipIndex {
	x := ipIndex{blocks: blocks, classes: []bitset{newBitset(len(blocks))}}
	if len(blocks) == 0 {
		return x
	}
	seen := map[string]uint32{string(bitsetKey(x.classes[0])): 0}
	x.v4 = x.intervals(netip.IPv4Unspecified(), seen)
	x.v6 = x.intervals(netip.IPv6Unspecified(), seen)
	return x
}

// intervals cuts the family of first (its lowest address) at every block boundary.
func (x *ipIndex) intervals(first netip.Addr, seen map[string]uint32) []interval {
	cuts := []netip.Addr{first}
	for _, b := range x.blocks {
		for _, p := range append([]netip.Prefix{b.cidr}, b.except...) {
			if p.Addr().BitLen() != first.BitLen() {
				continue
			}
			cuts = append(cuts, p.Addr())
			if next := lastAddr(p).Next(); next.IsValid() {
				cuts = append(cuts, next)
			}
		}
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].Less(cuts[j]) })
	var out []interval
	for i, a := range cuts {
		if i > 0 && a == cuts[i-1] {
			continue
		}
		set := newBitset(len(x.blocks))
		for bi, b := range x.blocks {
			if b.contains(a) {
				set.set(bi)
			}
		}
		key := string(bitsetKey(set))
		c, ok := seen[key]
		if !ok {
			c = uint32(len(x.classes))
			seen[key] = c
			x.classes = append(x.classes, set)
		}
		// Adjacent intervals in one class are one interval.
		if len(out) > 0 && out[len(out)-1].class == c {
			continue
		}
		out = append(out, interval{start: a, class: c})
	}
	return out
}

// classOf returns the class of ip; 0 for an invalid address.
func (x *ipIndex) classOf(ip netip.Addr) uint32 {
	var table []interval
	switch {
	case ip.Is4():
		table = x.v4
	case ip.Is6() && ip.Zone() == "":
		table = x.v6
	}
	// The last interval starting at or below ip; the first starts at the family's
	// lowest address, so one exists whenever the table is not empty.
	lo, hi := 0, len(table)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if table[m].start.Compare(ip) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0
	}
	return table[lo-1].class
}

// contains reports whether addresses of class c are in block b.
func (x *ipIndex) contains(c uint32, b int) bool { return x.classes[c].has(b) }

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

func bitsetKey(b bitset) []byte {
	out := make([]byte, 0, 8*len(b))
	for _, w := range b {
		for i := range 8 {
			out = append(out, byte(w>>(8*i)))
		}
	}
	return out
}
