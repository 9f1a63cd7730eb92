package flows_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// BenchmarkFileSource is a FileSource's share of a replay, without the simulator: every
// generated line of a profile is read and parsed, so the decoder's tables are as large and
// as cold as in a replay of that cluster (BenchmarkParseLineGenerated keeps its lines in
// cache instead). read=inline is a file or memory, parsed on Next's goroutine;
// read=goroutine is a pipe, parsed on the source's goroutine and handed over in batches.
// ns/op is per line.
func BenchmarkFileSource(b *testing.B) {
	for _, p := range []bench.Profile{bench.ProfileS, bench.ProfileM, bench.ProfileL} {
		data := bytes.Join(profileLines(b, p, 100_000), []byte("\n"))
		for _, mode := range []string{"inline", "goroutine"} {
			b.Run("profile="+p.Name+"/read="+mode, func(b *testing.B) {
				open := func() *flows.FileSource {
					if mode == "inline" {
						return flows.NewReader("bench", bytes.NewReader(data))
					}
					// Hiding the type makes it a reader that may block.
					return flows.NewReader("bench", struct{ io.Reader }{bytes.NewReader(data)})
				}
				ctx := context.Background()
				// One pass first, as a long replay is past its first sightings.
				drain(b, open())
				b.ReportAllocs()
				cpu := startCPU(b)
				src := open()
				for b.Loop() {
					_, err := src.Next(ctx)
					if errors.Is(err, io.EOF) {
						src.Close()
						src = open()
						continue
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				src.Close()
				cpu.report(b)
			})
		}
	}
}

func drain(b *testing.B, src *flows.FileSource) {
	b.Helper()
	defer src.Close()
	for {
		_, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
