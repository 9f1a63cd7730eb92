package hubble

import (
	"net/netip"
	"time"

	"github.com/shadowgate/shadowgate/flows"
)

// eventKey identifies an event across a replay. Flows are keyed by uuid, which Hubble
// assigns per event; flows from servers that assign none, and lost-events notices, by what
// makes them distinct. Direction is part of the tuple because one packet is observed at
// both the source's egress and the destination's ingress, possibly in the same
// nanosecond.
type eventKey struct {
	kind      flows.Kind
	uuid      string
	time      int64
	node      string
	src, dst  netip.Addr
	proto     string
	sport     uint32
	dport     uint32
	direction string
	lostFrom  string
	lostCount uint64
}

func flowKey(f *flows.Flow) eventKey {
	if f.UUID != "" {
		return eventKey{kind: flows.KindFlow, uuid: f.UUID}
	}
	return eventKey{
		kind:      flows.KindFlow,
		time:      f.Time.UnixNano(),
		node:      f.NodeName,
		src:       f.Source.IP,
		dst:       f.Destination.IP,
		proto:     f.Protocol,
		sport:     f.SourcePort,
		dport:     f.DestinationPort,
		direction: f.TrafficDirection,
	}
}

func lostKey(l *flows.Lost) eventKey {
	return eventKey{
		kind:      flows.KindLost,
		time:      l.Time.UnixNano(),
		node:      l.NodeName,
		lostFrom:  l.Source,
		lostCount: l.NumEvents,
	}
}

// dedupEntry is one remembered event: by uuid when it has one, else by key. Uuids have
// their own maps because hashing one is several times cheaper than hashing the whole
// tuple, and nearly every Hubble flow has one; a canonical uuid is kept as its 16 bytes,
// cheaper still to hash and to keep than the string.
type dedupEntry struct {
	id   [16]byte
	uuid string
	key  *eventKey
	kind entryKind
	time time.Time
}

type entryKind uint8

const (
	entryID entryKind = iota
	entryUUID
	entryKey
)

// dedup remembers the keys of recent events, in arrival order, at most capacity of them.
//
// A replay from since repeats exactly the delivered events stamped at or after since, so
// an entry is needed only while its time is at or after the next replay's since; older
// ones are pruned from the front. Arrival order is nearly time order, and an entry stuck
// behind a newer one only costs memory until the front moves. When capacity forces out
// an entry still needed, floor records its time and the next replay must start after it.
type dedup struct {
	ids   *idSet
	uuids map[string]struct{}
	keys  map[eventKey]struct{}
	ring  []dedupEntry
	head  int // index of the oldest entry
	n     int
	floor time.Time
}

func newDedup(capacity int) *dedup {
	return &dedup{
		ids:   newIDSet(capacity),
		uuids: make(map[string]struct{}),
		keys:  make(map[eventKey]struct{}),
		ring:  make([]dedupEntry, capacity),
	}
}

// add records k and reports whether it was new. Entries older than cutoff are dropped
// first.
func (d *dedup) add(k eventKey, t, cutoff time.Time) bool {
	d.prune(cutoff)
	e := dedupEntry{time: t}
	switch id, ok := parseUUID(k.uuid); {
	case k.kind == flows.KindFlow && ok:
		if d.ids.has(id, d.ring) {
			return false
		}
		e.id, e.kind = id, entryID
	case k.kind == flows.KindFlow && k.uuid != "":
		if _, dup := d.uuids[k.uuid]; dup {
			return false
		}
		e.uuid, e.kind = k.uuid, entryUUID
	default:
		if _, dup := d.keys[k]; dup {
			return false
		}
		// A copy, so that k itself stays on the stack for the usual UUID case.
		kc := k
		e.key, e.kind = &kc, entryKey
	}
	if d.n == len(d.ring) {
		old := d.pop()
		if old.time.After(d.floor) {
			d.floor = old.time
		}
	}
	pos := (d.head + d.n) % len(d.ring)
	d.ring[pos] = e
	d.n++
	switch e.kind {
	case entryID:
		d.ids.add(e.id, pos)
	case entryUUID:
		d.uuids[e.uuid] = struct{}{}
	default:
		d.keys[*e.key] = struct{}{}
	}
	return true
}

func (d *dedup) len() int { return d.ids.len() + len(d.uuids) + len(d.keys) }

// parseUUID reads a uuid in its canonical form, lowercase hex with hyphens, as Hubble
// writes it. Any other spelling is not canonical and is remembered as a string: two
// spellings of one uuid are two keys, as they always were.
func parseUUID(s string) (id [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if s[i] == '-' {
			i--
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return [16]byte{}, false
		}
		id[j] = hi<<4 | lo
		j++
	}
	return id, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func (d *dedup) prune(cutoff time.Time) {
	for d.n > 0 && d.ring[d.head].time.Before(cutoff) {
		d.pop()
	}
}

func (d *dedup) pop() dedupEntry {
	e := d.ring[d.head]
	d.ring[d.head] = dedupEntry{}
	switch e.kind {
	case entryID:
		d.ids.remove(e.id, d.head)
	case entryUUID:
		delete(d.uuids, e.uuid)
	default:
		delete(d.keys, *e.key)
	}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
	return e
}

// since is where a replay may start so that everything it repeats is still remembered:
// want, unless capacity evicted an entry at or after it.
func (d *dedup) since(want time.Time) time.Time {
	if !d.floor.IsZero() && !want.After(d.floor) {
		return d.floor.Add(time.Nanosecond)
	}
	return want
}
