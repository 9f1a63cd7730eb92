package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

func pw(schedule string, d time.Duration) v1alpha1.PromotionWindow {
	return v1alpha1.PromotionWindow{Schedule: schedule, Duration: metav1.Duration{Duration: d}}
}

func TestParseWindowsErrors(t *testing.T) {
	cases := map[string]struct {
		spec v1alpha1.PromotionSpec
		want []string // substrings of the error, all of them
	}{
		"unknown time zone": {
			spec: v1alpha1.PromotionSpec{TimeZone: "Mars/Olympus", Windows: []v1alpha1.PromotionWindow{pw("@daily", time.Hour)}},
			want: []string{`spec.promotion.timeZone: Invalid value: "Mars/Olympus"`},
		},
		"zone in the schedule": {
			spec: v1alpha1.PromotionSpec{Windows: []v1alpha1.PromotionWindow{pw("CRON_TZ=Europe/Paris 0 9 * * *", time.Hour)}},
			want: []string{"spec.promotion.windows[0].schedule", "set the time zone in spec.promotion.timeZone"},
		},
		"@every is not a window": {
			spec: v1alpha1.PromotionSpec{Windows: []v1alpha1.PromotionWindow{pw("@every 1h", time.Hour)}},
			want: []string{"spec.promotion.windows[0].schedule", "not anchored to the calendar"},
		},
		"six fields": {
			spec: v1alpha1.PromotionSpec{Windows: []v1alpha1.PromotionWindow{pw("0 0 9 * * *", time.Hour)}},
			want: []string{"spec.promotion.windows[0].schedule", "expected exactly 5 fields"},
		},
		"zero duration": {
			spec: v1alpha1.PromotionSpec{Windows: []v1alpha1.PromotionWindow{pw("@daily", 0)}},
			want: []string{"spec.promotion.windows[0].duration", "must be positive"},
		},
		"automatic without windows": {
			spec: v1alpha1.PromotionSpec{Policy: v1alpha1.PromoteAutomatically},
			want: []string{"spec.promotion.windows: Required value"},
		},
		"every problem at once": {
			spec: v1alpha1.PromotionSpec{TimeZone: "Nowhere", Windows: []v1alpha1.PromotionWindow{pw("bad", time.Hour), pw("@hourly", -time.Minute)}},
			want: []string{"timeZone", "windows[0].schedule", "windows[1].duration"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWindows(tc.spec)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestWindowsOpen(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// 2026-03-02 is a Monday; Paris is on CET (UTC+1) until 29 March.
	weekdayMornings := v1alpha1.PromotionSpec{TimeZone: "Europe/Paris", Windows: []v1alpha1.PromotionWindow{pw("0 9 * * 1-5", 2*time.Hour)}}
	type want struct {
		Open     bool
		Schedule string
		Closes   time.Time
		NextOpen time.Time
	}
	cases := map[string]struct {
		spec v1alpha1.PromotionSpec
		now  time.Time
		want want
	}{
		"before the window, in the zone's time": {
			spec: weekdayMornings, now: utc("2026-03-02T07:59:59Z"),
			want: want{NextOpen: utc("2026-03-02T08:00:00Z")},
		},
		"at the opening": {
			spec: weekdayMornings, now: utc("2026-03-02T08:00:00Z"),
			want: want{Open: true, Schedule: "0 9 * * 1-5", Closes: utc("2026-03-02T10:00:00Z"), NextOpen: utc("2026-03-03T08:00:00Z")},
		},
		"inside": {
			spec: weekdayMornings, now: utc("2026-03-02T09:59:59Z"),
			want: want{Open: true, Schedule: "0 9 * * 1-5", Closes: utc("2026-03-02T10:00:00Z"), NextOpen: utc("2026-03-03T08:00:00Z")},
		},
		"at the close": {
			spec: weekdayMornings, now: utc("2026-03-02T10:00:00Z"),
			want: want{NextOpen: utc("2026-03-03T08:00:00Z")},
		},
		"weekend": {
			spec: weekdayMornings, now: utc("2026-03-07T08:30:00Z"),
			want: want{NextOpen: utc("2026-03-09T08:00:00Z")},
		},
		"after the clocks change, the same local hour": {
			spec: weekdayMornings, now: utc("2026-03-30T07:30:00Z"),
			want: want{Open: true, Schedule: "0 9 * * 1-5", Closes: utc("2026-03-30T09:00:00Z"), NextOpen: utc("2026-03-31T07:00:00Z")},
		},
		"a window longer than its period is always open": {
			spec: v1alpha1.PromotionSpec{Windows: []v1alpha1.PromotionWindow{pw("@hourly", 90*time.Minute)}}, now: utc("2026-03-02T12:10:00Z"),
			want: want{Open: true, Schedule: "@hourly", Closes: utc("2026-03-02T13:30:00Z"), NextOpen: utc("2026-03-02T13:00:00Z")},
		},
		"overlapping windows close with the later": {
			spec: v1alpha1.PromotionSpec{Windows: []v1alpha1.PromotionWindow{pw("0 12 * * *", time.Hour), pw("30 11 * * *", 3*time.Hour)}},
			now:  utc("2026-03-02T12:15:00Z"),
			want: want{Open: true, Schedule: "30 11 * * *", Closes: utc("2026-03-02T14:30:00Z"), NextOpen: utc("2026-03-03T11:30:00Z")},
		},
		"a date that never comes": {
			spec: v1alpha1.PromotionSpec{Windows: []v1alpha1.PromotionWindow{pw("0 0 30 2 *", time.Hour)}}, now: utc("2026-03-02T12:00:00Z"),
			want: want{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w, err := ParseWindows(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			var got want
			got.Open, got.Schedule, got.Closes = w.Open(tc.now)
			got.NextOpen = w.NextOpen(tc.now)
			got.Closes, got.NextOpen = inUTC(got.Closes), inUTC(got.NextOpen)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("at %s (-want +got):\n%s", tc.now, diff)
			}
		})
	}
}

func inUTC(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
