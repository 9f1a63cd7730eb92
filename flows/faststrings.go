package flows

import (
	"hash/maphash"
	"slices"
)

// String tables of the fast decoder: the strings of flow lines (namespaces, pod names,
// labels, node names) repeat from line to line, so a decoder keeps the ones it has
// seen and hands out the same Go strings instead of allocating them again.

// hashSeed keys every table of every decoder; the tables live in memory only.
var hashSeed = maphash.MakeSeed()

// hashOf hashes b for the tables below; never 0, which marks an empty slot.
func hashOf(b []byte) uint64 { return maphash.Bytes(hashSeed, b) | 1 }

// str returns s as a Go string, shared with earlier lines when it has been seen.
func (d *fastDecoder) str(s []byte) string { return d.intern.get(s, hashOf(s)) }

// internTable is an open-addressing set of strings. It is emptied when full: it only
// saves allocations.
type internTable struct {
	slots []internSlot
	n     int
}

type internSlot struct {
	hash uint64
	s    string
}

func (t *internTable) get(b []byte, h uint64) string {
	if len(t.slots) == 0 || t.n >= len(t.slots)/2 {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		slot := &t.slots[i]
		if slot.hash == h && slot.s == string(b) {
			return slot.s
		}
		if slot.hash == 0 {
			slot.hash, slot.s = h, string(b)
			t.n++
			return slot.s
		}
	}
}

func (t *internTable) grow() {
	t.slots, t.n = growSlots(t.slots, 1024, maxInterned, func(s *internSlot) uint64 { return s.hash })
}

// growSlots doubles an open-addressing table whose slots carry a non-zero hash when
// taken (at least minSlots), rehashing what it holds, or empties it once it has reached
// twice limit: interned text comes back at the cost of one allocation, so forgetting it
// all is simpler than evicting. It returns the table and how many slots are taken.
func growSlots[S any](slots []S, minSlots, limit int, hash func(*S) uint64) ([]S, int) {
	if len(slots) >= 2*limit {
		clear(slots)
		return slots, 0
	}
	grown := make([]S, max(minSlots, 2*len(slots)))
	mask := uint64(len(grown) - 1)
	n := 0
	for j := range slots {
		h := hash(&slots[j])
		if h == 0 {
			continue
		}
		for i := h & mask; ; i = (i + 1) & mask {
			if hash(&grown[i]) == 0 {
				grown[i] = slots[j]
				n++
				break
			}
		}
	}
	return grown, n
}

// listTable is internTable for whole lists of strings, keyed by the list's bytes. The
// slices it hands out are shared by every Flow whose line held the same list, which is
// why Endpoint's slices are read-only (record.go).
type listTable struct {
	slots []listSlot
	n     int
}

type listSlot struct {
	hash uint64
	raw  string
	strs []string
}

// maxLists bounds the list table; it is emptied when full.
const maxLists = 1 << 14

// get returns the strings of the list whose bytes are raw; d.elems holds its elements.
// The result's capacity is its length, so an append by a caller copies.
func (t *listTable) get(d *fastDecoder, raw []byte) []string {
	if len(t.slots) == 0 || t.n >= len(t.slots)/2 {
		t.grow()
	}
	h := hashOf(raw)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		slot := &t.slots[i]
		if slot.hash == h && slot.raw == string(raw) {
			return slot.strs
		}
		if slot.hash == 0 {
			strs := make([]string, len(d.elems))
			for j, e := range d.elems {
				strs[j] = d.str(e)
			}
			*slot = listSlot{hash: h, raw: string(raw), strs: strs}
			t.n++
			return strs
		}
	}
}

func (t *listTable) grow() {
	t.slots, t.n = growSlots(t.slots, 256, maxLists, func(s *listSlot) uint64 { return s.hash })
}

// memoTable remembers stretches of lines and what they decoded to. A pod's "source" or
// "destination" object (its ID, identity, namespace, labels, pod name and workloads) is
// the same bytes in every flow of that pod, and it is most of a line; the members after
// it (type, node, direction, service, trace point, summary) repeat as a block too. A
// stretch found again is not read at all: its bytes are compared with the remembered
// ones and their decoded result reused.
//
// That is exact, not a heuristic: JSON is read left to right, so if the bytes at the
// current position begin with a remembered stretch that was read without declining, in
// the same place of the schema, they are read the same way again, whatever follows
// them. The key only chooses which remembered stretch to compare; a wrong guess is a
// miss, never a wrong result.
type memoTable[V any] struct {
	// slots hold what a lookup compares (the hash, and the stretch's bytes through a
	// string header) so that comparing does not wait for another pointer to be followed:
	// on a large cluster every hop is a likely cache miss. They form buckets of memoWays:
	// a full bucket replaces one of its stretches, so that a table at its size limit keeps
	// following the traffic instead of being emptied.
	slots []memoSlot[V]
	n     int
	bytes int    // of remembered stretches, bounded by maxMemoBytes
	next  uint32 // which way a full bucket replaces
}

