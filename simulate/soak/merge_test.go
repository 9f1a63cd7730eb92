package soak

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	testclock "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/flows"
)

// input is one input to a store and which of two stores gets it when split.
type input struct {
	feed  func(*Store) error
	store int
}

// randomInputs generates a random soak: observations with repeated keys, shuffled in time (so
// replays and out-of-order hours happen), lost events, recorded gaps, and per source a
// well-formed health sequence. Flows are split between two stores at random, health by
// source (as two nodes' agents would see it).
func randomInputs(rng *rand.Rand) []input {
	namespaces := []string{"a", "b", "c"}
	peers := []Peer{wl("a", "x"), wl("a", "y"), wl("b", "x"), wl("c", "z"), world, {Kind: KindNode, Node: "n1"}}
	reasons := []string{"r1", "r2", "r3"}
	span := 10 * 24 * time.Hour
	randTime := func() time.Time { return t0.Add(time.Duration(rng.Int64N(int64(span)))) }
	randScope := func() Scope {
		if rng.IntN(3) == 0 {
			return AllNamespaces()
		}
		var ns []string
		for _, n := range namespaces {
			if rng.IntN(2) == 0 {
				ns = append(ns, n)
			}
		}
		return Namespaces(ns...)
	}

	var seqs [][]input
	var data []input
	for range 300 + rng.IntN(300) {
		store := rng.IntN(2)
		switch r := rng.IntN(20); {
		case r < 17:
			key := EdgeKey{Source: peers[rng.IntN(len(peers))], Destination: peers[rng.IntN(4)]}
			if rng.IntN(4) != 0 {
				key.Protocol, key.Port = []string{"TCP", "UDP"}[rng.IntN(2)], int32(80+rng.IntN(3))
			}
			var vs []Verdict
			for _, n := range namespaces {
				if rng.IntN(2) == 0 {
					vs = append(vs, Verdict{Namespace: n, Uncovered: rng.IntN(5) == 0, Reason: reasons[rng.IntN(len(reasons))]})
				}
			}
			at := randTime()
			data = append(data, input{func(s *Store) error { s.Observe(key, at, vs...); return nil }, store})
		case r < 19:
			sc, at, n := randScope(), randTime(), uint64(1+rng.IntN(50))
			data = append(data, input{func(s *Store) error { s.Lost(sc, at, n); return nil }, store})
		default:
			sc, start := randScope(), randTime()
			g := Gap{Start: start, End: start.Add(time.Duration(1+rng.IntN(90)) * time.Minute), Reason: "recorded",
				Source: "test", Message: reasons[rng.IntN(len(reasons))]}
			data = append(data, input{func(s *Store) error { return s.RecordGap(sc, g) }, store})
		}
	}
	seqs = append(seqs, data)

	for _, src := range []string{"hubble-node-1", "hubble-node-2", "mapper"} {
		store := rng.IntN(2)
		at := t0
		var lastDown time.Time
		var seq []input
		for range 5 + rng.IntN(25) {
			at = at.Add(time.Duration(1+rng.IntN(600)) * time.Minute)
			h := flows.Health{Time: at, Source: src, Message: fmt.Sprint("m", rng.IntN(3))}
			switch rng.IntN(6) {
			case 0, 1:
				h.State, lastDown = flows.Disconnected, at
			case 2:
				h.State = flows.Connected
			case 3:
				h.State = flows.Stalled
			case 4:
				h.State, h.Nodes = flows.Degraded, [][]string{nil, {"n1"}, {"n1", "n2"}}[rng.IntN(3)]
			case 5:
				h.State = flows.Connected
				if !lastDown.IsZero() {
					h.State = flows.CaughtUp
					h.Since = lastDown.Add(time.Duration(rng.Int64N(int64(at.Sub(lastDown)) + 1)))
				}
			}
			sc := randScope()
			seq = append(seq, input{func(s *Store) error { return s.Health(sc, h) }, store})
		}
		seqs = append(seqs, seq)
	}

	// Interleave the sequences at random, keeping each one's order.
	var out []input
	for {
		total := 0
		for _, q := range seqs {
			total += len(q)
		}
		if total == 0 {
			return out
		}
		pick := rng.IntN(total)
		for i, q := range seqs {
			if pick < len(q) {
				out = append(out, q[0])
				seqs[i] = q[1:]
				break
			}
			pick -= len(q)
		}
	}
}

