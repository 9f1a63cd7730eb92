package hubble

import "time"

// backoff is the wait between reconnects: initial, doubled per attempt up to max, each
// shortened by up to jitter of itself. Shortening rather than spreading around the nominal
// value keeps max a hard bound, which operators read as "at worst every max".
type backoff struct {
	initial, max time.Duration
	jitter       float64
	rand         func() float64 // in [0,1)
	attempt      int
}

func (b *backoff) next() time.Duration {
	d := b.initial
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	// Stop counting once capped so that attempt cannot grow without bound on a long outage.
	if d < b.max {
		b.attempt++
	}
	return d - time.Duration(b.jitter*b.rand()*float64(d))
}

func (b *backoff) reset() { b.attempt = 0 }
