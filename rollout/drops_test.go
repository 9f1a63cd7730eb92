package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDropCounter(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(s ...int) []time.Time {
		out := make([]time.Time, len(s))
		for i, sec := range s {
			out[i] = t0.Add(time.Duration(sec) * time.Second)
		}
		return out
	}
	type step struct {
		drops []time.Time
		// trips is the index in drops of the drop that trips the counter, -1 for none.
		trips int
	}
	cases := map[string]struct {
		threshold int
		period    time.Duration
		steps     []step
		want      *trip
	}{
		"under the threshold": {
			threshold: 3, period: time.Minute,
			steps: []step{{drops: at(0, 10), trips: -1}},
		},
		"threshold within the period trips on the last drop": {
			threshold: 3, period: time.Minute,
			steps: []step{{drops: at(0, 10, 60), trips: 2}},
			want:  &trip{At: t0.Add(time.Minute), Drops: 3, Period: time.Minute, Example: "d"},
		},
		"spread over more than the period": {
			threshold: 3, period: time.Minute,
			steps: []step{{drops: at(0, 30, 61, 100, 150), trips: -1}},
		},
		"a burst after a trickle": {
			threshold: 3, period: time.Minute,
			steps: []step{{drops: at(0, 100, 200, 201, 202), trips: 4}},
			want:  &trip{At: t0.Add(202 * time.Second), Drops: 3, Period: time.Minute, Example: "d"},
		},
		"out of order, as a replay delivers them": {
			threshold: 3, period: time.Minute,
			steps: []step{{drops: at(50, 0, 30), trips: 2}},
			want:  &trip{At: t0.Add(50 * time.Second), Drops: 3, Period: time.Minute, Example: "d"},
		},
		"drops before enforcement do not count": {
			threshold: 2, period: time.Minute,
			steps: []step{{drops: at(-30, -20, -10), trips: -1}, {drops: at(1), trips: -1}},
		},
		"latched: later drops trip nothing more": {
			threshold: 2, period: time.Minute,
			steps: []step{{drops: at(1, 2), trips: 1}, {drops: at(3, 4, 5), trips: -1}},
			want:  &trip{At: t0.Add(2 * time.Second), Drops: 2, Period: time.Minute, Example: "d"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := newDropCounter()
			d.Arm("shop", tc.threshold, tc.period, t0)
			for si, st := range tc.steps {
				for i, at := range st.drops {
					if got, want := d.Add("shop", at, "d"), i == st.trips; got != want {
						t.Errorf("step %d, drop %d at %s: tripped %t, want %t", si, i, at.Format(time.TimeOnly), got, want)
					}
				}
			}
			got, ok := d.Tripped("shop")
			var gotp *trip
			if ok {
				gotp = &got
			}
			if diff := cmp.Diff(tc.want, gotp); diff != "" {
				t.Errorf("trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDropCounterArming(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	d := newDropCounter()
	if d.Add("shop", t0, "x") || d.Armed("shop") {
		t.Fatal("an unarmed namespace counts drops")
	}
	d.Arm("shop", 2, time.Minute, t0)
	d.Add("shop", t0.Add(time.Second), "x")
	d.Arm("shop", 2, time.Minute, t0) // a resync re-arms with the same settings
	if !d.Add("shop", t0.Add(2*time.Second), "x") {
		t.Error("re-arming with the same settings lost the count")
	}
	d.Arm("shop", 3, time.Minute, t0) // new settings start over
	if _, ok := d.Tripped("shop"); ok {
		t.Error("new settings kept the old trip")
	}
	d.Disarm("shop")
	if d.Armed("shop") || d.Add("shop", t0.Add(3*time.Second), "x") {
		t.Error("a disarmed namespace counts drops")
	}
}

func TestIsPolicyDrop(t *testing.T) {
	cases := map[string]struct {
		verdict, reason string
		want            bool
	}{
		"policy denied":        {"DROPPED", "POLICY_DENIED", true},
		"deny rule":            {"DROPPED", "POLICY_DENY", true},
		"other drop reason":    {"DROPPED", "CT_MAP_INSERTION_FAILED", false},
		"forwarded":            {"FORWARDED", "", false},
		"audit of a would-be":  {"AUDIT", "POLICY_DENIED", false},
		"drop without a cause": {"DROPPED", "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := isPolicyDrop(tc.verdict, tc.reason); got != tc.want {
				t.Errorf("isPolicyDrop(%q, %q) = %t, want %t", tc.verdict, tc.reason, got, tc.want)
			}
		})
	}
}
