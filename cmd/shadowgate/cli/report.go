package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/shadowgate/shadowgate/simulate/suggest"
	"github.com/shadowgate/shadowgate/simulate/ui"
)

func newReportCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write the access graph report as one self-contained HTML file",
		Long: `report writes one HTML file that needs nothing else (no network, no CDN): a namespace
overview, the access graph of every observed edge coloured by what enforcement would do to it
(covered, would drop, dropped today, open), details on click, and the edges that would be
dropped with the ClientIntents that would cover them, ready to copy.

Input: the same as suggest: an offline simulation (--cluster and --flows; neither for the
built-in demo), a saved report (--report FILE), or a running daemon (--url http://host:port).

Exit codes: 0 written (whether or not something would be dropped), 2 bad input, 1 internal
error.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := reportInputsFrom(v)
			if err != nil {
				return err
			}
			path := v.GetString("html")
			if path == "" {
				return badInput(errors.New("report needs --html FILE ('-' for standard output)"))
			}
			so := suggest.Options{APIVersion: v.GetString("api-version")}
			if err := so.Validate(); err != nil {
				return badInput(fmt.Errorf("--api-version: %w", err))
			}
			rep, known, err := in.load(cmd.Context(), cmd)
			if err != nil {
				return err
			}
			sug, err := suggest.Suggest(rep, known, so)
			if err != nil {
				return badInput(err)
			}
			if path == "-" {
				return ui.Render(cmd.OutOrStdout(), rep, sug)
			}
			if err := writeFileAtomic(path, func(w *bufio.Writer) error { return ui.Render(w, rep, sug) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d edges, %d would be dropped, %d suggested ClientIntents\n",
				path, len(rep.Edges), len(rep.Uncovered), len(sug.Intents))
			return nil
		},
	}
	addReportInputFlags(cmd.Flags())
	cmd.Flags().String("html", "", "the HTML file to write ('-' for standard output)")
	cmd.Flags().String("api-version", suggest.DefaultAPIVersion, "ClientIntents version of new suggested objects: "+strings.Join(suggest.APIVersions, " | "))
	return cmd
}

// writeFileAtomic writes path through a temporary file in the same directory, so a
// browser with the report open never reads half a page.
func writeFileAtomic(path string, write func(*bufio.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".shadowgate-report-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
