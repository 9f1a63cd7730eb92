package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

const (
	rulesFile   = "rules/shadowgate.rules.yaml"
	runbookBase = "https://github.com/shadowgate/shadowgate/blob/main/alerts/runbook.md#"
)

// promtool finds Debian's promtool. CI installs it, so there a missing binary fails the
// test instead of silently skipping the rule checks.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not found on PATH with CI set (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not found (apt-get install prometheus): %v", err)
	}
	return path
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", rulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	files, err := filepath.Glob("rules/tests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests under rules/tests: %v", err)
	}
	runPromtool(t, append([]string{"test", "rules"}, files...)...)
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

type alertRule struct {
	name, expr  string
	labels      map[string]string
	annotations map[string]string
}

func loadAlerts(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var out []alertRule
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, alertRule{r.Alert, r.Expr, r.Labels, r.Annotations})
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no alerts", rulesFile)
	}
	return out
}

var (
	alertNameRE  = regexp.MustCompile(`^Shadowgate[A-Z][A-Za-z]+$`)
	metricRefRE  = regexp.MustCompile(`\bshadowgate_[a-z_]+`)
	descNameRE   = regexp.MustCompile(`fqName: "([^"]+)"`)
	docMetricRE  = regexp.MustCompile("(?m)^\\| `(shadowgate_[a-z_]+)` \\|")
	severityWant = map[string]bool{"critical": true, "warning": true, "info": true}
)

// TestAlertConventions holds every alert to the house rules: a Shadowgate CamelCase name, a
// severity, a summary, a description, a runbook_url that points at an existing section of
// runbook.md, and an expression over metrics this package really exports.
func TestAlertConventions(t *testing.T) {
	runbook, err := os.ReadFile("runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedMetrics(New(0))
	for _, a := range loadAlerts(t) {
		t.Run(a.name, func(t *testing.T) {
			if !alertNameRE.MatchString(a.name) {
				t.Errorf("name %q is not Shadowgate followed by CamelCase", a.name)
			}
			if !severityWant[a.labels["severity"]] {
				t.Errorf("severity %q: want critical, warning or info", a.labels["severity"])
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(a.annotations[k]) == "" {
					t.Errorf("annotation %s is missing", k)
				}
			}
			if want := runbookBase + strings.ToLower(a.name); a.annotations["runbook_url"] != want {
				t.Errorf("runbook_url = %q, want %q", a.annotations["runbook_url"], want)
			}
			if !strings.Contains(string(runbook), "\n## "+a.name+"\n") {
				t.Errorf("runbook.md has no section \"## %s\"", a.name)
			}
			for _, ref := range metricRefRE.FindAllString(a.expr, -1) {
				if !exported[ref] {
					t.Errorf("expression uses %s, which alerts.New does not export", ref)
				}
			}
		})
	}
}

// TestEveryAlertIsUnitTested: each alert has a promtool case where it fires and one where
// it must not.
func TestEveryAlertIsUnitTested(t *testing.T) {
	type testFile struct {
		Tests []struct {
			Name          string `json:"name"`
			AlertRuleTest []struct {
				AlertName string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	files, err := filepath.Glob("rules/tests/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf testFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) > 0 {
					firing[at.AlertName] = true
				} else {
					quiet[at.AlertName] = true
				}
			}
		}
	}
	for _, a := range loadAlerts(t) {
		if !firing[a.name] {
			t.Errorf("%s: no promtool case where it fires", a.name)
		}
		if !quiet[a.name] {
			t.Errorf("%s: no promtool case where it must not fire", a.name)
		}
	}
}

// TestMetricsDocumented keeps metrics.md's table and the code in step: every exported
// metric has a row, and every row names an exported metric.
func TestMetricsDocumented(t *testing.T) {
	b, err := os.ReadFile("metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range docMetricRE.FindAllStringSubmatch(string(b), -1) {
		documented = append(documented, m[1])
	}
	sort.Strings(documented)
	var exported []string
	for name := range exportedMetrics(New(0)) {
		exported = append(exported, name)
	}
	sort.Strings(exported)
	if diff := cmp.Diff(exported, documented); diff != "" {
		t.Errorf("metrics.md table vs exported metrics (-exported +documented):\n%s", diff)
	}
}

// exportedMetrics are the names of shadowgate's own metrics, read from their descriptors
// (a vector without series gathers nothing, but always describes itself).
func exportedMetrics(m *Metrics) map[string]bool {
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range m.own {
			c.Describe(ch)
		}
		close(ch)
	}()
	out := map[string]bool{}
	for d := range ch {
		if sm := descNameRE.FindStringSubmatch(d.String()); sm != nil {
			out[sm[1]] = true
		}
	}
	return out
}
