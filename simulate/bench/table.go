package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the results for people: a header naming the run and the machine,
// then one row per figure with its target and whether it was met.
func (r *Results) WriteTable(w io.Writer) error {
	m := r.Machine
	if _, err := fmt.Fprintf(w, "shadowgate bench run: profile %s, seed %d, %d flows, %s\nmachine: %d CPUs, %s, %s; load average %s at start, %s at end\n\n",
		r.Profile, r.Seed, r.Flows, r.Date.Format("2006-01-02 15:04 MST"), m.CPUs, m.Model, m.GoVersion, m.LoadStart, m.LoadEnd); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tRESULT\tTARGET\tSTATUS")
	for _, f := range r.Figures {
		target := f.Target
		if target == "" {
			target = "-"
		}
		value := f.Value
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, value, target, f.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w, "\ndetails:"); err != nil {
		return err
	}
	for _, f := range r.Figures {
		if f.Detail != "" {
			if _, err := fmt.Fprintf(w, "  %s: %s\n", f.Name, f.Detail); err != nil {
				return err
			}
		}
	}
	return nil
}
