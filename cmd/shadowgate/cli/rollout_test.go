package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

func TestParseWindowFlag(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    v1alpha1.PromotionWindow
		wantErr string
	}{
		"weekday mornings":   {in: "0 9 * * 1-5=2h", want: v1alpha1.PromotionWindow{Schedule: "0 9 * * 1-5", Duration: metav1.Duration{Duration: 2 * time.Hour}}},
		"descriptor, spaces": {in: " @daily = 30m ", want: v1alpha1.PromotionWindow{Schedule: "@daily", Duration: metav1.Duration{Duration: 30 * time.Minute}}},
		"no duration":        {in: "0 9 * * *", wantErr: "want CRON=DURATION"},
		"bad duration":       {in: "0 9 * * *=soon", wantErr: `duration "soon"`},
		"negative duration":  {in: "0 9 * * *=-1h", wantErr: "positive duration"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parseWindowFlag(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFmtDuration(t *testing.T) {
	cases := map[time.Duration]string{
		0:                                 "0s",
		1500 * time.Millisecond:           "2s",
		47 * time.Minute:                  "47m",
		2 * time.Hour:                     "2h",
		2*time.Hour + 5*time.Minute:       "2h5m",
		7 * 24 * time.Hour:                "7d",
		3*24*time.Hour + 4*time.Hour + 59: "3d4h",
	}
	for d, want := range cases {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestStatusTable(t *testing.T) {
	now := time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { v := metav1.NewTime(now.Add(-d)); return &v }
	gate := func(ok bool) []metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return []metav1.Condition{{Type: v1alpha1.ConditionGatePassed, Status: s}}
	}
	list := &v1alpha1.NamespaceRolloutList{Items: []v1alpha1.NamespaceRollout{
		{Spec: v1alpha1.NamespaceRolloutSpec{Namespace: "payments", Mode: v1alpha1.Enforce},
			Status: v1alpha1.NamespaceRolloutStatus{Mode: v1alpha1.Enforce, Phase: v1alpha1.PhaseEnforcing, SoakStart: at(10 * 24 * time.Hour),
				ObservedConnections: 52000, Conditions: gate(true),
				LastPromotion: &v1alpha1.Transition{Time: *at(2 * time.Hour), By: "alice"}}},
		{Spec: v1alpha1.NamespaceRolloutSpec{Namespace: "shop", Mode: v1alpha1.Shadow},
			Status: v1alpha1.NamespaceRolloutStatus{Mode: v1alpha1.Shadow, Phase: v1alpha1.PhaseRolledBack, SoakStart: at(3*24*time.Hour + 12*time.Hour),
				ObservedConnections: 1234, UncoveredEdges: 3, Conditions: gate(false),
				LastPromotion: &v1alpha1.Transition{Time: *at(5 * time.Hour), By: "alice"},
				LastRollback:  &v1alpha1.Transition{Time: *at(47 * time.Minute), By: "system:serviceaccount:shadowgate-system:shadowgate-controller", Automatic: true}}},
		{Spec: v1alpha1.NamespaceRolloutSpec{Namespace: "new"}},
	}}
	var b bytes.Buffer
	if err := writeRollouts(&b, "table", list, now); err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE  MODE     PHASE       GATE  SOAK            UNCOVERED  CONNECTIONS  LAST TRANSITION
payments   Enforce  Enforcing   pass  7d/7d (100%)    0          52000        promoted 2h ago by alice
shop       Shadow   RolledBack  fail  3d12h/7d (50%)  3          1234         rolled back 47m ago by system:serviceaccount:shadowgate-system:shadowgate-controller
new        -        -           -     -               0          0            -
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

// The controller's configuration comes from flags, SHADOWGATE_* variables and the file,
// and is checked before anything connects.
func TestControllerConfiguration(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("soak-history: 30m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		env     map[string]string
		args    []string
		wantErr string
	}{
		"bad flag value":      {args: []string{"--soak-history", "90m"}, wantErr: "soak-history: 1h30m0s must be a whole number of hours"},
		"from the env":        {env: map[string]string{"SHADOWGATE_RESYNC": "-1s"}, wantErr: "resync: -1s must be positive"},
		"from the file":       {args: []string{"--config", file}, wantErr: "soak-history: 30m0s"},
		"flag over the file":  {args: []string{"--config", file, "--soak-history", "2h", "--external", "never"}, wantErr: `external: unknown external mode "never"`},
		"exclusive sources":   {args: []string{"--flows", "f.jsonl", "--hubble", "relay:80"}, wantErr: "--flows follows a file: it does not mix with --hubble"},
		"bad hubble address":  {args: []string{"--hubble", "http://relay"}, wantErr: "--hubble: "},
		"unreadable kubeconf": {args: []string{"--kubeconfig", filepath.Join(dir, "missing")}, wantErr: "kubeconfig: "},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, stderr := run(t, "", append([]string{"controller"}, tc.args...)...)
			if code != ExitBadInput || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitBadInput, tc.wantErr)
			}
		})
	}
}

func TestRolloutCommandsBadInput(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cases := map[string]struct {
		args    []string
		wantErr string
	}{
		"promote without a namespace":  {args: []string{"promote"}, wantErr: "accepts 1 arg"},
		"status with two namespaces":   {args: []string{"status", "a", "b"}, wantErr: "at most one namespace"},
		"status --wait for everything": {args: []string{"status", "--wait"}, wantErr: "--wait needs a namespace"},
		"status --for something else":  {args: []string{"status", "shop", "--wait", "--for", "done"}, wantErr: `--for "done"`},
		"status -o xml":                {args: []string{"status", "-o", "xml"}, wantErr: `-o "xml"`},
		"init with a bad window":       {args: []string{"init", "shop", "--window", "0 9 * * *"}, wantErr: "want CRON=DURATION"},
		"rollback without a cluster":   {args: []string{"rollback", "shop", "--kubeconfig", missing}, wantErr: "kubeconfig: "},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := run(t, "", tc.args...)
			if code != ExitBadInput || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitBadInput, tc.wantErr)
			}
		})
	}
}
