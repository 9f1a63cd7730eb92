package soak

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/utils/clock"
	testclock "k8s.io/utils/clock/testing"
)

// t0 is a Friday midnight; tests count from it.
var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func newTestStore(t testing.TB, clk clock.PassiveClock, mutate ...func(*Options)) *Store {
	t.Helper()
	opts := DefaultOptions()
	for _, m := range mutate {
		m(&opts)
	}
	s, err := New(opts, clk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wl(ns, name string) Peer { return Peer{Namespace: ns, Workload: name, Kind: "Deployment"} }

func tcp(src, dst Peer, port int32) EdgeKey {
	return EdgeKey{Source: src, Destination: dst, Protocol: "TCP", Port: port}
}

var (
	cart    = wl("shop", "cart")
	web     = wl("shop", "web")
	redis   = wl("data", "redis")
	pg      = wl("data", "postgres")
	world   = Peer{Kind: KindExternal, CIDR: "0.0.0.0/0"}
	cartRds = tcp(cart, redis, 6379)
	webCart = tcp(web, cart, 8080)
)

func covered(ns string) Verdict { return Verdict{Namespace: ns, Reason: "allowed by " + ns + "/np#0"} }
func uncovered(ns string) Verdict {
	return Verdict{Namespace: ns, Uncovered: true, Reason: "no intent allows it"}
}

func hc(at time.Time, n uint64) HourCount { return HourCount{Hour: at.Truncate(time.Hour), Count: n} }

func TestOptionsValidate(t *testing.T) {
	cases := map[string]struct {
		opts Options
		want []string
	}{
		"defaults": {opts: DefaultOptions()},
		"every field bad": {
			opts: Options{Window: 90 * time.Minute, MaxEdgesPerNamespace: 0, MaxEdges: -1, MaxGapsPerNamespace: 1},
			want: []string{"window", "maxEdgesPerNamespace", "maxEdges", "maxGapsPerNamespace"},
		},
		"window under an hour": {opts: func() Options { o := DefaultOptions(); o.Window = time.Minute; return o }(), want: []string{"window"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors about %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w+":") {
					t.Errorf("Validate() = %q, does not name %s", err, w)
				}
			}
		})
	}
}

