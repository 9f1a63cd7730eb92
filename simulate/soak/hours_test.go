package soak

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var hcCmp = cmp.AllowUnexported(hourCount{})

func TestHoursRoundTrip(t *testing.T) {
	cases := map[string][]hourCount{
		"one bucket":                {{hour: 500_000, count: 1}},
		"negative hour":             {{hour: -3, count: 2}, {hour: 4, count: 1}},
		"adjacent hours":            {{hour: 10, count: 1}, {hour: 11, count: 127}, {hour: 12, count: 128}},
		"wide gaps and huge counts": {{hour: 1, count: 1 << 40}, {hour: 1 << 30, count: 1}},
		"a day of hours": func() []hourCount {
			var hs []hourCount
			for h := int64(0); h < 24; h++ {
				hs = append(hs, hourCount{hour: 490_000 + 7*h, count: uint64(h*h + 1)})
			}
			return hs
		}(),
	}
	for name, hs := range cases {
		t.Run(name, func(t *testing.T) {
			b := appendHours(nil, hs)
			got, err := decodeHours(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(hs, got, hcCmp); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if fh := firstHour(b); fh != hs[0].hour {
				t.Errorf("firstHour = %d, want %d", fh, hs[0].hour)
			}
		})
	}
}

func TestDecodeHoursRejects(t *testing.T) {
	cases := map[string][]byte{
		"truncated first hour": {0x80},
		"missing count":        {0x02},
		"zero count":           {0x02, 0x00},
		"zero delta":           {0x02, 0x01, 0x00, 0x01},
		"truncated count":      {0x02, 0x01, 0x01, 0x80},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeHours(b, nil); !errors.Is(err, errHours) {
				t.Errorf("decodeHours(%x) error = %v, want errHours", b, err)
			}
		})
	}
}

// The hot path rewrites the last varint in place; it must stay right when the count needs
// one more byte.
func TestAddLastAcrossVarintWidths(t *testing.T) {
	cases := map[string]struct {
		start, add, want uint64
	}{
		"stays one byte":      {start: 1, add: 1, want: 2},
		"grows to two bytes":  {start: 127, add: 1, want: 128},
		"grows to three":      {start: 16383, add: 1, want: 16384},
		"large addition":      {start: 5, add: 1 << 35, want: 5 + 1<<35},
		"stays at two bytes":  {start: 200, add: 1, want: 201},
		"grows past 32 bits":  {start: 1<<32 - 1, add: 1, want: 1 << 32},
		"long previous delta": {start: 1, add: 300, want: 301},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			prefix := []hourCount{{hour: 1000, count: 300}, {hour: 1000 + 20000, count: tc.start}}
			b := addLast(appendHours(nil, prefix), tc.add)
			got, err := decodeHours(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := []hourCount{{hour: 1000, count: 300}, {hour: 21000, count: tc.want}}
			if diff := cmp.Diff(want, got, hcCmp); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestObserveEdgeOrder(t *testing.T) {
	const h = int64(3600e9)
	base := 490_000 * h
	cases := map[string]struct {
		at          []int64
		want        []hourCount
		first, last int64
	}{
		"same hour": {at: []int64{base, base + 10, base + h - 1},
			want: []hourCount{{490_000, 3}}, first: base, last: base + h - 1},
		"later hours": {at: []int64{base, base + h, base + 5*h + 1},
			want: []hourCount{{490_000, 1}, {490_001, 1}, {490_005, 1}}, first: base, last: base + 5*h + 1},
		"replayed older hour": {at: []int64{base + 5*h, base + 2*h, base, base + 2*h + 7},
			want: []hourCount{{490_000, 1}, {490_002, 2}, {490_005, 1}}, first: base, last: base + 5*h},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := edge{first: tc.at[0], last: tc.at[0], hours: appendHours(nil, []hourCount{{hourOf(tc.at[0]), 1}})}
			for _, at := range tc.at[1:] {
				observeEdge(&e, at, 1)
			}
			got, err := decodeHours(e.hours, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, hcCmp); diff != "" {
				t.Errorf("buckets (-want +got):\n%s", diff)
			}
			if e.first != tc.first || e.last != tc.last {
				t.Errorf("first, last = %d, %d; want %d, %d", e.first, e.last, tc.first, tc.last)
			}
		})
	}
}

func TestBucketLists(t *testing.T) {
	a := []hourCount{{1, 1}, {3, 2}, {9, 1}}
	b := []hourCount{{0, 4}, {3, 1}, {10, 1}}
	if diff := cmp.Diff([]hourCount{{0, 4}, {1, 1}, {3, 3}, {9, 1}, {10, 1}}, mergeHours(nil, a, b), hcCmp); diff != "" {
		t.Errorf("mergeHours (-want +got):\n%s", diff)
	}
	var hs []hourCount
	for _, h := range []int64{5, 2, 5, 9, 2, 7} {
		hs = addHour(hs, h, 1)
	}
	if diff := cmp.Diff([]hourCount{{2, 2}, {5, 2}, {7, 1}, {9, 1}}, hs, hcCmp); diff != "" {
		t.Errorf("addHour (-want +got):\n%s", diff)
	}
	if got := sumFrom(hs, 6); got != 2 {
		t.Errorf("sumFrom(6) = %d, want 2", got)
	}
	if got := sumEncodedFrom(appendHours(nil, hs), 5); got != 4 {
		t.Errorf("sumEncodedFrom(5) = %d, want 4", got)
	}
	if diff := cmp.Diff([]hourCount{{7, 1}, {9, 1}}, dropBefore(hs, 6), hcCmp); diff != "" {
		t.Errorf("dropBefore (-want +got):\n%s", diff)
	}
}

func TestHourOfFloors(t *testing.T) {
	cases := map[string]struct {
		ns   int64
		want int64
	}{
		"epoch":             {0, 0},
		"last ns of hour 0": {3600e9 - 1, 0},
		"hour 1":            {3600e9, 1},
		"just before epoch": {-1, -1},
		"an hour before":    {-3600e9, -1},
		"beyond an hour":    {-3600e9 - 1, -2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := hourOf(tc.ns); got != tc.want {
				t.Errorf("hourOf(%d) = %d, want %d", tc.ns, got, tc.want)
			}
		})
	}
}
