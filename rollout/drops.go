package rollout

import (
	"fmt"
	"sync"
	"time"
)

// policyDropReasons are the Hubble drop reasons that mean "a NetworkPolicy denied it":
// POLICY_DENIED is the agent's name (drop_reason_desc), POLICY_DENY the one some Cilium
// versions report for deny rules. Other drops (no route, CT map full, ...) are not the
// policies' doing and never roll a namespace back.
var policyDropReasons = map[string]bool{"POLICY_DENIED": true, "POLICY_DENY": true}

// isPolicyDrop reports whether a Hubble verdict and drop reason are a policy drop.
func isPolicyDrop(verdict, reason string) bool {
	return verdict == "DROPPED" && policyDropReasons[reason]
}

// trip is a crossed drop threshold.
type trip struct {
	At      time.Time
	Drops   int
	Period  time.Duration
	Example string
}

func (t trip) String() string {
	return fmt.Sprintf("%d policy drops within %s, the last %s, e.g. %s", t.Drops, t.Period, t.At.UTC().Format(time.RFC3339), t.Example)
}

// dropCounter counts policy drops into enforced namespaces over a sliding period and
// latches when a namespace crosses its threshold. Memory per namespace is the threshold's
// worth of timestamps: only the last N drops matter to "N drops within the period".
type dropCounter struct {
	mu sync.Mutex
	ns map[string]*dropWindow
}

type dropWindow struct {
	threshold int
	period    time.Duration
	since     time.Time
	ring      []time.Time // the last drops, oldest at next
	next      int
	n         int
	tripped   *trip
}

func newDropCounter() *dropCounter { return &dropCounter{ns: map[string]*dropWindow{}} }

// Arm starts counting for namespace: drops observed at or after since, threshold of them
// within period trip it. Arming an armed namespace with the same settings keeps its
// count; different settings start over.
func (d *dropCounter) Arm(namespace string, threshold int, period time.Duration, since time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w, ok := d.ns[namespace]; ok && w.threshold == threshold && w.period == period && w.since.Equal(since) {
		return
	}
	d.ns[namespace] = &dropWindow{threshold: threshold, period: period, since: since, ring: make([]time.Time, threshold)}
}

// Disarm stops counting for namespace and forgets its drops.
func (d *dropCounter) Disarm(namespace string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.ns, namespace)
}

// Armed reports whether namespace is being counted.
func (d *dropCounter) Armed(namespace string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.ns[namespace]
	return ok
}

// Add records a drop into namespace at t. It returns true when this drop trips the
// threshold (once per arming).
func (d *dropCounter) Add(namespace string, t time.Time, example string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.ns[namespace]
	if !ok || w.tripped != nil || t.Before(w.since) {
		return false
	}
	w.ring[w.next] = t
	w.next = (w.next + 1) % w.threshold
	if w.n < w.threshold {
		w.n++
	}
	if w.n < w.threshold {
		return false
	}
	// The ring is full: the oldest of the last N drops is at next. Drops may arrive out
	// of order (a replay after a reconnect), so the span is taken over the whole ring.
	oldest, newest := w.ring[0], w.ring[0]
	for _, x := range w.ring[1:] {
		if x.Before(oldest) {
			oldest = x
		}
		if x.After(newest) {
			newest = x
		}
	}
	if newest.Sub(oldest) > w.period {
		return false
	}
	w.tripped = &trip{At: newest, Drops: w.threshold, Period: w.period, Example: example}
	return true
}

// Tripped returns the latched trip of namespace.
func (d *dropCounter) Tripped(namespace string) (trip, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.ns[namespace]
	if !ok || w.tripped == nil {
		return trip{}, false
	}
	return *w.tripped, true
}
