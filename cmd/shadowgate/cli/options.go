package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "k8s.io/api/core/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/simulate"
)

// Options is the configuration of the offline commands (simulate, evaluate, compile).
// Every field has a flag, a SHADOWGATE_* variable and a configuration-file key of the
// same name.
type Options struct {
	Cluster            []string // --cluster: files or directories of manifests
	Intents            []string // --intents: ClientIntents replacing the cluster's by namespace/name
	Flows              string   // --flows: Hubble jsonpb lines, "-" for stdin
	Enforce            []string // --enforce: namespaces to enforce
	EnforceAll         bool     // --enforce-all: every namespace some ClientIntents target
	Egress             bool     // --egress: also enforce egress
	External           string   // --external: always | only-if-blocked | off
	AllowFromNamespace []string // --allow-from-namespace: namespaces always allowed in
	Output             string   // -o
	Strict             bool     // --strict: malformed or unresolvable flows are an error
	MaxMalformed       int      // --max-malformed: malformed lines listed by number
	Quiet              bool     // --quiet: no progress line, no warnings
	Verbose            bool     // --verbose: what the snapshot held, loader warnings
}

func addClusterFlags(fs *pflag.FlagSet) {
	fs.StringSlice("cluster", nil, "cluster snapshot: manifest files or directories (YAML or JSON), repeatable")
	fs.StringSlice("intents", nil, "ClientIntents files or directories; each replaces the cluster's ClientIntents of the same namespace/name")
}

func addEnforceFlags(fs *pflag.FlagSet) {
	fs.StringSlice("enforce", nil, "namespaces to switch to enforcement (comma-separated, repeatable)")
	fs.Bool("enforce-all", false, "enforce every namespace that some ClientIntents target")
	fs.Bool("egress", false, "also enforce egress (default-deny egress, per-intent egress rules, DNS always allowed)")
	fs.String("external", string(compile.ExternalOnlyIfBlocked), "allow traffic to LoadBalancer/NodePort Services and Ingress backends: always | only-if-blocked | off")
	fs.StringSlice("allow-from-namespace", nil, "namespaces whose pods may always reach enforced namespaces (e.g. monitoring), repeatable")
}

func addFlowFlags(fs *pflag.FlagSet) {
	fs.String("flows", "", "Hubble flows: jsonpb lines as written by 'hubble observe -o jsonpb' (gzip detected), '-' for stdin")
	fs.Bool("strict", false, "treat malformed or unresolvable flow lines as bad input (exit 2)")
	fs.Int("max-malformed", 10, "how many malformed lines the report lists by line number")
}

// optionsFrom reads Options from v. Lists accept commas as well as repetition, so the
// same value works as a flag, an environment variable and a file key.
func optionsFrom(v *viper.Viper) Options {
	return Options{
		Cluster:            list(v, "cluster"),
		Intents:            list(v, "intents"),
		Flows:              v.GetString("flows"),
		Enforce:            list(v, "enforce"),
		EnforceAll:         v.GetBool("enforce-all"),
		Egress:             v.GetBool("egress"),
		External:           v.GetString("external"),
		AllowFromNamespace: list(v, "allow-from-namespace"),
		Output:             v.GetString("output"),
		Strict:             v.GetBool("strict"),
		MaxMalformed:       v.GetInt("max-malformed"),
		Quiet:              v.GetBool("quiet"),
		Verbose:            v.GetBool("verbose"),
	}
}

func list(v *viper.Viper, key string) []string {
	var out []string
	for _, s := range v.GetStringSlice(key) {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// Validate reports every bad field at once; outputs lists the formats the command takes.
func (o Options) Validate(outputs ...string) error {
	var errs []error
	if len(o.Enforce) > 0 && o.EnforceAll {
		errs = append(errs, errors.New("--enforce and --enforce-all are exclusive"))
	}
	switch compile.ExternalMode(o.External) {
	case compile.ExternalAlways, compile.ExternalOnlyIfBlocked, compile.ExternalOff:
	default:
		errs = append(errs, fmt.Errorf("--external %q: must be always, only-if-blocked or off", o.External))
	}
	if len(outputs) > 0 && !contains(outputs, o.Output) {
		errs = append(errs, fmt.Errorf("-o %q: must be one of %s", o.Output, strings.Join(outputs, ", ")))
	}
	if o.MaxMalformed < 0 {
		errs = append(errs, fmt.Errorf("--max-malformed %d: must be >= 0", o.MaxMalformed))
	}
	for _, ns := range append(append([]string{}, o.Enforce...), o.AllowFromNamespace...) {
		if msgs := validateNamespaceName(ns); msgs != "" {
			errs = append(errs, fmt.Errorf("namespace %q: %s", ns, msgs))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return badInput(errors.Join(errs...))
}

func validateNamespaceName(ns string) string {
	if len(ns) == 0 || len(ns) > 63 {
		return "must be 1-63 characters"
	}
	for i, r := range ns {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(ns)-1
		if !ok {
			return "must be a DNS-1123 label (lowercase alphanumerics and '-')"
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compileOptions turns the CLI options into the compiler's, choosing the enforced
// namespaces: --enforce, else (with --enforce-all or defaultAll) every namespace some
// ClientIntents target, else none.
func (o Options) compileOptions(s *cluster.Snapshot, defaultAll bool) compile.Options {
	co := compile.Options{Egress: o.Egress, External: compile.ExternalMode(o.External)}
	switch {
	case len(o.Enforce) > 0:
		co.Namespaces = append([]string(nil), o.Enforce...)
	case o.EnforceAll || defaultAll:
		co.Namespaces = compile.TargetedNamespaces(s)
	}
	for _, ns := range o.AllowFromNamespace {
		co.AlwaysAllow = append(co.AlwaysAllow, compile.AlwaysAllow{
			Name: "from-" + ns,
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
				corev1.LabelMetadataName: ns,
			}},
		})
	}
	return co
}

func (o Options) simulateOptions(s *cluster.Snapshot, defaultAll bool) simulate.Options {
	so := simulate.DefaultOptions()
	so.Compile = o.compileOptions(s, defaultAll)
	so.MaxMalformed = o.MaxMalformed
	return so
}
