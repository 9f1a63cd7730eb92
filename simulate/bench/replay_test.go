package bench_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/shadowgate/shadowgate/flows"
)

// BenchmarkReplayRead is BenchmarkReplay on one core (GOMAXPROCS=1, as bench run's
// replay and scaling rows measure), for each way a FileSource reads: read=inline is a
// file or memory, parsed by Next on the consumer's goroutine; read=goroutine is a pipe,
// parsed by the source's own goroutine and handed over in batches. ns/op is per line.
func BenchmarkReplayRead(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		data := bytes.Join(f.lines, []byte("\n"))
		for _, mode := range []string{"inline", "goroutine"} {
			b.Run("read="+mode, func(b *testing.B) {
				open := func() *flows.FileSource {
					if mode == "inline" {
						return flows.NewReader("bench", bytes.NewReader(data))
					}
					// Hiding the type makes it a reader that may block.
					return flows.NewReader("bench", struct{ io.Reader }{bytes.NewReader(data)})
				}
				sim := f.simulator(b)
				ctx := context.Background()
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
				b.ReportAllocs()
				cpu := startCPU(b)
				src := open()
				for b.Loop() {
					ev, err := src.Next(ctx)
					if errors.Is(err, io.EOF) {
						src.Close()
						src = open()
						continue
					}
					if err != nil {
						b.Fatal(err)
					}
					sim.Observe(ev)
				}
				src.Close()
				cpu.report(b)
			})
		}
	})
}
