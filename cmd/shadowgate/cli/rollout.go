package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/rollout"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

// addKubeFlags adds the flags that choose a cluster, as kubectl's.
func addKubeFlags(fs *pflag.FlagSet) {
	fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster configuration)")
	fs.String("context", "", "kubeconfig context to use (default: the current context)")
}

// kubeConfig loads the client configuration like kubectl: --kubeconfig, else the KUBECONFIG
// list, else ~/.kube/config, else the in-cluster service account. It also returns the
// kubeconfig user's name, for when the API server cannot say who we are.
func kubeConfig(v *viper.Viper) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if p := v.GetString("kubeconfig"); p != "" {
		rules.ExplicitPath = p
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: v.GetString("context")}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", badInput(fmt.Errorf("kubeconfig: %w", err))
	}
	user := ""
	if raw, err := cc.RawConfig(); err == nil {
		name := overrides.CurrentContext
		if name == "" {
			name = raw.CurrentContext
		}
		if kctx, ok := raw.Contexts[name]; ok {
			user = kctx.AuthInfo
		}
	}
	cfg.UserAgent = "shadowgate/" + Version
	return cfg, user, nil
}

func kubeClient(v *viper.Viper) (client.Client, *rest.Config, string, error) {
	cfg, user, err := kubeConfig(v)
	if err != nil {
		return nil, nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: rollout.Scheme()})
	if err != nil {
		return nil, nil, "", fmt.Errorf("API client: %w", err)
	}
	return c, cfg, user, nil
}

// whoAmI names the caller for the records of promotions and rollbacks: the user the API
// server authenticates (SelfSubjectReview), else the kubeconfig user.
func whoAmI(ctx context.Context, cfg *rest.Config, kubeconfigUser string) string {
	if u, err := rollout.WhoAmI(ctx, cfg); err == nil {
		return u
	}
	if kubeconfigUser != "" {
		return kubeconfigUser + " (kubeconfig user)"
	}
	return "unknown"
}

// apiError classifies an error from the rollout operations.
func apiError(err error) error {
	if errors.Is(err, rollout.ErrNotFound) {
		return badInput(err)
	}
	return err
}

func newPromoteCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "promote NAMESPACE",
		Short: "Switch a namespace from shadow mode to enforcement",
		Long: `promote asks the controller to enforce the namespace's compiled NetworkPolicies. It refuses,
listing the gate's reasons, unless the soak gate passes or --force is given. Who asked (as the API
server authenticates you) and --reason are recorded in the rollout's status.

Exit codes: 0 requested (or already enforced), 3 refused by the gate, 2 bad input (no such
rollout), 1 API error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, cfg, user, err := kubeClient(v)
			if err != nil {
				return err
			}
			ns := args[0]
			by := whoAmI(ctx, cfg, user)
			nsr, err := rollout.Promote(ctx, c, ns, by, v.GetString("reason"), v.GetBool("force"), time.Now())
			var gerr *rollout.GateError
			if errors.As(err, &gerr) {
				fmt.Fprintf(cmd.ErrOrStderr(), "refusing to promote: %v\nuse --force to enforce anyway\n", gerr)
				return errFindings
			}
			if err != nil {
				return apiError(err)
			}
			if nsr.Status.Mode == v1alpha1.Enforce {
				fmt.Fprintf(cmd.OutOrStdout(), "namespace %s is already enforced\n", ns)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "promotion of namespace %s requested by %s; follow it with: shadowgate status %s --wait --for=enforcing\n", ns, by, ns)
			return nil
		},
	}
	addKubeFlags(cmd.Flags())
	cmd.Flags().Bool("force", false, "promote even though the gate does not pass")
	cmd.Flags().String("reason", "", "why, recorded in the rollout's status")
	return cmd
}

func newRollbackCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback NAMESPACE",
		Short: "Return a namespace to shadow mode, removing every policy shadowgate applied there",
		Long: `rollback asks the controller to remove every NetworkPolicy it applied in the namespace and to
return it to shadow mode; it takes effect within seconds. Who asked and --reason are recorded.

Exit codes: 0 requested (or already in shadow mode), 2 bad input (no such rollout), 1 API error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, cfg, user, err := kubeClient(v)
			if err != nil {
				return err
			}
			ns := args[0]
			by := whoAmI(ctx, cfg, user)
			nsr, err := rollout.Rollback(ctx, c, ns, by, v.GetString("reason"), time.Now())
			if err != nil {
				return apiError(err)
			}
			if nsr.Status.Mode != v1alpha1.Enforce && nsr.Spec.Mode == v1alpha1.Shadow {
				fmt.Fprintf(cmd.OutOrStdout(), "namespace %s is in shadow mode\n", ns)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rollback of namespace %s requested by %s\n", ns, by)
			return nil
		},
	}
	addKubeFlags(cmd.Flags())
	cmd.Flags().String("reason", "", "why, recorded in the rollout's status")
	return cmd
}

func newInitCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init NAMESPACE",
		Short: "Start governing a namespace: create its NamespaceRollout in shadow mode",
		Long: `init creates the NamespaceRollout for the namespace, in shadow mode, with the defaults: a 7-day
soak, at least 1000 connections, under an hour of ingestion gaps, manual promotion, automatic
rollback on 10 policy drops within a minute. With --window, promotion is automatic inside the
windows. An existing rollout is left as it is.

Exit codes: 0 created or already there, 2 bad input (no such namespace, bad window), 1 API error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := rollout.InitOptions{Egress: v.GetBool("egress"), SoakWindow: v.GetDuration("soak-window"), TimeZone: v.GetString("time-zone")}
			if v.IsSet("min-connections") {
				n := v.GetInt64("min-connections")
				o.MinConnections = &n
			}
			for _, w := range list(v, "window") {
				pw, err := parseWindowFlag(w)
				if err != nil {
					return badInput(err)
				}
				o.Windows = append(o.Windows, pw)
			}
			c, _, _, err := kubeClient(v)
			if err != nil {
				return err
			}
			nsr, created, err := rollout.Init(cmd.Context(), c, args[0], o)
			if err != nil {
				if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "spec.promotion") {
					return badInput(err)
				}
				return err
			}
			if !created {
				fmt.Fprintf(cmd.OutOrStdout(), "namespacerollout %s already exists (mode %s, phase %s)\n", nsr.Name, nsr.Spec.Mode, orDash(string(nsr.Status.Phase)))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "namespacerollout %s created: soaking in shadow mode; see shadowgate status %s\n", nsr.Name, nsr.Name)
			return nil
		},
	}
	addKubeFlags(cmd.Flags())
	cmd.Flags().Bool("egress", false, "also enforce egress")
	cmd.Flags().Duration("soak-window", 0, "soak window, a whole number of hours (default 168h)")
	cmd.Flags().Int64("min-connections", 0, "connections the soak window must hold (default 1000)")
	cmd.Flags().StringSlice("window", nil, `automatic promotion window "CRON=DURATION", e.g. "0 9 * * 1-5=2h" (repeatable)`)
	cmd.Flags().String("time-zone", "", "IANA time zone of the windows (default UTC)")
	return cmd
}

// parseWindowFlag reads "SCHEDULE=DURATION".
func parseWindowFlag(s string) (v1alpha1.PromotionWindow, error) {
	i := strings.LastIndex(s, "=")
	if i < 0 {
		return v1alpha1.PromotionWindow{}, fmt.Errorf("--window %q: want CRON=DURATION, e.g. \"0 9 * * 1-5=2h\"", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(s[i+1:]))
	if err != nil || d <= 0 {
		return v1alpha1.PromotionWindow{}, fmt.Errorf("--window %q: duration %q: want a positive duration such as 2h", s, s[i+1:])
	}
	return v1alpha1.PromotionWindow{Schedule: strings.TrimSpace(s[:i]), Duration: metav1.Duration{Duration: d}}, nil
}

func newStatusCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [NAMESPACE]",
		Short: "Show the governed namespaces, or one namespace in detail",
		Long: `status lists the governed namespaces (mode, phase, gate, soak progress, uncovered edges, last
transition), or shows one namespace in detail: the gate's reasons, the top uncovered edges, the
ingestion gaps, the applied policies and the last promotion and rollback.

With --wait (one namespace), it waits until the namespace is --for=enforcing (the policies are
applied) or --for=ready (the gate passes), up to --timeout.

