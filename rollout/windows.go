package rollout

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

// cronParser reads the five standard fields and the calendar descriptors (@daily, ...).
// Seconds are left out on purpose: a window is a human schedule.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// maxWindow bounds a window's duration, as the CRD does.
const maxWindow = 7 * 24 * time.Hour

// Windows are the parsed promotion windows of a rollout, read in their time zone.
type Windows struct {
	loc     *time.Location
	windows []window
}

type window struct {
	spec     string
	schedule cron.Schedule
	duration time.Duration
}

// ParseWindows parses spec.promotion. Every bad field is reported at once, with its path.
// A schedule may not carry its own CRON_TZ/TZ prefix (timeZone is the one place a zone is
// set), nor be an @every interval, which is not anchored to the calendar and so opens no
// predictable window.
func ParseWindows(p v1alpha1.PromotionSpec) (*Windows, error) {
	base := field.NewPath("spec", "promotion")
	var errs field.ErrorList
	tz := p.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		errs = append(errs, field.Invalid(base.Child("timeZone"), p.TimeZone, err.Error()))
	}
	w := &Windows{loc: loc}
	for i, pw := range p.Windows {
		path := base.Child("windows").Index(i)
		spec := strings.TrimSpace(pw.Schedule)
		switch {
		case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
			errs = append(errs, field.Invalid(path.Child("schedule"), pw.Schedule, "set the time zone in spec.promotion.timeZone, not in the schedule"))
			continue
		case strings.HasPrefix(spec, "@every"):
			errs = append(errs, field.Invalid(path.Child("schedule"), pw.Schedule, "@every is not anchored to the calendar; use a cron schedule or @daily, @weekly, ..."))
			continue
		}
		sched, err := cronParser.Parse(spec)
		if err != nil {
			errs = append(errs, field.Invalid(path.Child("schedule"), pw.Schedule, err.Error()))
			continue
		}
		if d := pw.Duration.Duration; d <= 0 || d > maxWindow {
			errs = append(errs, field.Invalid(path.Child("duration"), d.String(), "must be positive and at most 168h"))
			continue
		}
		w.windows = append(w.windows, window{spec: spec, schedule: sched, duration: pw.Duration.Duration})
	}
	if p.Policy == v1alpha1.PromoteAutomatically && len(p.Windows) == 0 {
		errs = append(errs, field.Required(base.Child("windows"), "automatic promotion needs at least one window"))
	}
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return w, nil
}

// Open reports whether now is inside a window: some opening a of a schedule has
// a <= now < a+duration. It returns the schedule and when that opening closes (the latest
// close when several windows are open).
func (w *Windows) Open(now time.Time) (open bool, schedule string, closes time.Time) {
	if w == nil {
		return false, "", time.Time{}
	}
	local := now.In(w.loc)
	for _, win := range w.windows {
		// Next is strictly after its argument: the openings after now-duration and not
		// after now are those whose window contains now, and the last of them closes
		// last. A schedule opens at most once a minute, so the walk is bounded by the
		// window's length in minutes.
		var last time.Time
		for a := win.schedule.Next(local.Add(-win.duration)); !a.IsZero() && !a.After(local); a = win.schedule.Next(a) {
			last = a
		}
		if last.IsZero() {
			continue
		}
		if end := last.Add(win.duration); end.After(closes) {
			open, schedule, closes = true, win.spec, end
		}
	}
	return open, schedule, closes
}

// NextOpen returns the earliest opening after now, or the zero time when no schedule
// opens again (a date that never comes, such as 30 February).
func (w *Windows) NextOpen(now time.Time) time.Time {
	if w == nil {
		return time.Time{}
	}
	var next time.Time
	for _, win := range w.windows {
		a := win.schedule.Next(now.In(w.loc))
		if !a.IsZero() && (next.IsZero() || a.Before(next)) {
			next = a
		}
	}
	return next
}
