package evaluator

import "sync"

// defaultCacheEntries bounds the verdict cache. Keys are identities and address classes,
// so cluster-internal traffic needs few entries; what can grow without bound is the
// port dimension (a port scan from the internet), which the bound absorbs. A Verdict is
// about 150 bytes, so the default costs at most a few hundred MB in the worst case and
// usually a tiny fraction of it.
const defaultCacheEntries = 1 << 20

// cacheShards spreads lock traffic: a hit takes one shard's read lock.
const (
	cacheShardBits = 6
	cacheShards    = 1 << cacheShardBits
)

// verdictCache is a sharded map from cacheKey to Verdict. A full shard is emptied
// rather than evicted entry by entry: a verdict costs well under a microsecond to
// recompute, and the simplest bound is the one that cannot be wrong.
type verdictCache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]Verdict
	// Pad to a cache line so that readers of neighbouring shards do not contend on
	// the same line for their reader counts.
	_ [64 - 24 - 8]byte
}

func (c *verdictCache) init(entries int) {
	c.perShard = max(1, entries/cacheShards)
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]Verdict)
	}
}

func (c *verdictCache) shard(k *cacheKey) *cacheShard {
	var sid, did uint64
	if k.src.pod != nil {
		sid = uint64(k.src.pod.id)
	}
	if k.dst.pod != nil {
		did = uint64(k.dst.pod.id)
	}
	h := sid<<40 ^ did<<20 ^ uint64(k.src.class)<<30 ^ uint64(k.dst.class)<<10 ^ uint64(uint32(k.port))
	h *= 0x9e3779b97f4a7c15
	return &c.shards[h>>(64-cacheShardBits)]
}

func (c *verdictCache) get(k *cacheKey) (Verdict, bool) {
	s := c.shard(k)
	s.mu.RLock()
	v, ok := s.m[*k]
	s.mu.RUnlock()
	return v, ok
}

func (c *verdictCache) put(k *cacheKey, v Verdict) {
	s := c.shard(k)
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		clear(s.m)
	}
	s.m[*k] = v
	s.mu.Unlock()
}

// len counts the cached verdicts, for tests.
func (c *verdictCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
