package soak

import "math/rand/v2"

// edgeIndex finds an edge's position in nsData.edges by key. It is an open-addressing table
// with linear probing whose slots hold only the position (plus 8 bits of the hash, so most
// probes that miss never touch the edge record); the keys live in the edges themselves. A
// slot costs 4 bytes, so at the table's load of 3/8 to 3/4 an edge pays 5–11 bytes for its
// index, where a Go map entry for the same key costs 25–40.
type edgeIndex struct {
	slots []uint32 // 0 = empty, else tag<<posBits | (position+1)
	n     int
	seed  uint64
}

const (
	posBits = 24
	posMask = 1<<posBits - 1
	// maxIndexed bounds the edges of one namespace (Options.MaxEdgesPerNamespace).
	maxIndexed = posMask - 1
)

func newEdgeIndex() edgeIndex { return edgeIndex{seed: rand.Uint64()} }

// mix is the 64-bit finalizer of MurmurHash3: every input bit affects every output bit, which
// linear probing needs.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// hash is seeded per table, so no choice of peers or ports can make probing degrade on
// purpose.
func (ix *edgeIndex) hash(k ekey) uint64 {
	h := mix(uint64(k.src)<<32 | uint64(k.dst) ^ ix.seed)
	return mix(h ^ uint64(uint32(k.port))<<16 ^ uint64(k.proto))
}

func slotTag(h uint64) uint32 { return uint32(h>>56) << posBits }

// get returns the position of the edge with key k.
func (ix *edgeIndex) get(edges []edge, k ekey) (uint32, bool) {
	if ix.n == 0 {
		return 0, false
	}
	h := ix.hash(k)
	mask := uint64(len(ix.slots) - 1)
	tag := slotTag(h)
	for i := h & mask; ; i = (i + 1) & mask {
		s := ix.slots[i]
		if s == 0 {
			return 0, false
		}
		if s&^posMask == tag {
			if pos := s&posMask - 1; edges[pos].ekey == k {
				return pos, true
			}
		}
	}
}

// slotOf returns the slot holding the edge with key k, which must be indexed.
func (ix *edgeIndex) slotOf(edges []edge, k ekey) uint64 {
	h := ix.hash(k)
	mask := uint64(len(ix.slots) - 1)
	tag := slotTag(h)
	for i := h & mask; ; i = (i + 1) & mask {
		if s := ix.slots[i]; s&^posMask == tag && edges[s&posMask-1].ekey == k {
			return i
		}
	}
}

// add indexes edges[pos], whose key must not be indexed yet; edges[:pos] are all indexed.
func (ix *edgeIndex) add(edges []edge, pos uint32) {
	if (ix.n+1)*4 > len(ix.slots)*3 {
		ix.rebuild(edges[:pos+1], max(16, 2*len(ix.slots)))
		return
	}
	ix.insert(edges[pos].ekey, pos)
	ix.n++
}

func (ix *edgeIndex) insert(k ekey, pos uint32) {
	h := ix.hash(k)
	mask := uint64(len(ix.slots) - 1)
	i := h & mask
	for ix.slots[i] != 0 {
		i = (i + 1) & mask
	}
	ix.slots[i] = slotTag(h) | (pos + 1)
}

// move records that the edge with key k now sits at pos.
func (ix *edgeIndex) move(edges []edge, k ekey, pos uint32) {
	i := ix.slotOf(edges, k)
	ix.slots[i] = ix.slots[i]&^posMask | (pos + 1)
}

// remove unindexes the edge with key k, which must be indexed, closing the hole by shifting
// later entries of the probe run back (no tombstones, so lookups never slow down).
func (ix *edgeIndex) remove(edges []edge, k ekey) {
	mask := uint64(len(ix.slots) - 1)
	i := ix.slotOf(edges, k)
	for j := (i + 1) & mask; ix.slots[j] != 0; j = (j + 1) & mask {
		home := ix.hash(edges[ix.slots[j]&posMask-1].ekey) & mask
		// The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			ix.slots[i] = ix.slots[j]
			i = j
		}
	}
	ix.slots[i] = 0
	ix.n--
}

// shrink rebuilds a table that expiry left mostly empty.
func (ix *edgeIndex) shrink(edges []edge) {
	if len(ix.slots) > 64 && ix.n*8 < len(ix.slots) {
		size := 16
		for size*3 < ix.n*4*2 {
			size *= 2
		}
		ix.rebuild(edges, size)
	}
}

func (ix *edgeIndex) rebuild(edges []edge, size int) {
	ix.slots = make([]uint32, size)
	ix.n = len(edges)
	for pos := range edges {
		ix.insert(edges[pos].ekey, uint32(pos))
	}
}
