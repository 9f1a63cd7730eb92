package flows

// String tables of the fast decoder: the strings of flow lines (namespaces, pod names,
// labels, node names) repeat from line to line, so a decoder keeps the ones it has
// seen and hands out the same Go strings instead of allocating them again.

// str returns the last string read as a Go string, shared with earlier lines when it
// has been seen.
func (d *fastDecoder) str(s []byte) string { return d.intern.get(s, d.hash) }

// internTable is an open-addressing set of strings keyed by the hash string computes
// while scanning, so that interning costs a probe and a comparison rather than hashing
// the bytes again. It is emptied when full: it only saves allocations.
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
		if slot.hash == 0 && slot.s == "" {
			slot.hash, slot.s = h, string(b)
			t.n++
			return slot.s
		}
	}
}

func (t *internTable) grow() {
	if len(t.slots) >= 2*maxInterned {
		clear(t.slots)
		t.n = 0
		return
	}
	old := t.slots
	t.slots = make([]internSlot, max(1024, 2*len(old)))
	t.n = 0
	mask := uint64(len(t.slots) - 1)
	for _, o := range old {
		if o.hash == 0 && o.s == "" {
			continue
		}
		for i := o.hash & mask; ; i = (i + 1) & mask {
			if t.slots[i].hash == 0 && t.slots[i].s == "" {
				t.slots[i] = o
				t.n++
				break
			}
		}
	}
}

type elem struct {
	b    []byte
	hash uint64
}

// listTable is internTable for whole lists, keyed by the hash of their elements and
// checked against the list's bytes.
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

// get appends the strings of the list whose bytes are raw (d.elems holds its elements)
// to dst.
func (t *listTable) get(d *fastDecoder, raw []byte, h uint64, dst []string) []string {
	if len(t.slots) == 0 || t.n >= len(t.slots)/2 {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		slot := &t.slots[i]
		if slot.hash == h && slot.raw == string(raw) {
			return append(dst, slot.strs...)
		}
		if slot.hash == 0 {
			strs := make([]string, len(d.elems))
			for j, e := range d.elems {
				strs[j] = d.intern.get(e.b, e.hash)
			}
			*slot = listSlot{hash: h, raw: string(raw), strs: strs}
			t.n++
			return append(dst, strs...)
		}
	}
}

func (t *listTable) grow() {
	if len(t.slots) >= 2*maxLists {
		clear(t.slots)
		t.n = 0
		return
	}
	old := t.slots
	t.slots = make([]listSlot, max(256, 2*len(old)))
	t.n = 0
	mask := uint64(len(t.slots) - 1)
	for _, o := range old {
		if o.hash == 0 {
			continue
		}
		for i := o.hash & mask; ; i = (i + 1) & mask {
			if t.slots[i].hash == 0 {
				t.slots[i] = o
				t.n++
				break
			}
		}
	}
}