type memoSlot[V any] struct {
	hash uint64
	raw  string // the stretch
	v    *V     // what it decodes to
}

const (
	// memoKeyBytes is how much of a stretch its key hashes: a pod's object starts with its
	// endpoint ID and identity, and the members after it with the flow type and node
	// name, which tell stretches apart well within these bytes.
	memoKeyBytes = 64
	memoWays     = 4
	// maxMemoSlots, maxMemoBytes and maxMemoRaw bound a table: room for the endpoints of
	// a cluster of 100,000 pods, a few tens of MiB; longer stretches are not remembered.
	maxMemoSlots = 1 << 17
	maxMemoBytes = 64 << 20
	maxMemoRaw   = 4 << 10
)

// memoKey is the key of the stretch starting at b[0].
func memoKey(b []byte) uint64 {
	return hashOf(b[:min(len(b), memoKeyBytes)])
}

// bucket returns the slots a key may be in.
func (t *memoTable[V]) bucket(h uint64) []memoSlot[V] {
	i := int(h>>32) & (len(t.slots) - 1) &^ (memoWays - 1)
	return t.slots[i : i+memoWays : i+memoWays]
}

// find returns what the remembered stretch that b starts with decodes to, and the
// stretch's length; nil when b starts with none.
func (t *memoTable[V]) find(h uint64, b []byte) (*V, int) {
	if len(t.slots) == 0 || h == 0 {
		// 0 is no key (hashOf never returns it, tailKey does when it has no guess), and
		// it is what an empty slot holds.
		return nil, 0
	}
	b0 := t.bucket(h)
	for i := range b0 {
		slot := &b0[i]
		if slot.hash == h && len(slot.raw) <= len(b) {
			v := slot.v
			// Dereferencing v (a nil check is a load) starts fetching it while the
			// bytes are compared, instead of after: the caller copies it on a hit.
			_ = *v
			if slot.raw == string(b[:len(slot.raw)]) {
				return v, len(slot.raw)
			}
		}
	}
	return nil, 0
}

// add remembers that raw decodes to v. Slices in v are shared by every line that reuses
// it: clipped, and never written again.
func (t *memoTable[V]) add(h uint64, raw []byte, v V) {
	if len(raw) > maxMemoRaw {
		return
	}
	if len(t.slots) == 0 || t.n >= len(t.slots)/2 && len(t.slots) < maxMemoSlots {
		t.grow()
	}
	b := t.bucket(h)
	k := 0
	for k < memoWays && b[k].v != nil {
		k++
	}
	for k == memoWays && len(t.slots) < maxMemoSlots {
		// A full bucket before the table is at its limit: make room rather than forget.
		t.grow()
		b = t.bucket(h)
		for k = 0; k < memoWays && b[k].v != nil; k++ {
		}
	}
	if k == memoWays {
		k = int(t.next % memoWays)
		t.next++
		t.n--
		t.bytes -= len(b[k].raw)
	}
	if t.bytes+len(raw) > maxMemoBytes {
		b[k] = memoSlot[V]{}
		return
	}
	b[k] = memoSlot[V]{hash: h, raw: string(raw), v: &v}
	t.n++
	t.bytes += len(raw)
}

// grow doubles the table; stretches that do not fit their new bucket are forgotten.
func (t *memoTable[V]) grow() {
	old := t.slots
	t.slots = make([]memoSlot[V], max(256, 2*len(old)))
	t.n, t.bytes = 0, 0
	for _, o := range old {
		if o.v == nil {
			continue
		}
		for k, slot := range t.bucket(o.hash) {
			if slot.v == nil {
				t.bucket(o.hash)[k] = o
				t.n++
				t.bytes += len(o.raw)
				break
			}
		}
	}
}

// cloneWorkloads copies a line's workloads for a Flow (and the memo) to keep.
func cloneWorkloads(w []Workload) []Workload {
	if len(w) == 0 {
		return nil
	}
	return slices.Clip(slices.Clone(w))
}