func TestObserve(t *testing.T) {
	type obs struct {
		key EdgeKey
		at  time.Duration
		vs  []Verdict
	}
	cases := map[string]struct {
		obs  []obs
		want []NamespaceDump
	}{
		"counts, first and last, hour buckets": {
			obs: []obs{
				{cartRds, 10 * time.Minute, []Verdict{covered("data")}},
				{cartRds, 20 * time.Minute, []Verdict{covered("data")}},
				{cartRds, 3*time.Hour + time.Second, []Verdict{covered("data")}},
			},
			want: []NamespaceDump{{Namespace: "data", Edges: []EdgeDump{{
				EdgeKey: cartRds, Reason: "allowed by data/np#0", Count: 3,
				FirstSeen: t0.Add(10 * time.Minute), LastSeen: t0.Add(3*time.Hour + time.Second),
				Hours: []HourCount{hc(t0, 2), hc(t0.Add(3*time.Hour), 1)},
			}}}, {Namespace: "shop"}},
		},
		"each namespace keeps its own verdict": {
			obs: []obs{{cartRds, time.Minute, []Verdict{covered("data"), uncovered("shop")}}},
			want: []NamespaceDump{
				{Namespace: "data", Edges: []EdgeDump{{EdgeKey: cartRds, Reason: "allowed by data/np#0", Count: 1,
					FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(time.Minute), Hours: []HourCount{hc(t0, 1)}}}},
				{Namespace: "shop", Edges: []EdgeDump{{EdgeKey: cartRds, Uncovered: true, Reason: "no intent allows it", Count: 1,
					FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(time.Minute), Hours: []HourCount{hc(t0, 1)}}}},
			},
		},
		"untracked namespaces and repeats are ignored": {
			obs: []obs{{webCart, time.Minute, []Verdict{covered("payments"), covered("shop"), uncovered("shop")}}},
			want: []NamespaceDump{{Namespace: "data"}, {Namespace: "shop", Edges: []EdgeDump{{EdgeKey: webCart,
				Reason: "allowed by shop/np#0", Count: 1, FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(time.Minute),
				Hours: []HourCount{hc(t0, 1)}}}}},
		},
		"uncovered is sticky until re-evaluated": {
			obs: []obs{
				{cartRds, time.Minute, []Verdict{covered("data")}},
				{cartRds, 2 * time.Minute, []Verdict{uncovered("data")}},
				{cartRds, 3 * time.Minute, []Verdict{covered("data")}},
			},
			want: []NamespaceDump{{Namespace: "data", Edges: []EdgeDump{{EdgeKey: cartRds, Uncovered: true,
				Reason: "no intent allows it", Count: 3, FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(3 * time.Minute),
				Hours: []HourCount{hc(t0, 3)}}}}, {Namespace: "shop"}},
		},
		"the smallest reason of a kind wins whatever the order": {
			obs: []obs{
				{cartRds, time.Minute, []Verdict{{Namespace: "data", Reason: "allowed by data/b#0"}}},
				{cartRds, 2 * time.Minute, []Verdict{{Namespace: "data", Reason: "allowed by data/a#1"}}},
				{cartRds, 3 * time.Minute, []Verdict{{Namespace: "data", Reason: "allowed by data/c#0"}}},
			},
			want: []NamespaceDump{{Namespace: "data", Edges: []EdgeDump{{EdgeKey: cartRds, Reason: "allowed by data/a#1",
				Count: 3, FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(3 * time.Minute), Hours: []HourCount{hc(t0, 3)}}}},
				{Namespace: "shop"}},
		},
		"workload-level and external edges": {
			obs: []obs{
				{EdgeKey{Source: cart, Destination: redis}, time.Minute, []Verdict{covered("data")}},
				{EdgeKey{Source: world, Destination: web, Protocol: "TCP", Port: 443}, time.Minute, []Verdict{uncovered("shop")}},
			},
			want: []NamespaceDump{
				{Namespace: "data", Edges: []EdgeDump{{EdgeKey: EdgeKey{Source: cart, Destination: redis}, Reason: "allowed by data/np#0",
					Count: 1, FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(time.Minute), Hours: []HourCount{hc(t0, 1)}}}},
				{Namespace: "shop", Edges: []EdgeDump{{EdgeKey: EdgeKey{Source: world, Destination: web, Protocol: "TCP", Port: 443},
					Uncovered: true, Reason: "no intent allows it", Count: 1, FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(time.Minute),
					Hours: []HourCount{hc(t0, 1)}}}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newTestStore(t, testclock.NewFakePassiveClock(t0))
			s.Track("data", t0)
			s.Track("shop", t0)
			for _, o := range tc.obs {
				s.Observe(o.key, t0.Add(o.at), o.vs...)
			}
			got := s.Dump().Namespaces
			for i := range tc.want {
				tc.want[i].TrackedSince = t0
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("dump (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObserveZeroTimeUsesClock(t *testing.T) {
	clk := testclock.NewFakePassiveClock(t0.Add(90 * time.Minute))
	s := newTestStore(t, clk)
	s.Track("data", time.Time{})
	s.Observe(cartRds, time.Time{}, covered("data"))
	d := s.Dump().Namespaces[0]
	if !d.TrackedSince.Equal(clk.Now()) || !d.Edges[0].LastSeen.Equal(clk.Now()) {
		t.Errorf("tracked since %s, last seen %s; want both %s", d.TrackedSince, d.Edges[0].LastSeen, clk.Now())
	}
}

func TestTrackUntrack(t *testing.T) {
	s := newTestStore(t, testclock.NewFakePassiveClock(t0))
	s.Track("shop", t0)
	s.Track("shop", t0.Add(time.Hour)) // already tracked: keeps its start
	s.Observe(webCart, t0.Add(time.Minute), covered("shop"))
	if got := s.Dump().Namespaces[0].TrackedSince; !got.Equal(t0) {
		t.Errorf("re-tracking moved the start to %s", got)
	}
	s.Untrack("shop")
	if got := s.Tracked(); len(got) != 0 {
		t.Errorf("Tracked() = %v after Untrack", got)
	}
	if s.edgeCount != 0 {
		t.Errorf("edgeCount = %d after Untrack, want 0", s.edgeCount)
	}
	s.Track("shop", t0.Add(2*time.Hour))
	want := []NamespaceDump{{Namespace: "shop", TrackedSince: t0.Add(2 * time.Hour)}}
	if diff := cmp.Diff(want, s.Dump().Namespaces, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("re-tracked namespace starts over (-want +got):\n%s", diff)
	}
}

func TestOverflow(t *testing.T) {
	cases := map[string]struct {
		perNS, total int
		wantEdges    map[string]int
		wantOverflow map[string][]HourCount
	}{
		// Five new edges, each judged by data then shop, each observed twice: an observation
		// of a stored edge never overflows, every observation of an edge beyond a cap does.
		"namespace cap": {perNS: 2, total: 100,
			wantEdges:    map[string]int{"data": 2, "shop": 2},
			wantOverflow: map[string][]HourCount{"data": {hc(t0, 6)}, "shop": {hc(t0, 6)}}},
		"total cap": {perNS: 100, total: 3,
			wantEdges:    map[string]int{"data": 2, "shop": 1},
			wantOverflow: map[string][]HourCount{"data": {hc(t0, 6)}, "shop": {hc(t0, 8)}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newTestStore(t, testclock.NewFakePassiveClock(t0), func(o *Options) {
				o.MaxEdgesPerNamespace, o.MaxEdges = tc.perNS, tc.total
			})
			s.Track("data", t0)
			s.Track("shop", t0)
			for i := range 5 {
				k := tcp(wl("shop", fmt.Sprint("client-", i)), redis, 6379)
				s.Observe(k, t0.Add(time.Minute), covered("data"), uncovered("shop"))
				s.Observe(k, t0.Add(2*time.Minute), covered("data"), uncovered("shop"))
			}
			gotEdges := map[string]int{}
			gotOverflow := map[string][]HourCount{}
			for _, d := range s.Dump().Namespaces {
				gotEdges[d.Namespace] = len(d.Edges)
				gotOverflow[d.Namespace] = d.Overflow
			}
			if diff := cmp.Diff(tc.wantEdges, gotEdges); diff != "" {
				t.Errorf("edges (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantOverflow, gotOverflow); diff != "" {
				t.Errorf("overflow (-want +got):\n%s", diff)
			}
			if live := len(s.peers) - len(s.freePeers); live > 2*max(tc.wantEdges["data"], tc.wantEdges["shop"])+1 {
				t.Errorf("%d peers interned: edges that overflowed must not intern theirs", live)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	clk := testclock.NewFakePassiveClock(t0)
	s := newTestStore(t, clk, func(o *Options) { o.Window = 24 * time.Hour })
	s.Track("data", t0)
	s.Observe(cartRds, t0.Add(time.Hour), covered("data"))
	s.Observe(cartRds, t0.Add(30*time.Hour), covered("data"))
	old := tcp(pg, redis, 6379)
	s.Observe(old, t0.Add(2*time.Hour), Verdict{Namespace: "data", Reason: "only-old-edge-reason"})
	s.Lost(Namespaces("data"), t0.Add(time.Hour), 5)
	s.Lost(Namespaces("data"), t0.Add(29*time.Hour), 7)
	if err := s.RecordGap(Namespaces("data"), Gap{Start: t0, End: t0.Add(time.Hour), Reason: GapStalled, Source: "hubble"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordGap(Namespaces("data"), Gap{Start: t0.Add(28 * time.Hour), End: t0.Add(29 * time.Hour), Reason: GapStalled, Source: "hubble"}); err != nil {
		t.Fatal(err)
	}

	// The window ending at 31:30 starts at 7:00 (hour-aligned).
	s.Expire(t0.Add(31*time.Hour + 30*time.Minute))

	want := []NamespaceDump{{
		Namespace: "data", TrackedSince: t0,
		Edges: []EdgeDump{{EdgeKey: cartRds, Reason: "allowed by data/np#0", Count: 1, FirstSeen: t0.Add(time.Hour),
			LastSeen: t0.Add(30 * time.Hour), Hours: []HourCount{hc(t0.Add(30*time.Hour), 1)}}},
		Gaps: []Gap{{Start: t0.Add(28 * time.Hour), End: t0.Add(29 * time.Hour), Reason: GapStalled, Source: "hubble"}},
		Lost: []HourCount{hc(t0.Add(29*time.Hour), 7)},
	}}
	if diff := cmp.Diff(want, s.Dump().Namespaces, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after expiry (-want +got):\n%s", diff)
	}
	if _, ok := s.peerIDs[pg]; ok {
		t.Error("peer of the expired edge is still interned")
	}
	if _, ok := s.reasonIDs["only-old-edge-reason"]; ok {
		t.Error("reason of the expired edge is still interned")
	}
	// Freed ids are reused, and a re-observed edge starts afresh.
	s.Observe(old, t0.Add(31*time.Hour), covered("data"))
	if got := len(s.peers); got != 3 {
		t.Errorf("%d peer slots after reuse, want 3", got)
	}
	if d := s.Dump().Namespaces[0]; len(d.Edges) != 2 || !d.Edges[0].FirstSeen.Equal(t0.Add(31*time.Hour)) {
		t.Errorf("re-observed edge: %+v", d.Edges)
	}
}

func TestReevaluate(t *testing.T) {
	s := newTestStore(t, testclock.NewFakePassiveClock(t0))
	s.Track("data", t0)
	s.Track("shop", t0)
	s.Observe(cartRds, t0.Add(time.Minute), uncovered("data"), uncovered("shop"))
	s.Observe(webCart, t0.Add(time.Minute), covered("shop"))

	// The missing intent was added for cart→redis; the web→cart policy was removed.
	type call struct {
		ns  string
		key EdgeKey
	}
	var calls []call
	s.Reevaluate(func(ns string, k EdgeKey, _ bool) (bool, string) {
		calls = append(calls, call{ns, k})
		if k == webCart {
			return true, "policy shop/web-to-cart was deleted"
		}
		return false, "allowed by intent " + ns
	})
	if len(calls) != 3 {
		t.Errorf("judge called %d times, want once per stored edge (3): %v", len(calls), calls)
	}
	type verdict struct {
		NS        string
		Key       string
		Uncovered bool
		Reason    string
	}
	var got []verdict
	for _, d := range s.Dump().Namespaces {
		for _, e := range d.Edges {
			got = append(got, verdict{d.Namespace, e.EdgeKey.String(), e.Uncovered, e.Reason})
		}
	}
	want := []verdict{
		{"data", "shop/cart→data/redis:6379/TCP", false, "allowed by intent data"},
		{"shop", "shop/cart→data/redis:6379/TCP", false, "allowed by intent shop"},
		{"shop", "shop/web→shop/cart:8080/TCP", true, "policy shop/web-to-cart was deleted"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	if _, ok := s.reasonIDs["no intent allows it"]; ok {
		t.Error("a reason no edge uses any more is still interned")
	}
}

func TestScope(t *testing.T) {
	cases := map[string]struct {
		scope Scope
		want  map[string]uint64
	}{
		"zero scope selects nothing": {scope: Scope{}, want: map[string]uint64{"data": 0, "shop": 0, "kafka": 0}},
		"all":                        {scope: AllNamespaces(), want: map[string]uint64{"data": 4, "shop": 4, "kafka": 4}},
		"list, untracked and repeats ignored": {scope: Namespaces("shop", "nope", "shop", "data"),
			want: map[string]uint64{"data": 4, "shop": 4, "kafka": 0}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newTestStore(t, testclock.NewFakePassiveClock(t0))
			for ns := range tc.want {
				s.Track(ns, t0)
			}
			s.Lost(tc.scope, t0, 4)
			got := map[string]uint64{}
			for _, sum := range s.Summaries(t0.Add(time.Hour)) {
				got[sum.Namespace] = sum.LostEvents
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lost per namespace (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEdgesAndSummaryViews(t *testing.T) {
	s := newTestStore(t, testclock.NewFakePassiveClock(t0), func(o *Options) { o.Window = 24 * time.Hour })
	s.Track("data", t0)
	now := t0.Add(30 * time.Hour)
	s.Observe(tcp(web, redis, 6379), t0.Add(time.Hour), uncovered("data")) // before the window (starts 6:00)
	for range 3 {
		s.Observe(cartRds, t0.Add(7*time.Hour), uncovered("data"))
	}
	s.Observe(tcp(cart, pg, 5432), t0.Add(8*time.Hour), uncovered("data"))
	s.Observe(tcp(cart, pg, 5432), t0.Add(2*time.Hour), uncovered("data")) // counts only in its edge's totals
	s.Observe(tcp(web, pg, 5432), t0.Add(9*time.Hour), covered("data"))

	edges := s.Edges("data", now)
	var keys []string
	for _, e := range edges {
		keys = append(keys, fmt.Sprintf("%s count=%d", e.Key(), e.Count))
	}
	wantKeys := []string{
		"shop/cart→data/postgres:5432/TCP count=1",
		"shop/cart→data/redis:6379/TCP count=3",
		"shop/web→data/postgres:5432/TCP count=1",
	}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("Edges (-want +got):\n%s", diff)
	}
	sum, ok := s.Summary("data", now)
	if !ok {
		t.Fatal("Summary: data not tracked")
	}
	var unc []string
	for _, e := range sum.Uncovered {
		unc = append(unc, fmt.Sprintf("%s count=%d", e.Key(), e.Count))
	}
	wantUnc := []string{"shop/cart→data/redis:6379/TCP count=3", "shop/cart→data/postgres:5432/TCP count=1"}
	if diff := cmp.Diff(wantUnc, unc); diff != "" {
		t.Errorf("Summary.Uncovered (-want +got):\n%s", diff)
	}
	if sum.Connections != 5 || sum.Edges != 3 || sum.UncoveredEdges != 2 {
		t.Errorf("connections, edges, uncovered = %d, %d, %d; want 5, 3, 2", sum.Connections, sum.Edges, sum.UncoveredEdges)
	}
	if _, ok := s.Summary("nope", now); ok {
		t.Error("Summary of an untracked namespace reported ok")
	}
	if got := s.Edges("nope", now); got != nil {
		t.Errorf("Edges of an untracked namespace = %v", got)
	}
}

// Every entry point at once, for the race detector.
func TestConcurrentUse(t *testing.T) {
	clk := testclock.NewFakePassiveClock(t0)
	s := newTestStore(t, clk)
	other := newTestStore(t, clk)
	other.Track("data", t0)
	other.Observe(cartRds, t0, covered("data"))
	s.Track("data", t0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				at := t0.Add(time.Duration(i) * time.Minute)
				s.Observe(tcp(wl("shop", fmt.Sprint("c", g, i%7)), redis, 6379), at, covered("data"))
				switch i % 50 {
				case 10:
					s.Lost(AllNamespaces(), at, 1)
				case 20:
					if _, err := s.Gate("data", at, DefaultGateConfig()); err != nil {
						t.Error(err)
					}
				case 30:
					s.Reevaluate(func(string, EdgeKey, bool) (bool, string) { return false, "ok" })
				case 40:
					s.Expire(at)
					if err := s.Save(discard{}); err != nil {
						t.Error(err)
					}
				case 45:
					if err := s.Merge(other); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	// 4 goroutines × 7 clients, and the edge merged in.
	if n := len(s.Dump().Namespaces[0].Edges); n != 29 {
		t.Errorf("%d edges, want 29", n)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestUsage(t *testing.T) {
	clk := testclock.NewFakePassiveClock(t0)
	s := newTestStore(t, clk)
	s.Track("data", t0)
	s.Track("shop", t0)
	s.Observe(cartRds, t0, covered("data"), uncovered("shop"))
	s.Observe(webCart, t0, covered("shop"))
	if err := s.Save(discard{}); err != nil {
		t.Fatal(err)
	}
	want := Usage{Namespaces: 2, Edges: 3, Peers: 3, Reasons: 3, LastSaved: t0}
	if diff := cmp.Diff(want, s.Usage()); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}
