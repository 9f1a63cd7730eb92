package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowgate/shadowgate/simulate/bench"
)

// TestBenchGenThenSimulate: what bench gen writes is what simulate reads.
func TestBenchGenThenSimulate(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := run(t, "", "bench", "gen", "--profile", "s", "--seed", "3", "--flows", "2000", "-o", dir)
	if code != ExitOK {
		t.Fatalf("bench gen: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "run: shadowgate simulate --cluster "+filepath.Join(dir, "cluster")) {
		t.Errorf("bench gen output does not say how to use it: %q", out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "flows.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 2000 {
		t.Errorf("wrote %d lines, want 2000", n)
	}
	code, out, errOut = run(t, "", "simulate", "--cluster", filepath.Join(dir, "cluster"), "--flows", filepath.Join(dir, "flows.jsonl"), "-o", "json")
	if code != ExitFindings && code != ExitOK {
		t.Fatalf("simulate on the generated world: exit %d: %s", code, errOut)
	}
	var rep struct {
		Flows struct {
			Read      int64            `json:"read"`
			Evaluated int64            `json:"evaluated"`
			Malformed map[string]int64 `json:"malformed"`
		} `json:"flows"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("simulate -o json: %v", err)
	}
	if rep.Flows.Read != 2000 || rep.Flows.Evaluated == 0 || len(rep.Flows.Malformed) != 0 {
		t.Errorf("simulate read %d lines, evaluated %d, malformed %v; want 2000 read, some evaluated, none malformed",
			rep.Flows.Read, rep.Flows.Evaluated, rep.Flows.Malformed)
	}
}

func TestBenchBadInput(t *testing.T) {
	cases := map[string]struct {
		args    []string
		wantErr []string
	}{
		"gen without a directory": {args: []string{"bench", "gen"}, wantErr: []string{"needs -o DIR"}},
		"every bad flag at once": {
			args:    []string{"bench", "gen", "--profile", "XL", "--flows", "-5"},
			wantErr: []string{`profile "XL"`, "--flows -5", "needs -o DIR"},
		},
		"run with a bad format":        {args: []string{"bench", "run", "--profile", "S", "-o", "xml"}, wantErr: []string{`-o "xml"`}},
		"run with a missing flow file": {args: []string{"bench", "run", "--profile", "S", "--flows-file", "nope.jsonl"}, wantErr: []string{"--flows-file", "nope.jsonl"}},
		"a seed that is not a number":  {args: []string{"bench", "gen", "--seed", "x", "-o", "d"}, wantErr: []string{"invalid argument"}},
		"negative hot-path ops":        {args: []string{"bench", "run", "--hot-path-ops", "-1"}, wantErr: []string{"--hot-path-ops -1"}},
		"unknown memory profile":       {args: []string{"bench", "run", "--memory-profile", "XL"}, wantErr: []string{"--memory-profile"}},
		"negative memory edges":        {args: []string{"bench", "run", "--memory-edges", "-5"}, wantErr: []string{"--memory-edges -5"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := run(t, "", tc.args...)
			if code != ExitBadInput {
				t.Errorf("exit %d, want %d (stderr %q)", code, ExitBadInput, errOut)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not mention %q", errOut, w)
				}
			}
		})
	}
}

// TestBenchRunJSON runs the smallest profile end to end through the command.
func TestBenchRunJSON(t *testing.T) {
	code, out, errOut := run(t, "", "bench", "run", "--profile", "S", "--flows", "2000", "--hot-path-ops", "20000",
		"--memory-profile", "S", "--memory-edges", "2000", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res bench.Results
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bench run -o json: %v\n%s", err, out)
	}
	if res.Profile != "S" || res.Flows != 2000 || len(res.Figures) == 0 {
		t.Errorf("results: profile %q, %d flows, %d figures", res.Profile, res.Flows, len(res.Figures))
	}
	if !strings.Contains(errOut, "replaying") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
}
