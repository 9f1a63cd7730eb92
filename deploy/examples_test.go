package deploy

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/viper"

	"github.com/shadowgate/shadowgate/cmd/shadowgate/cli"
	"github.com/shadowgate/shadowgate/simulate/demo"
)

// The example ClientIntents close every gap `shadowgate simulate` finds in the demo shop:
// without them the demo's traffic would be dropped, with them none is. (The envtest
// install checks the API server accepts them and the NamespaceRollouts.)
func TestExampleIntentsCoverTheDemo(t *testing.T) {
	dir := t.TempDir()
	if err := demo.WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	base := []string{"simulate", "--quiet", "--cluster", filepath.Join(dir, "cluster"), "--flows", filepath.Join(dir, "flows.jsonl")}
	cases := map[string]struct {
		extra    []string
		wantCode int
	}{
		"the demo's own intents leave gaps": {wantCode: cli.ExitFindings},
		"with the examples nothing would be dropped": {
			extra:    []string{"--intents", filepath.Join("examples", "clientintents.yaml")},
			wantCode: cli.ExitOK,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{}, base...), tc.extra...)
			cmd := cli.New(viper.New())
			cmd.SetArgs(args)
			cmd.SetOut(&stdout)
			cmd.SetErr(&stderr)
			err := cmd.Execute()
			if got := cli.Code(err); got != tc.wantCode {
				t.Fatalf("shadowgate %s: exit %d (%v), want %d\n%s%s", strings.Join(args, " "), got, err, tc.wantCode, stdout.String(), stderr.String())
			}
		})
	}
}
