package evaluator

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"sync/atomic"
)

// defaultCacheEntries bounds the verdict cache. Keys are identities and address classes,
// so cluster-internal traffic needs few entries; what can grow without bound is the
// port dimension (a port scan from the internet), which the bound absorbs. A slot is 32
// bytes and verdicts are shared, so the default costs at most a few tens of MB.
const defaultCacheEntries = 1 << 20

// initialCacheSlots is the size of a fresh cache. Every policy update starts a new one,
// so it must be cheap to make; it doubles as verdicts arrive.
const initialCacheSlots = 1 << 10

// cacheWays is how many slots a key may occupy: a lookup probes at most this many, and
// when all are taken in a full cache an insertion replaces one of them.
const cacheWays = 8

// minVerdicts is how many distinct verdicts even the smallest cache keeps, so that a
// cache bounded to a few entries (in tests) still evicts entries rather than verdicts.
const minVerdicts = 1 << 10

// verdictCache maps cacheKey to a shared, immutable *Verdict. At cluster scale the
// table does not fit in any CPU cache, so its layout is chosen for the number of cache
// lines a hit touches: a slot holds the key itself (three words) and the index of its
// verdict in a small table of distinct verdicts (there are few: verdicts depend on
// policies, not on traffic), 32 bytes, so a hit in the first way reads one line of the
// table plus the verdict table, which stays hot.
//
// Lookups take no lock and write nothing. Each slot is a seqlock: the writer makes its
// sequence odd, writes the key words, then publishes an even sequence with the verdict
// index; a reader that sees the same even sequence before and after reading the key
// read a key that belongs to that index. A reader that meets a slot being written
// reports a miss, and the miss path (under Engine.mu) waits for the writer. Every word
// is accessed atomically, so this is race-free in the memory model's terms, not only in
// practice. Insertions come from the miss path, which holds Engine.mu, so writers never
// race each other.
//
// The table doubles at half full while below its bound, and an insertion into a full
// window (always, once at the bound) evicts within its ways: a verdict costs about a
// microsecond to recompute, so any eviction is cheap, and this one needs no bookkeeping
// on the read side.
type verdictCache struct {
	table atomic.Pointer[cacheTable]
	// verdicts are the distinct verdicts, by index; the slice grows by publication of a
	// new header, its elements are never modified.
	verdicts atomic.Pointer[[]*Verdict]
	limit    int // entries
	// Writers only: the way to evict next, and the index of each distinct verdict by
	// its content.
	rotor uint64
	// byHash finds a verdict by a hash of its content (hashVerdict): at cluster scale
	// verdicts are new on most misses (their rules name the peers' workloads), and
	// hashing the content beats building and hashing a string key of it. Verdicts
	// whose hashes collide with an earlier one are listed in collided.
	byHash   map[uint64]uint32
	collided map[uint64][]uint32
	seed     maphash.Seed
}

type cacheTable struct {
	mask  uint64
	slots []cacheSlot
	n     int // entries; writers only
}

// cacheSlot is a packed key and meta = sequence<<32 | verdict index. meta 0 is an
// empty slot (a written slot's sequence is never 0); an odd sequence is a write in
// progress.
type cacheSlot struct {
	key  [3]atomic.Uint64
	meta atomic.Uint64
}

// packedKey is a cacheKey as the three words a slot stores.
type packedKey [3]uint64

func (k *cacheKey) pack() packedKey {
	var own uint64
	if k.ownNode {
		own = 1
	}
	return packedKey{
		uint64(k.src) | uint64(k.dst)<<32,
		uint64(k.srcClass) | uint64(k.dstClass)<<32,
		uint64(uint32(k.port)) | uint64(k.srcKind)<<32 | uint64(k.dstKind)<<40 | uint64(k.proto)<<48 | own<<56,
	}
}