// Two stores fed disjoint parts of the input, merged, equal the store fed all of it.
func TestMergeEqualsOneStore(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x50a6))
			inputs := randomInputs(rng)
			clk := testclock.NewFakePassiveClock(t0.Add(11 * 24 * time.Hour))
			whole, parts := newTestStore(t, clk), [2]*Store{newTestStore(t, clk), newTestStore(t, clk)}
			for _, ns := range []string{"a", "b", "c"} {
				sa, sb := t0.Add(time.Duration(rng.IntN(5))*time.Hour), t0.Add(time.Duration(rng.IntN(5))*time.Hour)
				parts[0].Track(ns, sa)
				parts[1].Track(ns, sb)
				if sb.Before(sa) {
					sa = sb
				}
				whole.Track(ns, sa)
			}
			for _, in := range inputs {
				if err := in.feed(whole); err != nil {
					t.Fatal(err)
				}
				if err := in.feed(parts[in.store]); err != nil {
					t.Fatal(err)
				}
			}
			if err := parts[0].Merge(parts[1]); err != nil {
				t.Fatal(err)
			}
			// Dumps are compared by their JSON first: cmp on large dumps is slow, and only a
			// failure needs the diff.
			if w, m := whole.Dump(), parts[0].Dump(); !sameJSON(t, w, m) {
				t.Fatalf("merged (-one store +merged):\n%s", cmp.Diff(w, m))
			}
			now := clk.Now()
			whole.Expire(now)
			parts[0].Expire(now)
			if w, m := whole.Dump(), parts[0].Dump(); !sameJSON(t, w, m) {
				t.Fatalf("after expiry (-one store +merged):\n%s", cmp.Diff(w, m))
			}
			for _, ns := range []string{"a", "b", "c"} {
				g1, _ := whole.Gate(ns, now, DefaultGateConfig())
				g2, _ := parts[0].Gate(ns, now, DefaultGateConfig())
				if !sameJSON(t, g1, g2) {
					t.Errorf("gate %s (-one store +merged):\n%s", ns, cmp.Diff(g1, g2))
				}
			}
		})
	}
}

func TestMergeRejects(t *testing.T) {
	clk := testclock.NewFakePassiveClock(t0)
	s := newTestStore(t, clk)
	if err := s.Merge(s); err == nil || !strings.Contains(err.Error(), "itself") {
		t.Errorf("Merge(self) = %v", err)
	}
	other := newTestStore(t, clk, func(o *Options) { o.Window = 24 * time.Hour })
	if err := s.Merge(other); err == nil || !strings.Contains(err.Error(), "windows differ") {
		t.Errorf("Merge(other window) = %v", err)
	}
}

// Edges that do not fit under the receiving store's caps become overflow, hour by hour.
func TestMergeOverflow(t *testing.T) {
	clk := testclock.NewFakePassiveClock(t0)
	dst := newTestStore(t, clk, func(o *Options) { o.MaxEdgesPerNamespace = 1 })
	src := newTestStore(t, clk)
	dst.Track("data", t0)
	src.Track("data", t0)
	dst.Observe(cartRds, t0, covered("data"))
	src.Observe(cartRds, t0.Add(time.Hour), covered("data"))
	for range 3 {
		src.Observe(tcp(web, redis, 6379), t0.Add(2*time.Hour), covered("data"))
	}
	src.Observe(tcp(web, redis, 6379), t0.Add(5*time.Hour), covered("data"))
	if err := dst.Merge(src); err != nil {
		t.Fatal(err)
	}
	d := dst.Dump().Namespaces[0]
	if len(d.Edges) != 1 || d.Edges[0].Count != 2 {
		t.Errorf("edges %+v, want cart→redis seen twice", d.Edges)
	}
	want := []HourCount{hc(t0.Add(2*time.Hour), 3), hc(t0.Add(5*time.Hour), 1)}
	if diff := cmp.Diff(want, d.Overflow); diff != "" {
		t.Errorf("overflow (-want +got):\n%s", diff)
	}
}

// When both stores saw the same source go down (both connect to one relay), the merged gap
// starts at the earlier disconnect and stays open.
func TestMergeOpenGaps(t *testing.T) {
	clk := testclock.NewFakePassiveClock(t0)
	a, b := newTestStore(t, clk), newTestStore(t, clk)
	for i, s := range []*Store{a, b} {
		s.Track("shop", t0)
		h := flows.Health{Time: at(30 - 10*i), Source: "hubble", State: flows.Disconnected, Message: fmt.Sprint("store ", i)}
		if err := s.Health(AllNamespaces(), h); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	want := []Gap{{Start: at(20), Ongoing: true, Reason: GapDisconnected, Source: "hubble", Message: "store 1"}}
	if diff := cmp.Diff(want, a.Dump().Namespaces[0].Gaps); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}
