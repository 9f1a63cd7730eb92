package hubble

import (
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
)

// BenchmarkIngest measures flows per second from the test server, over loopback gRPC,
// through the source (normalization, de-duplication, the buffer) to a consumer. The
// server generates flows as it sends them and shares the CPUs, so this is a floor.
func BenchmarkIngest(b *testing.B) {
	base := time.Now()
	gen := func(i int) *flowpb.Flow { return cartToRedis.Nth(i, base, time.Microsecond) }
	// Hubble's default ring size: memory stays flat however large b.N grows.
	srv := hubbletest.Start(b, hubbletest.Scenario{Streams: [][]hubbletest.Step{{hubbletest.GenerateFlows(b.N, gen)}}},
		hubbletest.RingCapacity(4096))
	cfg := Default()
	cfg.Address = srv.Addr()
	cfg.ServerStatusInterval = 0
	src, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for n := 0; n < b.N; {
		ev, err := src.Next(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		switch ev.Kind {
		case flows.KindFlow:
			n++
		case flows.KindHealth:
			if ev.Health.State != flows.Connected {
				b.Fatalf("after %d flows: %s: %s", n, ev.Health.State, ev.Health.Message)
			}
		default:
			b.Fatalf("after %d flows: unexpected %s event", n, ev.Kind)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "flows/s")
}
