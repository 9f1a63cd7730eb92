package hubble

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoffSequence(t *testing.T) {
	cases := map[string]struct {
		initial, max time.Duration
		jitter, rand float64
		want         []time.Duration
	}{
		"doubles up to max without jitter": {
			initial: 100 * time.Millisecond, max: time.Second,
			want: []time.Duration{100e6, 200e6, 400e6, 800e6, 1e9, 1e9},
		},
		"jitter shortens by its share of the draw": {
			initial: 100 * time.Millisecond, max: time.Second, jitter: 0.2, rand: 0.5,
			want: []time.Duration{90e6, 180e6, 360e6, 720e6, 900e6, 900e6},
		},
		"max below a doubling caps it": {
			initial: 300 * time.Millisecond, max: 500 * time.Millisecond,
			want: []time.Duration{300e6, 500e6, 500e6},
		},
		"initial equal to max is constant": {
			initial: time.Second, max: time.Second, jitter: 0.5, rand: 0.999,
			want: []time.Duration{500_500_000, 500_500_000},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := backoff{initial: tc.initial, max: tc.max, jitter: tc.jitter, rand: func() float64 { return tc.rand }}
			var got []time.Duration
			for range tc.want {
				got = append(got, b.next())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
			b.reset()
			if d := b.next(); d != tc.want[0] {
				t.Errorf("after reset next() = %v, want %v", d, tc.want[0])
			}
		})
	}
}

// TestBackoffJitterBounds draws many delays: each lies in (nominal*(1-jitter), nominal],
// the draws spread over that range, and a long outage never overflows past max.
func TestBackoffJitterBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := backoff{initial: 50 * time.Millisecond, max: 30 * time.Second, jitter: 0.3, rand: r.Float64}
	nominal := b.initial
	for attempt := range 200 {
		lo, hi := time.Duration(float64(nominal)*(1-b.jitter)), nominal
		minSeen, maxSeen := hi, lo
		for range 200 {
			saved := b.attempt
			d := b.next()
			b.attempt = saved
			if d <= lo || d > hi {
				t.Fatalf("attempt %d: delay %v outside (%v, %v]", attempt, d, lo, hi)
			}
			minSeen, maxSeen = min(minSeen, d), max(maxSeen, d)
		}
		// 200 uniform draws leave no more than a few percent of the range unvisited.
		if spread := float64(maxSeen-minSeen) / float64(hi-lo); spread < 0.9 {
			t.Errorf("attempt %d: draws spread over %.0f%% of the jitter range, want most of it", attempt, spread*100)
		}
		b.next()
		nominal = min(nominal*2, b.max)
	}
}