Exit codes: 0 done (or the condition was met), 3 --wait timed out, 2 bad input, 1 API error.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return badInput(fmt.Errorf("status takes at most one namespace, got %d", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			out := v.GetString("output")
			if !contains([]string{"table", "json", "yaml"}, out) {
				return badInput(fmt.Errorf("-o %q: must be one of table, json, yaml", out))
			}
			wait := v.GetBool("wait")
			cond := rollout.Condition(v.GetString("for"))
			if wait {
				if len(args) != 1 {
					return badInput(errors.New("--wait needs a namespace"))
				}
				if cond != rollout.ForEnforcing && cond != rollout.ForReady {
					return badInput(fmt.Errorf("--for %q: must be enforcing or ready", cond))
				}
			}
			c, _, _, err := kubeClient(v)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			now := time.Now()
			if len(args) == 0 {
				var list v1alpha1.NamespaceRolloutList
				if err := c.List(ctx, &list); err != nil {
					return fmt.Errorf("list NamespaceRollouts: %w", err)
				}
				sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
				return writeRollouts(cmd.OutOrStdout(), out, &list, now)
			}
			var nsr *v1alpha1.NamespaceRollout
			var werr error
			if wait {
				nsr, werr = rollout.Wait(ctx, c, args[0], cond, v.GetDuration("timeout"), 500*time.Millisecond, clock.RealClock{})
				if nsr == nil {
					return apiError(werr)
				}
			} else if nsr, err = rollout.Get(ctx, c, args[0]); err != nil {
				return apiError(err)
			}
			if err := writeRollout(cmd.OutOrStdout(), out, nsr, now); err != nil {
				return err
			}
			if errors.Is(werr, rollout.ErrWaitTimeout) {
				fmt.Fprintln(cmd.ErrOrStderr(), werr)
				return errFindings
			}
			return werr
		},
	}
	addKubeFlags(cmd.Flags())
	cmd.Flags().StringP("output", "o", "table", "output format: table | json | yaml")
	cmd.Flags().Bool("wait", false, "wait for --for, up to --timeout")
	cmd.Flags().String("for", string(rollout.ForEnforcing), "with --wait: enforcing | ready")
	cmd.Flags().Duration("timeout", 5*time.Minute, "with --wait: how long to wait")
	return cmd
}

