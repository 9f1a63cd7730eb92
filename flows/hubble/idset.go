package hubble

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// idSet indexes the flow UUIDs the de-duplication ring remembers. Every flow adds one and
// evicts one, and a Go map's insert and delete were a tenth of the source's CPU time:
// this is open addressing with linear probing and deletion by shifting back (no
// tombstones), over 8-byte slots that hold half the UUID's hash and its place in the
// ring, so that the index of a 64k window stays in the CPU's cache. The UUID itself is
// compared in the ring. UUIDs are random already; the seed keeps a server from choosing
// colliding ones.
type idSet struct {
	slots []uint64 // 0 empty, else the hash's high 32 bits and the ring position + 1
	n     int
	shift uint // 64 - log2(len(slots)), at least 32
	seed  uint64
}

// newIDSet returns an index for a ring of capacity entries, at most half full. A slot
// keeps 32 bits of hash and of ring position, so capacity must stay below 2^31: a ring
// that size would take hundreds of gigabytes first.
func newIDSet(capacity int) *idSet {
	size := 8
	for size < 2*capacity {
		size <<= 1
	}
	return &idSet{slots: make([]uint64, size), shift: uint(64 - bits.TrailingZeros(uint(size))), seed: rand.Uint64()}
}

func (s *idSet) hash(id *[16]byte) uint64 {
	h := binary.LittleEndian.Uint64(id[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(id[8:]), 31) ^ s.seed
	return h * 0x9e3779b97f4a7c15
}

// home is the first slot to probe for a slot value or hash: both start with the same
// high 32 bits.
func (s *idSet) home(h uint64) int { return int(h >> s.shift) }

// has reports whether id is indexed; ring holds the entries the positions name.
func (s *idSet) has(id [16]byte, ring []dedupEntry) bool {
	h := s.hash(&id)
	mask := len(s.slots) - 1
	for i := s.home(h); ; i = (i + 1) & mask {
		sl := s.slots[i]
		if sl == 0 {
			return false
		}
		if sl>>32 == h>>32 && ring[uint32(sl)-1].id == id {
			return true
		}
	}
}

// add indexes id at ring position pos; id must not be indexed, the set must not be full.
func (s *idSet) add(id [16]byte, pos int) {
	h := s.hash(&id)
	mask := len(s.slots) - 1
	i := s.home(h)
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = h>>32<<32 | uint64(pos+1)
	s.n++
}

// remove drops id, indexed at ring position pos, moving back the slots after it that
// would otherwise no longer be found from their home.
func (s *idSet) remove(id [16]byte, pos int) {
	h := s.hash(&id)
	mask := len(s.slots) - 1
	i := s.home(h)
	for {
		sl := s.slots[i]
		if sl == 0 {
			return
		}
		if uint32(sl) == uint32(pos+1) {
			break
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; s.slots[j] != 0; j = (j + 1) & mask {
		// The slot at j may fill the hole at i unless its home lies cyclically in (i, j].
		if h := s.home(s.slots[j]); (j-h)&mask >= (j-i)&mask {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = 0
	s.n--
}

func (s *idSet) len() int { return s.n }
