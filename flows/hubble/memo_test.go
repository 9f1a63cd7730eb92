package hubble

import (
	"strconv"
	"testing"
)

// TestBytesMemo checks that a hit needs the whole key: entries whose hashes are equal, or
// whose bytes differ only at the end, are told apart; and that the memo forgets
// everything, not something wrong, when it reaches its limit.
func TestBytesMemo(t *testing.T) {
	long := func(last byte) []byte {
		b := make([]byte, 400)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		b[len(b)-1] = last
		return b
	}
	type op struct {
		key  []byte
		hash uint64 // 0: memoHash(key)
		put  int    // > 0: put this value; 0: get
		want int    // for a get: the value, or 0 for a miss
	}
	cases := map[string][]op{
		"equal hashes, different keys": {
			{key: []byte("frontend"), hash: 7, put: 1},
			{key: []byte("backend"), hash: 7, put: 2},
			{key: []byte("frontend"), hash: 7, want: 1},
			{key: []byte("backend"), hash: 7, want: 2},
			{key: []byte("payments"), hash: 7, want: 0},
		},
		"keys differing only in the last byte, hashed by a prefix": {
			{key: long('x'), hash: memoHash(long('x')[:16]), put: 1},
			{key: long('y'), hash: memoHash(long('y')[:16]), want: 0},
			{key: long('y'), hash: memoHash(long('y')[:16]), put: 2},
			{key: long('x'), hash: memoHash(long('x')[:16]), want: 1},
			{key: long('y'), hash: memoHash(long('y')[:16]), want: 2},
		},
		"same high hash bits, different slots": {
			{key: []byte("a"), hash: 1<<32 | 1, put: 1},
			{key: []byte("b"), hash: 1<<32 | 2, put: 2},
			{key: []byte("a"), hash: 1<<32 | 1, want: 1},
			{key: []byte("b"), hash: 1<<32 | 2, want: 2},
			{key: []byte("c"), hash: 1<<32 | 1, want: 0},
		},
	}
	for name, ops := range cases {
		t.Run(name, func(t *testing.T) {
			m := newBytesMemo[int](4, 64)
			for i, o := range ops {
				h := o.hash
				if h == 0 {
					h = memoHash(o.key)
				}
				if o.put > 0 {
					m.put(o.key, h, o.put)
					continue
				}
				got := 0
				if v, ok := m.get(o.key, h); ok {
					got = *v
				}
				if got != o.want {
					t.Errorf("op %d: get(%.20q) = %d, want %d", i, o.key, got, o.want)
				}
			}
		})
	}

	t.Run("emptied at its limit", func(t *testing.T) {
		m := newBytesMemo[int](2, 8)
		key := func(i int) []byte { return []byte("pod-" + strconv.Itoa(i)) }
		for i := range 8 {
			m.put(key(i), memoHash(key(i)), i+1)
		}
		for i := range 8 {
			if v, ok := m.get(key(i), memoHash(key(i))); !ok || *v != i+1 {
				t.Fatalf("before the limit: get(%s) = %v, %v; want %d", key(i), v, ok, i+1)
			}
		}
		m.put(key(8), memoHash(key(8)), 9)
		for i := range 8 {
			if _, ok := m.get(key(i), memoHash(key(i))); ok {
				t.Errorf("after the limit: %s still remembered", key(i))
			}
		}
		if v, ok := m.get(key(8), memoHash(key(8))); !ok || *v != 9 {
			t.Errorf("after the limit: get(%s) = %v, %v; want 9", key(8), v, ok)
		}
	})
}
