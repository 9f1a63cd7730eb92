package soak

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	testclock "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/flows"
)

func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

func health(state flows.HealthState, minute int, opts ...func(*flows.Health)) flows.Health {
	h := flows.Health{Time: at(minute), Source: "hubble", State: state}
	for _, o := range opts {
		o(&h)
	}
	return h
}

func since(minute int) func(*flows.Health)  { return func(h *flows.Health) { h.Since = at(minute) } }
func nodes(n ...string) func(*flows.Health) { return func(h *flows.Health) { h.Nodes = n } }
func from(src string) func(*flows.Health)   { return func(h *flows.Health) { h.Source = src } }
func msg(m string) func(*flows.Health)      { return func(h *flows.Health) { h.Message = m } }

// span renders a GapSpan compactly: "10-40 source-disconnected,source-stalled" in minutes
// from t0, "ongoing" when it reaches now because of an open gap.
func span(s GapSpan) string {
	var rs []string
	for _, c := range s.Causes {
		rs = append(rs, string(c.Reason))
	}
	out := fmt.Sprintf("%d-%d %s", int(s.Start.Sub(t0)/time.Minute), int(s.End.Sub(t0)/time.Minute), strings.Join(rs, ","))
	if s.Ongoing {
		out += " ongoing"
	}
	return out
}

