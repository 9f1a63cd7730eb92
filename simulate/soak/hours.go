package soak

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

const nsPerHour = int64(time.Hour)

// hourOf returns the hour since the Unix epoch that the instant (Unix nanoseconds) falls in,
// floored so instants before 1970 land in the right hour too.
func hourOf(ns int64) int64 {
	h := ns / nsPerHour
	if ns%nsPerHour < 0 {
		h--
	}
	return h
}

// hourCount is one bucket: Count observations during the hour starting at hour*1h.
type hourCount struct {
	hour  int64
	count uint64
}

// The hour buckets of an edge are encoded as a byte string: the first bucket's hour as a
// zigzag varint and its count as a uvarint, then for each further bucket the uvarint distance
// in hours from the previous one (≥ 1) and its count (≥ 1). Buckets are sorted by hour, so the
// last varint is always the latest hour's count: the hot path finds it by scanning back to the
// previous varint's terminating byte and rewrites it in place.

var errHours = errors.New("malformed hour buckets")

// appendHours encodes hs (sorted by hour, distinct, counts ≥ 1) onto dst.
func appendHours(dst []byte, hs []hourCount) []byte {
	for i, h := range hs {
		if i == 0 {
			dst = binary.AppendVarint(dst, h.hour)
		} else {
			dst = binary.AppendUvarint(dst, uint64(h.hour-hs[i-1].hour))
		}
		dst = binary.AppendUvarint(dst, h.count)
	}
	return dst
}

// decodeHours appends the buckets encoded in b to dst, checking the invariants appendHours
// keeps (snapshots are decoded with it, so it must not trust its input).
func decodeHours(b []byte, dst []hourCount) ([]hourCount, error) {
	var hour int64
	for i := 0; len(b) > 0; i++ {
		if i == 0 {
			v, n := binary.Varint(b)
			if n <= 0 {
				return dst, fmt.Errorf("%w: bad first hour", errHours)
			}
			hour, b = v, b[n:]
		} else {
			d, n := binary.Uvarint(b)
			if n <= 0 || d == 0 || d > 1<<40 {
				return dst, fmt.Errorf("%w: bad hour delta at bucket %d", errHours, i)
			}
			hour, b = hour+int64(d), b[n:]
		}
		c, n := binary.Uvarint(b)
		if n <= 0 || c == 0 {
			return dst, fmt.Errorf("%w: bad count at bucket %d", errHours, i)
		}
		b = b[n:]
		dst = append(dst, hourCount{hour: hour, count: c})
	}
	return dst, nil
}

// lastVarint returns where the last varint of a non-empty, well-formed encoding starts.
func lastVarint(b []byte) int {
	i := len(b) - 2
	for i >= 0 && b[i]&0x80 != 0 {
		i--
	}
	return i + 1
}

// addLast adds n to the count of the latest bucket.
func addLast(b []byte, n uint64) []byte {
	start := lastVarint(b)
	c, _ := binary.Uvarint(b[start:])
	c += n
	if uvarintLen(c) == len(b)-start {
		binary.PutUvarint(b[start:], c)
		return b
	}
	return binary.AppendUvarint(b[:start], c)
}

// grow makes room for n more bytes in an edge's buckets. An edge gains about one bucket an
// hour, so append's doubling would leave a third of the bytes unused across a store; grow
// adds a few bytes at a time instead, and sizes the allocation to what the allocator hands
// out anyway.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), allocSize(len(b)+n+6))
	copy(nb, b)
	return nb
}

// allocSize rounds n up to Go's small-object size classes (multiples of 8 up to 32, then of
// 16 up to 256, then of 32 up to 512). Were the classes different, the cost would only be
// bytes allocated but not used.
func allocSize(n int) int {
	switch {
	case n <= 32:
		return (n + 7) &^ 7
	case n <= 256:
		return (n + 15) &^ 15
	case n <= 512:
		return (n + 31) &^ 31
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// firstHour returns the hour of the earliest bucket of a non-empty encoding.
func firstHour(b []byte) int64 {
	h, _ := binary.Varint(b)
	return h
}

// addHour adds n observations at hour to a sorted bucket list (lost events, overflow).
func addHour(hs []hourCount, hour int64, n uint64) []hourCount {
	if k := len(hs); k > 0 && hs[k-1].hour == hour {
		hs[k-1].count += n
		return hs
	} else if k == 0 || hs[k-1].hour < hour {
		return append(hs, hourCount{hour: hour, count: n})
	}
	i := searchHour(hs, hour)
	if i < len(hs) && hs[i].hour == hour {
		hs[i].count += n
		return hs
	}
	hs = append(hs, hourCount{})
	copy(hs[i+1:], hs[i:])
	hs[i] = hourCount{hour: hour, count: n}
	return hs
}

func searchHour(hs []hourCount, hour int64) int {
	lo, hi := 0, len(hs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if hs[m].hour < hour {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// mergeHours sums two sorted bucket lists into dst.
func mergeHours(dst, a, b []hourCount) []hourCount {
	for len(a) > 0 && len(b) > 0 {
		switch {
		case a[0].hour < b[0].hour:
			dst, a = append(dst, a[0]), a[1:]
		case a[0].hour > b[0].hour:
			dst, b = append(dst, b[0]), b[1:]
		default:
			dst = append(dst, hourCount{hour: a[0].hour, count: a[0].count + b[0].count})
			a, b = a[1:], b[1:]
		}
	}
	dst = append(dst, a...)
	return append(dst, b...)
}

// dropBefore removes the buckets of hours before from.
func dropBefore(hs []hourCount, from int64) []hourCount {
	i := searchHour(hs, from)
	if i == 0 {
		return hs
	}
	return append(hs[:0], hs[i:]...)
}

// sumFrom returns the total count of the buckets at hours ≥ from.
func sumFrom(hs []hourCount, from int64) uint64 {
	var n uint64
	for _, h := range hs[searchHour(hs, from):] {
		n += h.count
	}
	return n
}

// sumEncodedFrom is sumFrom over an encoded edge's buckets, without allocating.
func sumEncodedFrom(b []byte, from int64) uint64 {
	var (
		n    uint64
		hour int64
	)
	for i := 0; len(b) > 0; i++ {
		if i == 0 {
			v, k := binary.Varint(b)
			hour, b = v, b[k:]
		} else {
			d, k := binary.Uvarint(b)
			hour, b = hour+int64(d), b[k:]
		}
		c, k := binary.Uvarint(b)
		b = b[k:]
		if hour >= from {
			n += c
		}
	}
	return n
}