func writeRollouts(w io.Writer, format string, list *v1alpha1.NamespaceRolloutList, now time.Time) error {
	switch format {
	case "json":
		list.APIVersion, list.Kind = v1alpha1.GroupVersion.String(), "NamespaceRolloutList"
		return writeJSON(w, list)
	case "yaml":
		list.APIVersion, list.Kind = v1alpha1.GroupVersion.String(), "NamespaceRolloutList"
		return writeYAML(w, list)
	}
	if len(list.Items) == 0 {
		_, err := fmt.Fprintln(w, "No governed namespaces; start with: shadowgate init NAMESPACE")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tMODE\tPHASE\tGATE\tSOAK\tUNCOVERED\tCONNECTIONS\tLAST TRANSITION")
	for i := range list.Items {
		n := &list.Items[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", n.Spec.Namespace, orDash(string(n.Status.Mode)), orDash(string(n.Status.Phase)),
			gateWord(n), soakProgress(n, now), n.Status.UncoveredEdges, n.Status.ObservedConnections, lastTransition(n, now))
	}
	return tw.Flush()
}

func writeRollout(w io.Writer, format string, n *v1alpha1.NamespaceRollout, now time.Time) error {
	n.APIVersion, n.Kind = v1alpha1.GroupVersion.String(), "NamespaceRollout"
	switch format {
	case "json":
		return writeJSON(w, n)
	case "yaml":
		return writeYAML(w, n)
	}
	ew := &stickyWriter{w: w}
	st := n.Status
	fmt.Fprintf(ew, "Namespace:     %s\n", n.Spec.Namespace)
	fmt.Fprintf(ew, "Mode:          %s (requested %s)\n", orDash(string(st.Mode)), n.Spec.Mode)
	fmt.Fprintf(ew, "Phase:         %s\n", orDash(string(st.Phase)))
	fmt.Fprintf(ew, "Gate:          %s\n", gateWord(n))
	fmt.Fprintf(ew, "Soak:          %s, %d connections, %d uncovered edges", soakProgress(n, now), st.ObservedConnections, st.UncoveredEdges)
	if st.GapTotal != nil {
		fmt.Fprintf(ew, ", %s of gaps", st.GapTotal.Duration)
	}
	fmt.Fprintln(ew)
	fmt.Fprintf(ew, "Promotion:     %s", n.Spec.Promotion.Policy)
	for _, win := range n.Spec.Promotion.Windows {
		fmt.Fprintf(ew, ", %q for %s", win.Schedule, win.Duration.Duration)
	}
	if tz := n.Spec.Promotion.TimeZone; tz != "" && len(n.Spec.Promotion.Windows) > 0 {
		fmt.Fprintf(ew, " (%s)", tz)
	}
	if t := st.NextPromotionWindow; t != nil {
		fmt.Fprintf(ew, "; next window %s", t.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(ew)
	fmt.Fprintf(ew, "Rollback:      %s", n.Spec.Rollback.Policy)
	if n.Spec.Rollback.Policy != v1alpha1.RollBackManually {
		fmt.Fprintf(ew, " on %d policy drops within %s", n.Spec.Rollback.DropsOrDefault(), n.Spec.Rollback.PeriodOrDefault())
	}
	fmt.Fprintln(ew)
	if t := st.LastPromotion; t != nil {
		fmt.Fprintf(ew, "Last promotion: %s\n", describeTransition(t, now))
	}
	if t := st.LastRollback; t != nil {
		fmt.Fprintf(ew, "Last rollback: %s\n", describeTransition(t, now))
	}
	if st.Gate != nil && len(st.Gate.Reasons) > 0 {
		fmt.Fprintln(ew, "\nThe gate does not pass:")
		for _, r := range st.Gate.Reasons {
			fmt.Fprintf(ew, "  - %s [%s]\n", r.Message, r.Code)
		}
	}
	if len(st.TopUncoveredEdges) > 0 {
		fmt.Fprintln(ew, "\nTop uncovered edges:")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SOURCE\tDESTINATION\tPORT\tCOUNT\tLAST SEEN")
		for _, e := range st.TopUncoveredEdges {
			port := "-"
			if e.Port != 0 {
				port = fmt.Sprintf("%d/%s", e.Port, e.Protocol)
			}
			last := "-"
			if e.LastSeen != nil {
				last = ago(e.LastSeen.Time, now)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", e.Source, e.Destination, port, e.Count, last)
		}
		tw.Flush()
	}
	if len(st.Gaps) > 0 {
		fmt.Fprintln(ew, "\nIngestion gaps:")
		for _, g := range st.Gaps {
			end := "ongoing"
			if g.End != nil {
				end = g.End.UTC().Format(time.RFC3339) + fmt.Sprintf(" (%s)", g.End.Sub(g.Start.Time).Round(time.Second))
			}
			fmt.Fprintf(ew, "  %s → %s  %s", g.Start.UTC().Format(time.RFC3339), end, g.Reason)
			if g.Message != "" {
				fmt.Fprintf(ew, ": %s", g.Message)
			}
			fmt.Fprintln(ew)
		}
	}
	if a := st.Applied; a != nil {
		fmt.Fprintf(ew, "\nApplied policies (generation %d, set %s):\n", a.Generation, a.Hash)
		for _, name := range a.Names {
			fmt.Fprintf(ew, "  %s\n", name)
		}
	}
	if len(st.Conditions) > 0 {
		fmt.Fprintln(ew, "\nConditions:")
		for _, c := range st.Conditions {
			fmt.Fprintf(ew, "  %s=%s (%s) %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return ew.err
}

// stickyWriter keeps the first write error, so a long report checks once at the end.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return len(p), nil
	}
	n, err := s.w.Write(p)
	s.err = err
	return n, nil
}

func writeYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func gateWord(n *v1alpha1.NamespaceRollout) string {
	c := meta.FindStatusCondition(n.Status.Conditions, v1alpha1.ConditionGatePassed)
	switch {
	case c == nil:
		return "-"
	case c.Status == metav1.ConditionTrue:
		return "pass"
	}
	return "fail"
}

// soakProgress is how much of the soak window tracking covers: "3d4h/7d (45%)".
func soakProgress(n *v1alpha1.NamespaceRollout, now time.Time) string {
	if n.Status.SoakStart == nil {
		return "-"
	}
	window := n.Spec.Soak.WindowOrDefault()
	tracked := max(0, now.Sub(n.Status.SoakStart.Time))
	pct := min(100, int(100*tracked/window))
	return fmt.Sprintf("%s/%s (%d%%)", fmtDuration(min(tracked, window)), fmtDuration(window), pct)
}

func lastTransition(n *v1alpha1.NamespaceRollout, now time.Time) string {
	p, r := n.Status.LastPromotion, n.Status.LastRollback
	switch {
	case p == nil && r == nil:
		return "-"
	case r == nil || (p != nil && p.Time.After(r.Time.Time)):
		return "promoted " + ago(p.Time.Time, now) + " by " + p.By
	}
	return "rolled back " + ago(r.Time.Time, now) + " by " + r.By
}

func describeTransition(t *v1alpha1.Transition, now time.Time) string {
	s := fmt.Sprintf("%s (%s) by %s", t.Time.UTC().Format(time.RFC3339), ago(t.Time.Time, now), t.By)
	if t.Automatic {
		s += ", automatic"
	}
	if t.Forced {
		s += ", forced past the gate"
	}
	if t.Reason != "" {
		s += ": " + t.Reason
	}
	return s
}

func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + fmtDuration(-d)
	}
	return fmtDuration(d) + " ago"
}

// fmtDuration prints a duration the way people read soak times: 3d4h, 47m, 12s.
func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	s := (d - m*time.Minute) / time.Second
	switch {
	case days > 0 && h > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case days > 0:
		return fmt.Sprintf("%dd", days)
	case h > 0 && m > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case h > 0:
		return fmt.Sprintf("%dh", h)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
