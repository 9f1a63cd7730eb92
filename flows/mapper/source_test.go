package mapper

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/mapper/mappertest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// driver runs Next in a goroutine against a fake clock, so that a test can collect what one
// poll yields and then move time to the next poll.
type driver struct {
	t       *testing.T
	src     *Source
	clock   *clocktesting.FakeClock
	results chan result
	cancel  context.CancelFunc
	done    chan struct{}
}

type result struct {
	ev  flows.Event
	err error
}

// newDriver starts a Source with cfg; tweaks run before its first poll.
func newDriver(t *testing.T, cfg Config, tweaks ...func(*Source)) *driver {
	t.Helper()
	fc := clocktesting.NewFakeClock(t0)
	src, err := New(cfg, WithClock(fc))
	if err != nil {
		t.Fatal(err)
	}
	// Deterministic backoff: the tests check the schedule, TestBackoffDelay the jitter.
	src.rand = func() float64 { return 0 }
	for _, tw := range tweaks {
		tw(src)
	}
	ctx, cancel := context.WithCancel(t.Context())
	d := &driver{t: t, src: src, clock: fc, results: make(chan result), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for {
			ev, err := src.Next(ctx)
			select {
			case d.results <- result{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-d.done
		src.Close()
	})
	return d
}

// idle returns the events the Source yields until it waits on the clock for its next poll.
// The Source creates its timer only once its queue is empty and the results channel is
// unbuffered, so a waiter on the clock means every event of the poll was received.
func (d *driver) idle() []flows.Event {
	d.t.Helper()
	var events []flows.Event
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case r := <-d.results:
			if r.err != nil {
				d.t.Fatalf("Next after %d events: %v", len(events), r.err)
			}
			events = append(events, r.ev)
			continue
		default:
		}
		if d.clock.HasWaiters() {
			return events
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("the Source neither yielded an event nor waited for 10s; got %d events", len(events))
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// view is what the scenarios compare: time as an offset from t0, edges as text.
type view struct {
	Kind   string
	At     time.Duration
	State  flows.HealthState
	Since  time.Duration
	Edge   string
	Detail string
}

func viewOf(ev flows.Event) view {
	v := view{Kind: ev.Kind.String(), Detail: ev.Detail}
	switch {
	case ev.Health != nil:
		v.At, v.State = ev.Health.Time.Sub(t0), ev.Health.State
		if !ev.Health.Since.IsZero() {
			v.Since = ev.Health.Since.Sub(t0)
		}
	case ev.Flow != nil:
		f := ev.Flow
		v.At = f.Time.Sub(t0)
		if !f.WorkloadLevel || f.Source.IP.IsValid() || f.Destination.IP.IsValid() || f.DestinationPort != 0 || f.Protocol != "" {
			v.Edge = "not a workload-level observation: "
		}
		side := func(ep flows.Endpoint) string {
			s := ep.Namespace + "/"
			for _, w := range ep.Workloads {
				s += w.Name + "(" + w.Kind + ")"
			}
			return s
		}
		v.Edge += side(f.Source) + " → " + side(f.Destination)
	}
	return v
}

// step is one moment of a scenario: change the mapper, move the clock, and read what the
// Source yields until it waits again.
type step struct {
	do      func(*mappertest.Server)
	advance time.Duration
	want    []view
	// wantMessages are substrings of the Health messages, in order; "" skips one.
	wantMessages []string
}

var (
	cart     = mappertest.Identity{Name: "cart", Namespace: "shop", Kind: "Deployment", Group: "apps", Version: "v1"}
	redis    = mappertest.Identity{Name: "redis", Namespace: "shop", Kind: "StatefulSet", Group: "apps", Version: "v1"}
	checkout = mappertest.Identity{Name: "checkout", Namespace: "pay", Kind: "Deployment", Group: "apps", Version: "v1"}
	kafka    = mappertest.Identity{Name: "kafka", Namespace: "data", Kind: "StatefulSet", Group: "apps", Version: "v1"}
	batch    = mappertest.Identity{Name: "report", Namespace: "data", Kind: "CronJob", Group: "batch", Version: "v1"}
	shell    = mappertest.Identity{Name: "debug-shell", Namespace: "shop"}
)

const (
	cartRedis     = "shop/cart(Deployment) → shop/redis(StatefulSet)"
	checkoutCart  = "pay/checkout(Deployment) → shop/cart(Deployment)"
	cartKafka     = "shop/cart(Deployment) → data/kafka(StatefulSet)"
	batchKafka    = "data/report(CronJob) → data/kafka(StatefulSet)"
	shellRedis    = "shop/debug-shell() → shop/redis(StatefulSet)"
	poll          = 30 * time.Second
	health        = "health"
	flow          = "flow"
	connected     = flows.Connected
	disconnected  = flows.Disconnected
	caughtUp      = flows.CaughtUp
	malformed     = "malformed"
	invalidIntent = "network-mapper intent shop/ → shop/redis: client and server need a name and a namespace"
)

func discover(in ...mappertest.Intent) func(*mappertest.Server) {
	return func(s *mappertest.Server) { s.Discover(in...) }
}

func TestSourceScenarios(t *testing.T) {
	cases := map[string]struct {
		cfg   func(*Config)
		steps []step
	}{
		"edges are reported when discovered, not on every poll": {
			steps: []step{
				{
					do: discover(mappertest.Intent{Client: cart, Server: redis}, mappertest.Intent{Client: checkout, Server: cart}),
					want: []view{
						{Kind: health, State: connected},
						{Kind: flow, Edge: checkoutCart},
						{Kind: flow, Edge: cartRedis},
					},
					wantMessages: []string{"polling MAPPER"},
				},
				{advance: poll},
				{
					// One intent per type at the mapper; one edge at workload level.
					do:      discover(mappertest.Intent{Client: cart, Server: redis, Type: "DATABASE"}, mappertest.Intent{Client: cart, Server: kafka, Type: "KAFKA"}),
					advance: poll,
					want:    []view{{Kind: flow, At: 2 * poll, Edge: cartKafka}},
				},
				{advance: poll},
			},
		},
		"namespaces keep edges touching them on either side": {
			cfg: func(c *Config) { c.Namespaces = []string{"shop"} },
			steps: []step{{
				do: discover(
					mappertest.Intent{Client: cart, Server: redis},
					mappertest.Intent{Client: checkout, Server: cart},
					mappertest.Intent{Client: cart, Server: kafka},
					mappertest.Intent{Client: batch, Server: kafka},
				),
				want: []view{
					{Kind: health, State: connected},
					{Kind: flow, Edge: checkoutCart},
					{Kind: flow, Edge: cartKafka},
					{Kind: flow, Edge: cartRedis},
				},
			}},
		},
		"an unusable intent is reported once while the mapper keeps it": {
			steps: []step{
				{
					do: discover(
						mappertest.Intent{Client: mappertest.Identity{Namespace: "shop"}, Server: redis},
						mappertest.Intent{Client: shell, Server: redis},
					),
					want: []view{
						{Kind: health, State: connected},
						{Kind: malformed, Detail: invalidIntent},
						{Kind: flow, Edge: shellRedis},
					},
				},
				{advance: poll},
				{do: func(s *mappertest.Server) { s.Restart() }, advance: poll, want: []view{
					{Kind: health, At: poll, State: disconnected},
					{Kind: health, At: 2 * poll, State: connected},
				}},
				{
					do:      discover(mappertest.Intent{Client: mappertest.Identity{Namespace: "shop"}, Server: redis}),
					advance: poll,
					want:    []view{{Kind: malformed, Detail: invalidIntent}},
				},
			},
		},
		"unreachable from the start: backoff, then connected without catching up": {
			steps: []step{
				{
					do:           func(s *mappertest.Server) { s.Stop() },
					want:         []view{{Kind: health, State: disconnected}},
					wantMessages: []string{"connection refused"},
				},
				// Backoff 1s, 2s, 4s: nothing new to say while still down.
				{advance: time.Second},
				{advance: 2 * time.Second},
				{
					do:      func(s *mappertest.Server) { s.Start(); s.Discover(mappertest.Intent{Client: cart, Server: redis}) },
					advance: 4 * time.Second,
					want: []view{
						{Kind: health, At: 7 * time.Second, State: connected},
						{Kind: flow, At: 7 * time.Second, Edge: cartRedis},
					},
				},
				// Back on the poll interval, from the start of the good poll.
				{advance: poll},
			},
		},
		"a failure after a good poll opens the gap at that poll; a mapper that kept everything closes it": {
			steps: []step{
				{
					do:   discover(mappertest.Intent{Client: cart, Server: redis}),
					want: []view{{Kind: health, State: connected}, {Kind: flow, Edge: cartRedis}},
				},
				{
					do:           func(s *mappertest.Server) { s.Fail(mappertest.HTTPStatus(503, "no healthy upstream")) },
					advance:      poll,
					want:         []view{{Kind: health, State: disconnected}},
					wantMessages: []string{"HTTP 503 Service Unavailable: \"no healthy upstream\" (nothing the network-mapper saw since the last good poll at 2026-03-01T12:00:00Z is confirmed)"},
				},
				{
					do:      func(s *mappertest.Server) { s.Fail(mappertest.GraphQLErrors("intents store unavailable")) },
					advance: time.Second,
				},
				{
					do: func(s *mappertest.Server) {
						s.Heal()
						s.Discover(mappertest.Intent{Client: checkout, Server: cart})
					},
					advance: 2 * time.Second,
					want: []view{
						{Kind: health, At: poll + 3*time.Second, State: connected},
						{Kind: flow, At: poll + 3*time.Second, Edge: checkoutCart},
						{Kind: health, At: poll + 3*time.Second, State: caughtUp, Since: 0},
					},
					wantMessages: []string{"polling MAPPER again", "still has every edge"},
				},
			},
		},
		"a mapper that restarted between polls: gap since the last poll, every edge it has is new": {
			steps: []step{
				{
					do: discover(mappertest.Intent{Client: cart, Server: redis}, mappertest.Intent{Client: checkout, Server: cart}),
					want: []view{
						{Kind: health, State: connected},
						{Kind: flow, Edge: checkoutCart},
						{Kind: flow, Edge: cartRedis},
					},
				},
				{
					do: func(s *mappertest.Server) {
						s.Restart()
						s.Discover(mappertest.Intent{Client: cart, Server: redis})
					},
					advance: poll,
					want: []view{
						{Kind: health, At: 0, State: disconnected},
						{Kind: health, At: poll, State: connected},
						{Kind: flow, At: poll, Edge: cartRedis},
					},
					wantMessages: []string{"no longer has 1 edge (pay/checkout → shop/cart) it reported at 2026-03-01T12:00:00Z: it restarted or was reset", ""},
				},
				{advance: poll},
			},
		},
		"a mapper that restarted while unreachable: no catching up": {
			steps: []step{
				{
					do:   discover(mappertest.Intent{Client: cart, Server: redis}),
					want: []view{{Kind: health, State: connected}, {Kind: flow, Edge: cartRedis}},
				},
				{
					do:      func(s *mappertest.Server) { s.Stop() },
					advance: poll,
					want:    []view{{Kind: health, At: 0, State: disconnected}},
				},
				{
					do: func(s *mappertest.Server) {
						s.Restart()
						s.Start()
						s.Discover(mappertest.Intent{Client: checkout, Server: cart})
					},
					advance: time.Second,
					want: []view{
						{Kind: health, At: poll + time.Second, State: connected},
						{Kind: flow, At: poll + time.Second, Edge: checkoutCart},
					},
					wantMessages: []string{"no longer has 1 edge (shop/cart → shop/redis): it restarted while unreachable"},
				},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := mappertest.New(t)
			cfg := Default()
			cfg.URL = srv.URL()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var d *driver
			for i, st := range tc.steps {
				if st.do != nil {
					st.do(srv)
				}
				if d == nil {
					d = newDriver(t, cfg) // the first poll happens at once
				} else {
					d.clock.Step(st.advance)
				}
				events := d.idle()
				var got []view
				var messages []string
				for _, ev := range events {
					got = append(got, viewOf(ev))
					if ev.Health != nil {
						if ev.Health.Source != SourceName {
							t.Errorf("step %d: Health.Source %q, want %q", i, ev.Health.Source, SourceName)
						}
						messages = append(messages, strings.ReplaceAll(ev.Health.Message, srv.URL(), "MAPPER"))
					}
				}
				if diff := cmp.Diff(st.want, got); diff != "" {
					t.Fatalf("step %d: events (-want +got):\n%s", i, diff)
				}
				for j, want := range st.wantMessages {
					if j >= len(messages) || !strings.Contains(messages[j], want) {
						t.Errorf("step %d: health messages %q, want message %d to contain %q", i, messages, j, want)
					}
				}
			}
			for _, r := range srv.Requests() {
				if r.OperationName != OperationName || r.Query != Query || len(r.Variables) != 0 {
					t.Errorf("request %+v, want operation %s with Query and no variables", r, OperationName)
				}
			}
		})
	}
}

func TestSourceTimeout(t *testing.T) {
	srv := mappertest.New(t)
	srv.Fail(mappertest.Stall())
	cfg := Default()
	cfg.URL = srv.URL()
	cfg.Timeout = 50 * time.Millisecond
	d := newDriver(t, cfg)
	events := d.idle()
	if len(events) != 1 || events[0].Health == nil || events[0].Health.State != flows.Disconnected {
		t.Fatalf("events %+v, want one Disconnected", events)
	}
	if msg := events[0].Health.Message; !strings.Contains(msg, "no answer within the 50ms timeout") {
		t.Errorf("message %q, want it to name the timeout", msg)
	}
}

func TestSourceMaxResponseBytes(t *testing.T) {
	srv := mappertest.New(t)
	for i := range 20 {
		srv.Discover(mappertest.Intent{Client: cart, Server: mappertest.Identity{Name: fmt.Sprintf("server-%d", i), Namespace: "shop"}})
	}
	cfg := Default()
	cfg.URL = srv.URL()
	cfg.MaxResponseBytes = 512
	events := newDriver(t, cfg).idle()
	if len(events) != 1 || events[0].Health == nil || !strings.Contains(events[0].Health.Message, "answer is longer than maxResponseBytes (512)") {
		t.Fatalf("events %+v, want one Disconnected naming the limit", events)
	}
}

// A query the mapper refuses is a failure like any other: the gap is reported with the
// mapper's own words. The schema check of the fake is what catches it in tests.
func TestSourceReportsRefusedQuery(t *testing.T) {
	srv := mappertest.New(t)
	cfg := Default()
	cfg.URL = srv.URL()
	d := newDriver(t, cfg, func(s *Source) {
		s.body = []byte(`{"query":"{ intents { client { name } lastSeen } }"}`)
	})
	events := d.idle()
	if len(events) != 1 || events[0].Health == nil {
		t.Fatalf("events %+v, want one Disconnected", events)
	}
	want := `HTTP 422 Unprocessable Entity: Cannot query field "lastSeen" on type "Intent". [GRAPHQL_VALIDATION_FAILED]`
	if msg := events[0].Health.Message; !strings.Contains(msg, want) {
		t.Errorf("message %q, want it to contain %q", msg, want)
	}
	if r := srv.TakeRejections(); len(r) != 1 {
		t.Errorf("the fake refused %q, want the one query", r)
	}
}

func TestSourceContext(t *testing.T) {
	t.Run("canceled while waiting for the next poll", func(t *testing.T) {
		srv := mappertest.New(t)
		srv.Discover(mappertest.Intent{Client: cart, Server: redis})
		cfg := Default()
		cfg.URL = srv.URL()
		fc := clocktesting.NewFakeClock(t0)
		src, err := New(cfg, WithClock(fc))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		for range 2 {
			if _, err := src.Next(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := src.Next(ctx)
			errc <- err
		}()
		for deadline := time.Now().Add(10 * time.Second); !fc.HasWaiters(); time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatal("Next never waited for the next poll")
			}
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Next = %v, want context.Canceled", err)
		}
		if fc.HasWaiters() {
			t.Error("the poll timer outlived the canceled Next")
		}
		// Nothing is lost: the next Next waits for the same poll.
		srv.Discover(mappertest.Intent{Client: checkout, Server: cart})
		fc.Step(poll)
		ev, err := src.Next(t.Context())
		if err != nil || ev.Flow == nil || viewOf(ev).Edge != checkoutCart {
			t.Fatalf("Next after the cancel = %+v, %v; want the new edge", ev, err)
		}
	})
	t.Run("canceled during a poll is not a mapper failure", func(t *testing.T) {
		srv := mappertest.New(t)
		srv.Fail(mappertest.Stall())
		cfg := Default()
		cfg.URL = srv.URL()
		src, err := New(cfg, WithClock(clocktesting.NewFakeClock(t0)))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := src.Next(ctx)
			errc <- err
		}()
		for deadline := time.Now().Add(10 * time.Second); len(srv.Requests()) == 0; time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatal("the poll never reached the mapper")
			}
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Next = %v, want context.Canceled", err)
		}
		srv.Heal()
		ev, err := src.Next(t.Context())
		if err != nil || ev.Health == nil || ev.Health.State != flows.Connected {
			t.Fatalf("Next after the cancel = %+v, %v; want Connected, with no Disconnected before it", ev, err)
		}
	})
	t.Run("an already canceled context", func(t *testing.T) {
		cfg := Default()
		src, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := src.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next = %v, want context.Canceled without contacting %s", err, cfg.URL)
		}
	})
}
