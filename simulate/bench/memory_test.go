package bench_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shadowgate/shadowgate/simulate/bench"
)

// TestMemoryRow runs the memory measurement's child process (this test binary, re-run)
// on profile S: it must load the world, store exactly the edges asked for, re-evaluate
// them, and report sizes.
func TestMemoryRow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process that builds a world")
	}
	o := smallRun()
	o.TempDir = t.TempDir()
	o.MemoryProfile, o.MemoryEdges, o.MemoryHours = bench.ProfileS, 5_000, 3
	f, err := bench.MeasureMemory(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s (%s)", f.Name, f.Value, f.Detail)
	if f.Status == bench.NotMeasured || f.Number <= 0 {
		t.Errorf("status %q, number %v: want a measured re-evaluation time", f.Status, f.Number)
	}
	for _, want := range []string{"5000 edges stored", "each in 3 hours", "VmRSS after GC"} {
		if !strings.Contains(f.Detail, want) {
			t.Errorf("detail %q does not say %q", f.Detail, want)
		}
	}
}
