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
	// owner is the engine that published the index: a Ref names it through the index
	// its class was computed under (see Ref).
	owner  *Engine
	blocks []ipBlock
	// IPv4 intervals are searched as integers, the common case on the hot path.
	v4start, v4class []uint32
	v6               []interval
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
	for _, iv := range x.intervals(netip.IPv4Unspecified(), seen) {
		a := iv.start.As4()
		x.v4start = append(x.v4start, uint32(a[0])<<24|uint32(a[1])<<16|uint32(a[2])<<8|uint32(a[3]))
		x.v4class = append(x.v4class, iv.class)
	}
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
	if ip.Is4() {
		if len(x.v4start) == 0 {
			return 0
		}
		a := ip.As4()
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		// The last interval starting at or below v; the first starts at 0.0.0.0.
		lo, hi := 0, len(x.v4start)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if x.v4start[m] <= v {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return x.v4class[lo-1]
	}
	if !ip.Is6() || ip.Zone() != "" {
		return 0
	}
	table := x.v6
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

// bitset is a fixed-size set of small integers.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