// hash mixes a key's words with wyhash's multiply-fold. Keys differ in few bits (small
// identity numbers, classes and ports), and a weaker mix that let them cluster made
// windows overflow, and the table grow, at a few percent load.
func (k *packedKey) hash() uint64 {
	return mum(mum(k[0]^0xa0761d6478bd642f, k[1]^0xe7037ed1a0b428db)^k[2], 0x8ebc6af09c88c6e3)
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func newVerdictCache(limit int) *verdictCache {
	c := &verdictCache{limit: max(limit, cacheWays), byHash: map[uint64]uint32{}, seed: maphash.MakeSeed()}
	c.table.Store(newCacheTable(min(initialCacheSlots, ceilPow2(c.limit))))
	c.verdicts.Store(new([]*Verdict))
	return c
}

func newCacheTable(slots int) *cacheTable {
	return &cacheTable{mask: uint64(slots - 1), slots: make([]cacheSlot, slots)}
}

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

const seqOne = 1 << 32

func (c *verdictCache) get(k *cacheKey) (*Verdict, bool) {
	pk := k.pack()
	return c.getPacked(&pk)
}

func (c *verdictCache) getPacked(k *packedKey) (*Verdict, bool) {
	t := c.table.Load()
	// Loaded before the slot, so that the two loads overlap instead of chaining; a
	// verdict newer than this header is found by loading it again.
	vs := c.verdicts.Load()
	h := k.hash()
	for w := range uint64(cacheWays) {
		s := &t.slots[(h+w)&t.mask]
		m := s.meta.Load()
		if m == 0 || m&seqOne != 0 {
			return nil, false // empty, or being written: the miss path decides
		}
		if s.key[0].Load() == k[0] && s.key[1].Load() == k[1] && s.key[2].Load() == k[2] {
			if s.meta.Load() != m {
				return nil, false
			}
			i := uint32(m)
			if int(i) >= len(*vs) {
				// Published after vs was loaded, and before its index: a
				// header loaded now has it.
				vs = c.verdicts.Load()
			}
			return (*vs)[i], true
		}
	}
	return nil, false
}

// put inserts a verdict and returns the shared copy the cache hands out for it; callers
// hold Engine.mu.
func (c *verdictCache) put(k *cacheKey, v Verdict) *Verdict { return c.putRef(k, &v) }

// putRef is put without copying v, which it does not keep: a caller's verdict on the
// stack stays there on a miss that finds its content cached already.
func (c *verdictCache) putRef(k *cacheKey, v *Verdict) *Verdict {
	idx, vp, ok := c.intern(v)
	if !ok {
		out := new(Verdict)
		*out = *v
		return out
	}
	t := c.table.Load()
	if t.n >= len(t.slots)/2 && len(t.slots) < ceilPow2(c.limit) {
		t = c.grow(t)
	}
	pk := k.pack()
	// A full window below the bound evicts too, rather than doubling the table: the
	// windows that fill up are linear probing's odd long clusters, and a table grown
	// for them (measured: to a fifth full) costs every lookup more in cache misses
	// than the few evicted keys cost in recomputation.
	c.insert(t, &pk, idx)
	return vp
}

// intern returns the index of v's content in the verdict table, adding it when new.
// ok is false when the table is at the cache's bound, which only a pathological policy
// set can reach: the verdict then goes uncached.
func (c *verdictCache) intern(v *Verdict) (uint32, *Verdict, bool) {
	h := hashVerdict(c.seed, v)
	vs := *c.verdicts.Load()
	first, seen := c.byHash[h]
	if seen {
		if sameVerdict(vs[first], v) {
			return first, vs[first], true
		}
		for _, i := range c.collided[h] {
			if sameVerdict(vs[i], v) {
				return i, vs[i], true
			}
		}
	}
	if len(vs) >= max(c.limit, minVerdicts) {
		return 0, nil, false
	}
	i := uint32(len(vs))
	vp := new(Verdict)
	*vp = *v
	nvs := append(vs, vp)
	c.verdicts.Store(&nvs)
	if !seen {
		c.byHash[h] = i
	} else {
		if c.collided == nil {
			c.collided = map[uint64][]uint32{}
		}
		c.collided[h] = append(c.collided[h], i)
	}
	return i, vp, true
}

// hashVerdict hashes what sameVerdict compares.
func hashVerdict(seed maphash.Seed, v *Verdict) uint64 {
	h := uint64(0)
	if v.Allowed {
		h = 1
	}
	for _, d := range [2]*Direction{&v.Egress, &v.Ingress} {
		var allowed uint64
		if d.Allowed {
			allowed = 1
		}
		h = mum(h^allowed<<1^uint64(len(d.Isolated))<<2^uint64(len(d.AllowedBy))<<32, 0x9e3779b97f4a7c15)
		if d.Exempt != NotExempt {
			h = mum(h^maphash.String(seed, string(d.Exempt)), 0xbf58476d1ce4e5b9)
		}
		for i := range d.Isolated {
			h = mum(h^maphash.String(seed, d.Isolated[i].Namespace), 0xa0761d6478bd642f)
			h = mum(h^maphash.String(seed, d.Isolated[i].Name), 0xe7037ed1a0b428db)
		}
		for i := range d.AllowedBy {
			r := &d.AllowedBy[i]
			h = mum(h^maphash.String(seed, r.Policy.Namespace), 0xa0761d6478bd642f)
			h = mum(h^maphash.String(seed, r.Policy.Name)^uint64(r.Index), 0xe7037ed1a0b428db)
		}
	}
	return h
}

// sameVerdict reports whether a and b have the same content.
func sameVerdict(a, b *Verdict) bool {
	return a.Allowed == b.Allowed && sameDirection(&a.Egress, &b.Egress) && sameDirection(&a.Ingress, &b.Ingress)
}

func sameDirection(a, b *Direction) bool {
	return a.Allowed == b.Allowed && a.Exempt == b.Exempt &&
		slices.Equal(a.Isolated, b.Isolated) && slices.Equal(a.AllowedBy, b.AllowedBy)
}

// insert stores k in t; when every way of its window is taken by other keys it
// replaces one.
func (c *verdictCache) insert(t *cacheTable, k *packedKey, idx uint32) {
	h := k.hash()
	for w := range uint64(cacheWays) {
		s := &t.slots[(h+w)&t.mask]
		m := s.meta.Load()
		if m == 0 {
			if t.n >= c.limit {
				// At the bound with room in this window: leave the verdict
				// uncached rather than grow past the bound.
				return
			}
			store(s, k, idx)
			t.n++
			return
		}
		if s.key[0].Load() == k[0] && s.key[1].Load() == k[1] && s.key[2].Load() == k[2] {
			store(s, k, idx)
			return
		}
	}
	// Every way is taken: replace one. Replacing, never emptying, keeps lookups
	// right, since a lookup stops at the first empty slot.
	c.rotor++
	store(&t.slots[(h+c.rotor%cacheWays)&t.mask], k, idx)
}

// store writes a slot under its seqlock (see verdictCache).
func store(s *cacheSlot, k *packedKey, idx uint32) {
	seq := uint32(s.meta.Load() >> 32)
	s.meta.Store(uint64(seq|1)<<32 | uint64(idx))
	s.key[0].Store(k[0])
	s.key[1].Store(k[1])
	s.key[2].Store(k[2])
	if seq = (seq | 1) + 1; seq == 0 {
		seq = 2 // never 0, which marks an empty slot
	}
	s.meta.Store(uint64(seq)<<32 | uint64(idx))
}

// grow publishes a table twice the size with every entry of t. Readers still holding t
// finish their lookups in it.
func (c *verdictCache) grow(t *cacheTable) *cacheTable {
	nt := newCacheTable(2 * len(t.slots))
	for i := range t.slots {
		s := &t.slots[i]
		if m := s.meta.Load(); m != 0 {
			k := packedKey{s.key[0].Load(), s.key[1].Load(), s.key[2].Load()}
			c.insert(nt, &k, uint32(m))
		}
	}
	c.table.Store(nt)
	return nt
}

// len counts the cached verdicts, for tests.
func (c *verdictCache) len() int { return c.table.Load().n }