func TestHealthGaps(t *testing.T) {
	cases := map[string]struct {
		events []flows.Health
		now    int // minutes
		// want: the raw gaps kept, the merged spans, and the gap total in minutes.
		wantGaps  []Gap
		wantSpans []string
		wantTotal int
	}{
		"disconnect and reconnect": {
			events:    []flows.Health{health(flows.Disconnected, 10, msg("EOF")), health(flows.Connected, 40)},
			now:       60,
			wantGaps:  []Gap{{Start: at(10), End: at(40), Reason: GapDisconnected, Source: "hubble", Message: "EOF"}},
			wantSpans: []string{"10-40 source-disconnected"}, wantTotal: 30,
		},
		"repeated disconnects keep the first start": {
			events:    []flows.Health{health(flows.Disconnected, 10), health(flows.Disconnected, 20), health(flows.Connected, 40)},
			now:       60,
			wantGaps:  []Gap{{Start: at(10), End: at(40), Reason: GapDisconnected, Source: "hubble"}},
			wantSpans: []string{"10-40 source-disconnected"}, wantTotal: 30,
		},
		"caught up replays the whole gap": {
			events: []flows.Health{health(flows.Disconnected, 10), health(flows.Connected, 40),
				health(flows.CaughtUp, 41, since(10))},
			now: 60, wantGaps: nil, wantSpans: nil, wantTotal: 0,
		},
		"caught up replays part of the gap": {
			events: []flows.Health{health(flows.Disconnected, 10), health(flows.Connected, 40),
				health(flows.CaughtUp, 41, since(25))},
			now:       60,
			wantGaps:  []Gap{{Start: at(10), End: at(25), Reason: GapDisconnected, Source: "hubble"}},
			wantSpans: []string{"10-25 source-disconnected"}, wantTotal: 15,
		},
		"caught up without connected closes the gap": {
			events:    []flows.Health{health(flows.Disconnected, 10), health(flows.CaughtUp, 40, since(20))},
			now:       60,
			wantGaps:  []Gap{{Start: at(10), End: at(20), Reason: GapDisconnected, Source: "hubble"}},
			wantSpans: []string{"10-20 source-disconnected"}, wantTotal: 10,
		},
		"caught up of another source leaves the gap": {
			events: []flows.Health{health(flows.Disconnected, 10), health(flows.Connected, 40),
				health(flows.CaughtUp, 41, since(10), from("mapper"))},
			now:       60,
			wantGaps:  []Gap{{Start: at(10), End: at(40), Reason: GapDisconnected, Source: "hubble"}},
			wantSpans: []string{"10-40 source-disconnected"}, wantTotal: 30,
		},
		"caught up does not replay unavailable nodes": {
			events: []flows.Health{health(flows.Degraded, 10, nodes("n1")), health(flows.Connected, 40),
				health(flows.CaughtUp, 41, since(10))},
			now:       60,
			wantGaps:  []Gap{{Start: at(10), End: at(40), Reason: GapNodeUnavailable, Source: "hubble", Node: "n1"}},
			wantSpans: []string{"10-40 node-unavailable"}, wantTotal: 30,
		},
		"stalled until connected": {
			events:    []flows.Health{health(flows.Stalled, 5), health(flows.Connected, 12)},
			now:       60,
			wantGaps:  []Gap{{Start: at(5), End: at(12), Reason: GapStalled, Source: "hubble"}},
			wantSpans: []string{"5-12 source-stalled"}, wantTotal: 7,
		},
		"overlapping gaps are merged, not double counted": {
			events: []flows.Health{
				health(flows.Stalled, 10), health(flows.Disconnected, 20), health(flows.Connected, 30),
				health(flows.Disconnected, 25, from("mapper")), health(flows.Connected, 45, from("mapper")),
				health(flows.Disconnected, 50), health(flows.Connected, 55),
			},
			now: 60,
			wantGaps: []Gap{
				{Start: at(10), End: at(30), Reason: GapStalled, Source: "hubble"},
				{Start: at(20), End: at(30), Reason: GapDisconnected, Source: "hubble"},
				{Start: at(25), End: at(45), Reason: GapDisconnected, Source: "mapper"},
				{Start: at(50), End: at(55), Reason: GapDisconnected, Source: "hubble"},
			},
			wantSpans: []string{"10-45 source-stalled,source-disconnected,source-disconnected", "50-55 source-disconnected"},
			wantTotal: 40,
		},
		"ongoing gap counts up to now": {
			events: []flows.Health{health(flows.Disconnected, 20, msg("connection refused"))},
			now:    75,
			wantGaps: []Gap{{Start: at(20), Ongoing: true, Reason: GapDisconnected, Source: "hubble",
				Message: "connection refused"}},
			wantSpans: []string{"20-75 source-disconnected ongoing"}, wantTotal: 55,
		},
		"unavailable nodes come back one by one": {
			events: []flows.Health{
				health(flows.Degraded, 10, nodes("n1", "n2")), health(flows.Connected, 20, nodes("n1")),
				health(flows.Connected, 30, nodes("n2")),
			},
			now: 60,
			wantGaps: []Gap{
				{Start: at(10), End: at(20), Reason: GapNodeUnavailable, Source: "hubble", Node: "n1"},
				{Start: at(10), End: at(30), Reason: GapNodeUnavailable, Source: "hubble", Node: "n2"},
			},
			wantSpans: []string{"10-30 node-unavailable,node-unavailable"}, wantTotal: 20,
		},
		"a fresh connection closes every gap of its source": {
			events: []flows.Health{
				health(flows.Degraded, 10), health(flows.Stalled, 15), health(flows.Disconnected, 15, from("mapper")),
				health(flows.Connected, 20),
			},
			now: 60,
			wantGaps: []Gap{
				{Start: at(10), End: at(20), Reason: GapNodeUnavailable, Source: "hubble"},
				{Start: at(15), Ongoing: true, Reason: GapDisconnected, Source: "mapper"},
				{Start: at(15), End: at(20), Reason: GapStalled, Source: "hubble"},
			},
			wantSpans: []string{"10-60 node-unavailable,source-stalled,source-disconnected ongoing"}, wantTotal: 50,
		},
		"disconnect and connect at one instant is no gap": {
			events:    []flows.Health{health(flows.Disconnected, 10), health(flows.Connected, 10)},
			now:       60,
			wantGaps:  nil,
			wantSpans: nil,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newTestStore(t, testclock.NewFakePassiveClock(t0))
			s.Track("shop", t0)
			for _, h := range tc.events {
				if err := s.Health(AllNamespaces(), h); err != nil {
					t.Fatalf("Health(%+v): %v", h, err)
				}
			}
			if diff := cmp.Diff(tc.wantGaps, s.Dump().Namespaces[0].Gaps, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("gaps (-want +got):\n%s", diff)
			}
			sum, _ := s.Summary("shop", at(tc.now))
			var spans []string
			for _, g := range sum.Gaps {
				spans = append(spans, span(g))
			}
			if diff := cmp.Diff(tc.wantSpans, spans, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("spans (-want +got):\n%s", diff)
			}
			if got := time.Duration(sum.GapSeconds * float64(time.Second)); got != time.Duration(tc.wantTotal)*time.Minute {
				t.Errorf("gap total %s, want %dm", got, tc.wantTotal)
			}
			// Tracked since t0, the window reaches back further: covered = tracked − gaps.
			if want := float64(tc.now-tc.wantTotal) * 60; sum.CoveredSeconds != want {
				t.Errorf("covered %vs, want %vs", sum.CoveredSeconds, want)
			}
		})
	}
}

