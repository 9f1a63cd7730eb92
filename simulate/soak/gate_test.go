package soak

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	testclock "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/flows"
)

func TestGate(t *testing.T) {
	// now is midnight, so the 7-day window starts exactly 7 days earlier.
	now := t0.Add(8 * 24 * time.Hour)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	const day = 24 * time.Hour
	hubble := func(s *Store, state flows.HealthState, when time.Time, m string) {
		t.Helper()
		if err := s.Health(Namespaces("shop"), flows.Health{Time: when, Source: "hubble", State: state, Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]struct {
		opts       func(*Options)
		trackedFor time.Duration // default 8 days
		setup      func(s *Store)
		namespace  string // default shop
		cfg        func(*GateConfig)
		want       []Reason
	}{
		"clean namespace passes": {},
		"untracked namespace fails": {
			namespace: "payments",
			want: []Reason{{CodeUntracked,
				"namespace payments is not tracked: nothing was recorded for it, and missing data is never clean"}},
		},
		"tracked for less than the window": {
			trackedFor: 2*day + 3*time.Hour + 20*time.Minute,
			want:       []Reason{{CodeTracking, "tracked for 2d3h of 7d (since 2026-11-25 20:40 UTC)"}},
		},
		"a shorter gate window needs shorter tracking": {
			trackedFor: 2*day + 3*time.Hour,
			// 577 connections fall in the 2-day window.
			cfg: func(c *GateConfig) { c.Window, c.MinConnections = 2*day, 500 },
		},
		"uncovered edges": {
			setup: func(s *Store) {
				for range 5 {
					s.Observe(cartRds, ago(2*time.Hour), uncovered("shop"))
				}
				s.Observe(tcp(cart, pg, 5432), ago(time.Hour), uncovered("shop"))
				s.Observe(EdgeKey{Source: world, Destination: web, Protocol: "TCP", Port: 443}, ago(3*day), uncovered("shop"))
			},
			want: []Reason{{CodeUncovered, "3 uncovered edges, e.g. shop/cart→data/redis:6379/TCP last seen 2h ago"}},
		},
		"one uncovered workload-level edge": {
			setup: func(s *Store) {
				s.Observe(EdgeKey{Source: cart, Destination: redis}, ago(47*time.Minute), uncovered("shop"))
			},
			want: []Reason{{CodeUncovered, "1 uncovered edge, e.g. shop/cart→data/redis last seen 47m ago"}},
		},
		"uncovered edge seen only before the window does not count": {
			setup: func(s *Store) { s.Observe(cartRds, ago(7*day+time.Minute), uncovered("shop")) },
		},
		"uncovered edge fixed by re-evaluation": {
			setup: func(s *Store) {
				s.Observe(cartRds, ago(time.Hour), uncovered("shop"))
				s.Reevaluate(func(string, EdgeKey, bool) (bool, string) { return false, "allowed by the new intent" })
			},
		},
		"too few connections": {
			cfg:  func(c *GateConfig) { c.MinConnections = 5000 },
			want: []Reason{{CodeConnections, "only 1200 connections observed, need 5000"}},
		},
		"connections before the window do not count": {
			setup: func(s *Store) {
				for range 4000 {
					s.Observe(webCart, ago(7*day+time.Hour), covered("shop"))
				}
			},
			cfg:  func(c *GateConfig) { c.MinConnections = 5000 },
			want: []Reason{{CodeConnections, "only 1200 connections observed, need 5000"}},
		},
		"a single gap over the limit": {
			setup: func(s *Store) {
				hubble(s, flows.Disconnected, ago(3*day+13*time.Minute), "EOF")
				hubble(s, flows.Connected, ago(3*day-34*time.Minute), "")
			},
			cfg:  func(c *GateConfig) { c.MaxGap = 30 * time.Minute },
			want: []Reason{{CodeGap, "ingestion gap of 47m on 2026-11-24 23:47 UTC (source-disconnected from hubble: EOF), limit 30m"}},
		},
		"small gaps adding up": {
			setup: func(s *Store) {
				for i := range 3 {
					hubble(s, flows.Stalled, ago(time.Duration(i+1)*day), "")
					hubble(s, flows.Connected, ago(time.Duration(i+1)*day-15*time.Minute), "")
				}
			},
			cfg:  func(c *GateConfig) { c.MaxGap = 40 * time.Minute },
			want: []Reason{{CodeGapTotal, "ingestion gaps total 45m in 3 gaps, limit 40m"}},
		},
		"overlapping gaps count once": {
			setup: func(s *Store) {
				hubble(s, flows.Stalled, ago(day), "")
				hubble(s, flows.Disconnected, ago(day-10*time.Minute), "")
				hubble(s, flows.Connected, ago(day-20*time.Minute), "")
			},
			cfg: func(c *GateConfig) { c.MaxGap = 21 * time.Minute },
		},
		"an ongoing gap runs to now": {
			setup: func(s *Store) { hubble(s, flows.Disconnected, ago(2*time.Hour), "connection refused") },
			want: []Reason{{CodeGap,
				"ingestion gap of 2h since 2026-11-27 22:00 UTC, ongoing (source-disconnected from hubble: connection refused), limit 1h"}},
		},
		"a gap before the window does not count": {
			setup: func(s *Store) {
				hubble(s, flows.Disconnected, ago(7*day+3*time.Hour), "")
				hubble(s, flows.Connected, ago(7*day+time.Minute), "")
			},
		},
		"lost flows": {
			setup: func(s *Store) {
				s.Lost(Namespaces("shop"), ago(time.Hour), 7)
				s.Lost(AllNamespaces(), ago(2*day), 5)
			},
			want: []Reason{{CodeLostEvents, "12 flows lost (Hubble lost_events) in the window, threshold 0"}},
		},
		"lost flows under the threshold": {
			setup: func(s *Store) { s.Lost(AllNamespaces(), ago(time.Hour), 12) },
			cfg:   func(c *GateConfig) { c.LostEventsThreshold = 12 },
		},
		"lost flows of another scope": {
			setup: func(s *Store) { s.Lost(Namespaces("data"), ago(time.Hour), 12) },
		},
		"overflow": {
			opts: func(o *Options) { o.MaxEdgesPerNamespace = 1 },
			setup: func(s *Store) {
				s.Observe(cartRds, ago(time.Hour), covered("shop"))
				s.Observe(cartRds, ago(time.Hour), covered("shop"))
			},
			want: []Reason{{CodeOverflow, "2 observations of new edges not stored: edge cap reached (caps now 1 per namespace, 2000000 in total)"}},
		},
		"every reason at once, in a stable order": {
			opts:       func(o *Options) { o.MaxEdgesPerNamespace = 1 },
			trackedFor: day,
			setup: func(s *Store) {
				s.Observe(cartRds, ago(time.Hour), uncovered("shop"))
				s.Lost(AllNamespaces(), ago(time.Hour), 1)
				hubble(s, flows.Disconnected, ago(time.Hour), "EOF")
			},
			cfg: func(c *GateConfig) { c.MinConnections = 1_000_000 },
			want: []Reason{
				{CodeTracking, "tracked for 1d of 7d (since 2026-11-27 00:00 UTC)"},
				{CodeConnections, "only 1200 connections observed, need 1000000"},
				{CodeGap, "ingestion gap of 1h since 2026-11-27 23:00 UTC, ongoing (source-disconnected from hubble: EOF), limit 1h"},
				{CodeLostEvents, "1 flows lost (Hubble lost_events) in the window, threshold 0"},
				{CodeOverflow, "1 observations of new edges not stored: edge cap reached (caps now 1 per namespace, 2000000 in total)"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			clk := testclock.NewFakePassiveClock(now)
			s := newTestStore(t, clk, func(o *Options) {
				if tc.opts != nil {
					tc.opts(o)
				}
			})
			tracked := tc.trackedFor
			if tracked == 0 {
				tracked = 8 * day
			}
			s.Track("shop", ago(tracked))
			s.Track("data", ago(tracked))
			// 1200 covered connections, one every 5 minutes over the last 100 hours: the one
			// edge a capped namespace can hold.
			for i := range 1200 {
				s.Observe(webCart, ago(time.Duration(i)*5*time.Minute), covered("shop"))
			}
			if tc.setup != nil {
				tc.setup(s)
			}
			cfg := DefaultGateConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			ns := tc.namespace
			if ns == "" {
				ns = "shop"
			}
			got, err := s.Gate(ns, now, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Reasons, cmp.Comparer(func(a, b []Reason) bool {
				return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b)
			})); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if got.Pass != (len(tc.want) == 0) {
				t.Errorf("Pass = %t with reasons %v", got.Pass, got.Reasons)
			}
		})
	}
}

func TestGateStats(t *testing.T) {
	now := t0.Add(10 * 24 * time.Hour)
	s := newTestStore(t, testclock.NewFakePassiveClock(now))
	s.Track("data", t0)
	for i := range 8 {
		k := tcp(wl("shop", fmt.Sprint("client-", i)), redis, 6379)
		for range i + 1 {
			s.Observe(k, now.Add(-time.Duration(i+1)*time.Hour), uncovered("data"))
		}
	}
	for range 100 {
		s.Observe(tcp(pg, redis, 6379), now.Add(-time.Hour), covered("data"))
	}
	s.Lost(AllNamespaces(), now.Add(-time.Hour), 3)
	if err := s.Health(AllNamespaces(), flows.Health{Time: now.Add(-3 * time.Hour), Source: "hubble", State: flows.Disconnected}); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(AllNamespaces(), flows.Health{Time: now.Add(-150 * time.Minute), Source: "hubble", State: flows.Connected}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultGateConfig()
	cfg.TopN = 3
	got, err := s.Gate("data", now, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	for _, e := range got.Stats.Uncovered {
		top = append(top, fmt.Sprintf("%s×%d", e.Source.Workload, e.Count))
	}
	type stats struct {
		Top                                      []string
		Connections                              int64
		Edges, Uncovered                         int
		GapSeconds, LongestGap, Covered, Tracked float64
		Lost                                     uint64
		WindowStart, TrackedSince                time.Time
	}
	want := stats{
		Top: []string{"client-7×8", "client-6×7", "client-5×6"}, Connections: 136, Edges: 9, Uncovered: 8,
		GapSeconds: 1800, LongestGap: 1800, Covered: 7*24*3600 - 1800, Tracked: 10 * 24 * 3600, Lost: 3,
		WindowStart: t0.Add(3 * 24 * time.Hour), TrackedSince: t0,
	}
	st := got.Stats
	gotStats := stats{top, st.Connections, st.Edges, st.UncoveredEdges, st.GapSeconds, st.LongestGapSeconds,
		st.CoveredSeconds, st.TrackedSeconds, st.LostEvents, st.WindowStart, st.TrackedSince}
	if diff := cmp.Diff(want, gotStats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if got.WindowSeconds != 7*24*3600 || got.MinConnections != 1000 || got.MaxGapSeconds != 3600 {
		t.Errorf("config echo = %v, %v, %v", got.WindowSeconds, got.MinConnections, got.MaxGapSeconds)
	}
}

func TestGateConfigValidate(t *testing.T) {
	s := newTestStore(t, testclock.NewFakePassiveClock(t0))
	cases := map[string]struct {
		cfg  GateConfig
		want []string
	}{
		"every field bad": {cfg: GateConfig{Window: -time.Hour, MinConnections: -1, MaxGap: 0, TopN: 0},
			want: []string{"window:", "minConnections:", "maxGap:", "topN:"}},
		"window not whole hours": {cfg: func() GateConfig { c := DefaultGateConfig(); c.Window = 90 * time.Minute; return c }(),
			want: []string{"window:"}},
		"window longer than the store keeps": {cfg: func() GateConfig { c := DefaultGateConfig(); c.Window = 8 * 24 * time.Hour; return c }(),
			want: []string{"window 8d exceeds the 7d the store keeps"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Gate("shop", t0, tc.cfg)
			if err == nil {
				t.Fatal("Gate accepted the config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestFmtDuration(t *testing.T) {
	cases := map[string]struct {
		d    time.Duration
		want string
	}{
		"zero":             {0, "0s"},
		"seconds":          {35*time.Second + 900*time.Millisecond, "35s"},
		"minutes":          {47*time.Minute + 59*time.Second, "47m"},
		"whole hours":      {2 * time.Hour, "2h"},
		"hours, minutes":   {2*time.Hour + 5*time.Minute, "2h5m"},
		"days and hours":   {51*time.Hour + 20*time.Minute, "2d3h"},
		"whole days":       {7 * 24 * time.Hour, "7d"},
		"just under a day": {24*time.Hour - time.Nanosecond, "23h59m"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := fmtDuration(tc.d); got != tc.want {
				t.Errorf("fmtDuration(%s) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}
