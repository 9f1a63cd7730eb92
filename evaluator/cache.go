package evaluator

import (
	"math/bits"
	"sync/atomic"
)

// defaultCacheEntries bounds the verdict cache. Keys are identities and address classes,
// so cluster-internal traffic needs few entries; what can grow without bound is the
// port dimension (a port scan from the internet), which the bound absorbs. An entry is
// about 200 bytes, so the default costs at most a couple of hundred MB in the worst case
// and usually a tiny fraction of it.
const defaultCacheEntries = 1 << 20

// initialCacheSlots is the size of a fresh cache. Every policy update starts a new one,
// so it must be cheap to make; it doubles as verdicts arrive.
const initialCacheSlots = 1 << 10

// cacheWays is how many slots a key may occupy: a lookup probes at most this many, and
// when all are taken in a full cache an insertion replaces one of them.
const cacheWays = 4

// verdictCache maps cacheKey to Verdict. Lookups take no lock and write nothing: a
// table of atomic pointers to immutable entries, probed linearly over cacheWays slots.
// Insertions come from the miss path, which holds Engine.mu, so writers never race each
// other. The table doubles while below its bound and, once there, an insertion evicts
// within its ways: a verdict costs about a microsecond to recompute, so any eviction is
// cheap, and this one needs no bookkeeping on the read side.
type verdictCache struct {
	table atomic.Pointer[cacheTable]
	limit int // entries
	// rotor picks the way to evict; writers only.
	rotor uint64
}

type cacheTable struct {
	mask  uint64
	slots []atomic.Pointer[cacheEntry]
	n     int // entries; writers only
}

type cacheEntry struct {
	key cacheKey
	v   Verdict
}

func newVerdictCache(limit int) *verdictCache {
	c := &verdictCache{limit: max(limit, cacheWays)}
	c.table.Store(newCacheTable(min(initialCacheSlots, ceilPow2(c.limit))))
	return c
}

func newCacheTable(slots int) *cacheTable {
	return &cacheTable{mask: uint64(slots - 1), slots: make([]atomic.Pointer[cacheEntry], slots)}
}

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// hash mixes a key's words (a variant of the wyhash/murmur finalizers).
func (k *cacheKey) hash() uint64 {
	h := uint64(k.src)<<32 | uint64(k.dst)
	h ^= (uint64(k.srcClass)<<32 | uint64(k.dstClass)) * 0x9e3779b97f4a7c15
	h ^= (uint64(uint32(k.port))<<32 | uint64(k.srcKind)<<24 | uint64(k.dstKind)<<16 | uint64(k.proto)<<8) * 0xc2b2ae3d27d4eb4f
	if k.ownNode {
		h ^= 0x165667b19e3779f9
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func (c *verdictCache) get(k *cacheKey) (*Verdict, bool) {
	t := c.table.Load()
	h := k.hash()
	for w := range uint64(cacheWays) {
		e := t.slots[(h+w)&t.mask].Load()
		if e == nil {
			return nil, false
		}
		if e.key == *k {
			return &e.v, true
		}
	}
	return nil, false
}

// put inserts a verdict; callers hold Engine.mu.
func (c *verdictCache) put(k *cacheKey, v Verdict) {
	t := c.table.Load()
	if t.n >= len(t.slots)/2 && len(t.slots) < ceilPow2(c.limit) {
		t = c.grow(t)
	}
	c.insert(t, &cacheEntry{key: *k, v: v})
}

func (c *verdictCache) insert(t *cacheTable, e *cacheEntry) {
	h := e.key.hash()
	for w := range uint64(cacheWays) {
		s := &t.slots[(h+w)&t.mask]
		old := s.Load()
		if old == nil {
			if t.n >= c.limit {
				// At the bound with room in this window: leave the verdict
				// uncached rather than grow past the bound.
				return
			}
			s.Store(e)
			t.n++
			return
		}
		if old.key == e.key {
			s.Store(e)
			return
		}
	}
	// Every way is taken: replace one. Replacing, never emptying, keeps lookups
	// right, since a lookup stops at the first empty slot.
	c.rotor++
	t.slots[(h+c.rotor%cacheWays)&t.mask].Store(e)
}

// grow publishes a table twice the size with every entry of t. Readers still holding t
// finish their lookups in it.
func (c *verdictCache) grow(t *cacheTable) *cacheTable {
	nt := newCacheTable(2 * len(t.slots))
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil {
			c.insert(nt, e)
		}
	}
	c.table.Store(nt)
	return nt
}

// len counts the cached verdicts, for tests.
func (c *verdictCache) len() int { return c.table.Load().n }
