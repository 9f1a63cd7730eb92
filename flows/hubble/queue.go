package hubble

import (
	"context"
	"sync"

	"github.com/shadowgate/shadowgate/flows"
)

// The source moves events between its goroutines in batches: a channel send per flow,
// and the goroutine wake-up it often causes, cost more than decoding the flow. Each
// queue is a slice under a mutex that the taker swaps out whole, with one-token
// channels to wake a waiting side; a token may be stale, so waiters look again.

// maxInboxBatch bounds how many decoded responses wait for the stream loop.
const maxInboxBatch = 1024

// inbox carries decoded responses from the receiving goroutine to the stream loop.
type inbox struct {
	mu    sync.Mutex
	items []flows.Event
	err   error // the receive error that ended the stream, after items
	limit int
	ready chan struct{} // a token when items or err may be there
	space chan struct{} // a token when items were taken
}

func newInbox(limit int) *inbox {
	return &inbox{limit: max(limit, 1), ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// put adds ev, or the error that ended the stream, waiting while the inbox is full. It
// returns false when ctx ended first.
func (in *inbox) put(ctx context.Context, ev flows.Event, err error) bool {
	for {
		in.mu.Lock()
		if err == nil && len(in.items) >= in.limit {
			in.mu.Unlock()
			select {
			case <-in.space:
				continue
			case <-ctx.Done():
				return false
			}
		}
		// A token is owed only when the inbox was empty: otherwise the one left for
		// what is there already brings the taker, who takes everything.
		wake := len(in.items) == 0 && in.err == nil
		if err != nil {
			in.err = err
		} else {
			in.items = append(in.items, ev)
		}
		in.mu.Unlock()
		if wake {
			signal(in.ready)
		}
		return true
	}
}

// take returns what has arrived, reusing spare for the next batch.
func (in *inbox) take(spare []flows.Event) ([]flows.Event, error) {
	clear(spare)
	in.mu.Lock()
	items, err := in.items, in.err
	in.items, in.err = spare[:0], nil
	in.mu.Unlock()
	signal(in.space)
	return items, err
}

// outbox holds the events waiting for the consumer, at most limit of them.
type outbox struct {
	mu    sync.Mutex
	items []flows.Event
	limit int
	ready chan struct{} // a token when items may be there
	space chan struct{} // a token when items were taken
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: max(limit, 1), ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// put adds as many of evs as fit and returns how many.
func (o *outbox) put(evs []flows.Event) int {
	o.mu.Lock()
	n := min(len(evs), o.limit-len(o.items))
	o.items = append(o.items, evs[:n]...)
	o.mu.Unlock()
	if n > 0 {
		signal(o.ready)
	}
	return n
}

// take returns the waiting events, empty when there are none, reusing spare for the
// next batch. The consumer owns the batch it took: the buffer holds up to limit more.
func (o *outbox) take(spare []flows.Event) []flows.Event {
	clear(spare)
	o.mu.Lock()
	items := o.items
	if len(items) == 0 {
		o.mu.Unlock()
		return spare[:0]
	}
	o.items = spare[:0]
	o.mu.Unlock()
	signal(o.space)
	return items
}

// signal leaves a token in c unless one is there already.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
