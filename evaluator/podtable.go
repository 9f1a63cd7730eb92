package evaluator

import (
	"net/netip"
	"sync/atomic"
	"unsafe"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// podTable maps the pods the engine has seen to their identity, for the hot path, which
// reads it without a lock. It is sharded by address and copy-on-write per shard: an
// update rebuilds one shard (a few hundred slots even for a hundred thousand pods) and
// publishes it, so a pod event costs microseconds while lookups stay plain reads.
//
// Each shard is a flat open-addressing array whose slot holds the pod pointer and its
// entry side by side, one cache line: at cluster scale the table does not fit in cache,
// and a lookup that touches one line instead of a Go map's three is most of what a
// verdict costs there. Writers hold Engine.mu.
type podTable struct {
	shards [podShards]atomic.Pointer[podShard]
	// seen holds the pods interned on sight rather than through the snapshot or
	// UpdatePod (untracked entries), apart from shards: a pod first seen in a flow
	// then rebuilds a shard of the few such pods instead of one of the snapshot's
	// hundreds, and they are dropped together. A pod is in one of the two at most.
	seen [podShards]atomic.Pointer[podShard]
}

const (
	podShardBits = 8
	podShards    = 1 << podShardBits
)

type podEntry struct {
	id      uint32
	tracked bool
	// ip is the pod's primary address, normalized, and class its address class under
	// ips: the usual connection names a pod by that address, and the hot path then
	// needs neither the pod's fields nor the class search. An entry made before an
	// address-index change falls back to the search.
	class uint32
	ip    netip.Addr
	ips   *ipIndex
	ident *podIdent // read under Engine.mu only
}

type podSlot struct {
	pod *cluster.Pod // nil: empty
	e   podEntry
}

// podShard is immutable once published.
type podShard struct {
	mask  uint64
	n     int
	slots []podSlot
}

// podHash spreads pods by address. The address is only hashed, never turned back into
// a pointer; heap objects do not move. The top bits pick the shard, the low bits the
// slot.
func podHash(p *cluster.Pod) uint64 {
	h := uint64(uintptr(unsafe.Pointer(p))) >> 4
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}

func (t *podTable) get(p *cluster.Pod) (*podEntry, bool) {
	h := podHash(p)
	si := h >> (64 - podShardBits)
	if e, ok := t.shards[si].Load().find(p, h); ok {
		return e, true
	}
	return t.seen[si].Load().find(p, h)
}

// find looks p (hashed to h) up in s.
func (s *podShard) find(p *cluster.Pod, h uint64) (*podEntry, bool) {
	if s.n == 0 {
		return nil, false
	}
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		slot := &s.slots[i]
		if slot.pod == p {
			return &slot.e, true
		}
		if slot.pod == nil {
			return nil, false
		}
	}
}

// set adds or replaces p's entry.
func (t *podTable) set(p *cluster.Pod, e podEntry) {
	h := podHash(p)
	si := h >> (64 - podShardBits)
	to, other := &t.shards[si], &t.seen[si]
	if !e.tracked {
		to, other = other, to
	}
	if _, ok := other.Load().find(p, h); ok {
		other.Store(other.Load().rebuild(p, nil))
	}
	to.Store(to.Load().rebuild(p, &e))
}

func (t *podTable) remove(p *cluster.Pod) {
	h := podHash(p)
	si := h >> (64 - podShardBits)
	for _, sh := range [2]*atomic.Pointer[podShard]{&t.shards[si], &t.seen[si]} {
		if _, ok := sh.Load().find(p, h); ok {
			sh.Store(sh.Load().rebuild(p, nil))
		}
	}
}

// rebuild returns a copy of s with p set to e, or removed when e is nil.
func (s *podShard) rebuild(p *cluster.Pod, e *podEntry) *podShard {
	n := s.n + 1
	out := newPodShard(n)
	for i := range s.slots {
		if slot := &s.slots[i]; slot.pod != nil && slot.pod != p {
			out.insert(slot.pod, &slot.e)
		}
	}
	if e != nil {
		out.insert(p, e)
	}
	return out
}

func newPodShard(n int) *podShard {
	size := 8
	for size < 2*n {
		size *= 2
	}
	return &podShard{mask: uint64(size - 1), slots: make([]podSlot, size)}
}

func (s *podShard) insert(p *cluster.Pod, e *podEntry) {
	for i := podHash(p) & s.mask; ; i = (i + 1) & s.mask {
		if s.slots[i].pod == nil {
			s.slots[i] = podSlot{pod: p, e: *e}
			s.n++
			return
		}
	}
}

// dropUntracked forgets every untracked pod.
func (t *podTable) dropUntracked() {
	empty := newPodShard(0)
	for si := range t.seen {
		if t.seen[si].Load().n > 0 {
			t.seen[si].Store(empty)
		}
	}
}

// bulkLoad fills the table in one pass; NewEngine calls it, even with no pods, before
// any lookup.
func (t *podTable) bulkLoad(entries map[*cluster.Pod]podEntry) {
	var count [podShards]int
	for p := range entries {
		count[podHash(p)>>(64-podShardBits)]++
	}
	var shards [podShards]*podShard
	for i := range shards {
		shards[i] = newPodShard(count[i])
	}
	for p, e := range entries {
		shards[podHash(p)>>(64-podShardBits)].insert(p, &e)
	}
	empty := newPodShard(0)
	for i := range shards {
		t.shards[i].Store(shards[i])
		t.seen[i].Store(empty)
	}
}