func TestHealthRejects(t *testing.T) {
	cases := map[string]flows.Health{
		"unknown state":         {Time: at(1), Source: "hubble", State: "sleepy"},
		"caught up, no since":   {Time: at(1), Source: "hubble", State: flows.CaughtUp},
		"caught up from future": {Time: at(1), Source: "hubble", State: flows.CaughtUp, Since: at(2)},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			s := newTestStore(t, testclock.NewFakePassiveClock(t0))
			s.Track("shop", t0)
			if err := s.Health(AllNamespaces(), h); err == nil {
				t.Fatal("Health accepted it")
			} else if !strings.Contains(err.Error(), "hubble") {
				t.Errorf("error %q does not name the source", err)
			}
		})
	}
}

func TestRecordGap(t *testing.T) {
	s := newTestStore(t, testclock.NewFakePassiveClock(t0))
	s.Track("shop", t0)
	s.Track("data", t0)
	bad := map[string]Gap{
		"no reason":        {Start: at(1), End: at(2)},
		"end before start": {Start: at(2), End: at(1), Reason: "cluster-snapshot-failed"},
		"no start":         {End: at(1), Reason: "cluster-snapshot-failed"},
	}
	for name, g := range bad {
		if err := s.RecordGap(AllNamespaces(), g); err == nil {
			t.Errorf("%s: RecordGap accepted %+v", name, g)
		}
	}
	g := Gap{Start: at(5), End: at(9), Reason: "cluster-snapshot-failed", Source: "informers", Message: "list pods: forbidden"}
	if err := s.RecordGap(Namespaces("shop"), g); err != nil {
		t.Fatal(err)
	}
	for _, d := range s.Dump().Namespaces {
		want := []Gap{}
		if d.Namespace == "shop" {
			want = []Gap{g}
		}
		if diff := cmp.Diff(want, d.Gaps, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s gaps (-want +got):\n%s", d.Namespace, diff)
		}
	}
}

func TestGapCapCoalescesOldest(t *testing.T) {
	s := newTestStore(t, testclock.NewFakePassiveClock(t0), func(o *Options) { o.MaxGapsPerNamespace = 3 })
	s.Track("shop", t0)
	for i := range 5 {
		if err := s.Health(AllNamespaces(), health(flows.Disconnected, 10*i)); err != nil {
			t.Fatal(err)
		}
		if err := s.Health(AllNamespaces(), health(flows.Connected, 10*i+1)); err != nil {
			t.Fatal(err)
		}
	}
	got := s.Dump().Namespaces[0].Gaps
	want := []Gap{
		{Start: at(0), End: at(21), Reason: GapCoalesced, Message: "older gaps merged: too many gaps in the window"},
		{Start: at(30), End: at(31), Reason: GapDisconnected, Source: "hubble"},
		{Start: at(40), End: at(41), Reason: GapDisconnected, Source: "hubble"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
}

// The canonical form of gaps must depend only on the set of gaps, whatever order they
// arrive in; Merge relies on it.
func TestNormalizeGapsOrderIndependent(t *testing.T) {
	gs := []gapRec{
		{start: 1, end: 5, reason: GapStalled, source: "h", message: "a"},
		{start: 4, end: 9, reason: GapStalled, source: "h", message: "d"},
		{start: 1, end: 7, reason: GapStalled, source: "h", message: "e"},
		{start: 20, end: 30, reason: GapStalled, source: "h", message: "z"},
		{start: 2, end: 3, reason: GapDisconnected, source: "h"},
	}
	want := normalizeGaps(append([]gapRec(nil), gs...))
	perm := []int{0, 1, 2, 3, 4}
	for range 50 {
		// Feed them one at a time, in a rotating order.
		perm = append(perm[1:], perm[0])
		perm[0], perm[2] = perm[2], perm[0]
		var got []gapRec
		for _, i := range perm {
			got = normalizeGaps(append(got, gs[i]))
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(gapRec{})); diff != "" {
			t.Fatalf("order %v (-want +got):\n%s", perm, diff)
		}
	}
}
