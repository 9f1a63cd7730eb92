package hubble

import "hash/maphash"

// bytesMemo remembers byte strings the wire decoder has read and what they decoded to,
// so that the same bytes met again are compared instead of read: a pod's endpoint
// message, a workload's label list. The hash only picks the slot; a hit needs the whole
// key to be equal, so a collision is a miss, never a wrong result.
//
// The index is open addressing over 8-byte slots (half the hash, and where the entry
// is), the entries a dense slice: on profile M the endpoints of 20,000 pods are looked
// up at random, and a small index stays in the CPU's cache where slots holding whole
// entries did not. It is emptied when it reaches its limit: what it forgets comes back
// at the cost of one more decode, which is simpler than evicting and keeps memory
// bounded whatever the stream holds.
type bytesMemo[V any] struct {
	index   []uint64 // 0 empty, else the hash's high 32 bits and the entry's index + 1
	entries []memoEntry[V]
	limit   int // entries at most
	min     int // slots of the first index, a power of two
}

type memoEntry[V any] struct {
	hash uint64
	key  string
	val  V
}

var memoSeed = maphash.MakeSeed()

// memoHash hashes b for a bytesMemo.
func memoHash(b []byte) uint64 { return maphash.Bytes(memoSeed, b) }

func newBytesMemo[V any](minSlots, limit int) bytesMemo[V] {
	return bytesMemo[V]{limit: limit, min: minSlots}
}

// get returns the value remembered for b, whose memoHash (or any function of b alone)
// is h.
func (m *bytesMemo[V]) get(b []byte, h uint64) (*V, bool) {
	if len(m.index) == 0 {
		return nil, false
	}
	mask := uint64(len(m.index) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := m.index[i]
		if s == 0 {
			return nil, false
		}
		if uint32(s>>32) == uint32(h>>32) {
			if e := &m.entries[uint32(s)-1]; e.key == string(b) {
				return &e.val, true
			}
		}
	}
}

// put remembers v for b (not already there), copying b.
func (m *bytesMemo[V]) put(b []byte, h uint64, v V) {
	if len(m.entries) >= m.limit {
		clear(m.entries)
		m.entries = m.entries[:0]
		clear(m.index)
	}
	if len(m.index) == 0 || len(m.entries) >= len(m.index)/2 {
		m.grow()
	}
	m.entries = append(m.entries, memoEntry[V]{hash: h, key: string(b), val: v})
	m.insert(h, len(m.entries))
}

func (m *bytesMemo[V]) insert(h uint64, n int) {
	mask := uint64(len(m.index) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if m.index[i] == 0 {
			m.index[i] = h>>32<<32 | uint64(n)
			return
		}
	}
}

// grow doubles the index.
func (m *bytesMemo[V]) grow() {
	m.index = make([]uint64, max(m.min, 2*len(m.index)))
	for j := range m.entries {
		m.insert(m.entries[j].hash, j+1)
	}
}
