// Package cli builds the shadowgate command tree. Commands are constructed with the viper
// instance they read, so tests build a command with their own configuration and run it
// in-process.
package cli

import (
	"errors"
	"fmt"
)

// Exit codes, documented in the README. They are part of the contract: scripts and CI
// gates rely on them.
const (
	ExitOK       = 0
	ExitInternal = 1 // a bug or an environment failure (cannot write output, ...)
	ExitBadInput = 2 // bad flags, configuration, manifests or (with --strict) flows
	ExitFindings = 3 // something would be dropped / the gate does not pass
)

// ExitError carries the exit code for an error up to main.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

func badInput(err error) error { return &ExitError{Code: ExitBadInput, Err: err} }

// errFindings is returned when the command did its job and the answer is "no": the
// output has already been written, so there is nothing more to print.
var errFindings = &ExitError{Code: ExitFindings}

// Code maps an error to the process exit code, in one place.
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitInternal
}

// Silent reports whether the error was already reported by the command's own output.
func Silent(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.Err == nil
}
