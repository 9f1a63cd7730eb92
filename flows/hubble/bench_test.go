package hubble

import (
	"syscall"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/proto"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
)

// BenchmarkIngest measures flows per second from the test server, over loopback gRPC,
// through the source (decoding, de-duplication, the buffer) to a consumer. The server
// shares the CPUs: with server=generate it builds and marshals each flow as it sends it,
// which makes the figure a floor; with server=encoded it sends messages marshaled before
// the timer starts, as a relay forwards what its agents encoded.
func BenchmarkIngest(b *testing.B) {
	base := time.Now()
	gen := func(i int) *flowpb.Flow { return cartToRedis.Nth(i, base, time.Microsecond) }
	b.Run("server=generate", func(b *testing.B) {
		// Hubble's default ring size: memory stays flat however large b.N grows.
		benchIngest(b, hubbletest.Scenario{Streams: [][]hubbletest.Step{{hubbletest.GenerateFlows(b.N, gen)}}},
			hubbletest.RingCapacity(4096))
	})
	b.Run("server=encoded", func(b *testing.B) {
		msgs := make([][]byte, b.N)
		for i := range msgs {
			f := gen(i)
			m, err := proto.Marshal(&observerpb.GetFlowsResponse{
				Time: f.GetTime(), NodeName: f.GetNodeName(), ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f},
			})
			if err != nil {
				b.Fatal(err)
			}
			msgs[i] = m
		}
		benchIngest(b, hubbletest.Scenario{Streams: [][]hubbletest.Step{{hubbletest.SendEncoded(msgs)}}})
	})
}

func benchIngest(b *testing.B, sc hubbletest.Scenario, opts ...hubbletest.Option) {
	srv := hubbletest.Start(b, sc, opts...)
	cfg := Default()
	cfg.Address = srv.Addr()
	cfg.ServerStatusInterval = 0
	src, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()

	b.ReportAllocs()
	cpu0 := processCPU(b)
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
	// Client and server together: what the two cores spent per flow.
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
