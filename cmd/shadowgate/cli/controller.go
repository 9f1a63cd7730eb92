package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	// Promotion windows name IANA time zones; embed the database so the controller
	// image needs none.
	_ "time/tzdata"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/rollout"
	"github.com/shadowgate/shadowgate/simulate"
)

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func newControllerCmd(v *viper.Viper) *cobra.Command {
	def := rollout.Default()
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the rollout controller: soak governed namespaces, enforce, roll back",
		Long: `controller watches the cluster (namespaces, pods, workloads, services, ingresses,
NetworkPolicies, ClientIntents) and the NamespaceRollouts. It soaks each governed namespace in
shadow mode on the flows of --hubble, --mapper or --flows, applies the compiled NetworkPolicies
when a namespace is promoted (by 'shadowgate promote' or inside a promotion window), keeps them
in sync, and removes them on rollback, automatically after a storm of policy drops.

Every flag is also a SHADOWGATE_* variable (SHADOWGATE_LEADER_ELECT=true) and a configuration
file key. It runs until SIGINT or SIGTERM, saving the soak stores before it exits.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := controllerConfig(v)
			if err != nil {
				return err
			}
			sources, closeSources, err := controllerSources(v)
			if err != nil {
				return err
			}
			defer closeSources()
			restCfg, _, err := kubeConfig(v)
			if err != nil {
				return err
			}
			log := zap.New(zap.UseDevMode(v.GetBool("log-development")), zap.WriteTo(cmd.ErrOrStderr()))
			ctrl.SetLogger(log)
			if len(sources) == 0 {
				log.Info("no flow source (--hubble, --mapper or --flows): nothing is observed and no gate can pass")
			}
			// controller-runtime serves one registry on --metrics-bind-address; shadowgate's
			// collectors join it so one scrape gets both.
			m := alerts.New(0)
			unregister, err := m.RegisterOn(ctrlmetrics.Registry)
			if err != nil {
				return err
			}
			defer unregister()
			c, err := rollout.New(cmd.Context(), rollout.Options{Config: cfg, RESTConfig: restCfg, Sources: sources, Log: log, Metrics: m})
			if err != nil {
				return err
			}
			return c.Start(cmd.Context())
		},
	}
	fs := cmd.Flags()
	addKubeFlags(fs)
	fs.String("namespace", "", "namespace of the controller's Lease and soak Secrets (default: the pod's own, else "+def.Namespace+")")
	fs.Bool("leader-elect", def.LeaderElect, "elect one active replica through a Lease")
	fs.String("leader-election-id", def.LeaderElectionID, "name of the leader-election Lease")
	fs.String("metrics-bind-address", def.MetricsBindAddress, `address of /metrics ("0" disables)`)
	fs.String("health-probe-bind-address", def.HealthProbeBindAddress, `address of /healthz and /readyz ("0" disables)`)
	fs.Duration("debounce", def.Debounce, "wait after a cluster change before rebuilding the model, so a burst costs one rebuild")
	fs.Duration("resync", def.Resync, "how often each rollout is re-examined without changes")
	fs.Duration("save-interval", def.SaveInterval, "how often the soak stores are written to their Secrets")
	fs.Duration("soak-history", def.SoakHistory, "history the soak stores keep: the longest soak window a rollout may use (whole hours)")
	fs.Int("max-edges-per-namespace", def.MaxEdgesPerNamespace, "distinct edges kept per namespace; more fail the gate as overflow")
	fs.String("external", string(def.External), "allow traffic to LoadBalancer/NodePort Services and Ingress backends: always | only-if-blocked | off")
	fs.StringSlice("allow-from-namespace", nil, "namespaces whose pods may always reach enforced namespaces (e.g. monitoring), repeatable")
	fs.Int("external-prefix-v4", def.ExternalPrefixV4, "external IPv4 peers are kept per CIDR of this length in the soak store")
	fs.Int("external-prefix-v6", def.ExternalPrefixV6, "external IPv6 peers are kept per CIDR of this length in the soak store")
	fs.Bool("log-development", false, "human-readable logs instead of JSON")
	addControllerSourceFlags(fs)
	return cmd
}

// controllerConfig reads rollout.Config from v.
func controllerConfig(v *viper.Viper) (rollout.Config, error) {
	cfg := rollout.Default()
	cfg.Namespace = v.GetString("namespace")
	if cfg.Namespace == "" {
		cfg.Namespace = rollout.Default().Namespace
		if b, err := os.ReadFile(serviceAccountNamespace); err == nil && strings.TrimSpace(string(b)) != "" {
			cfg.Namespace = strings.TrimSpace(string(b))
		}
	}
	cfg.LeaderElect = v.GetBool("leader-elect")
	cfg.LeaderElectionID = v.GetString("leader-election-id")
	cfg.MetricsBindAddress = v.GetString("metrics-bind-address")
	cfg.HealthProbeBindAddress = v.GetString("health-probe-bind-address")
	cfg.Debounce = v.GetDuration("debounce")
	cfg.Resync = v.GetDuration("resync")
	cfg.SaveInterval = v.GetDuration("save-interval")
	cfg.SoakHistory = v.GetDuration("soak-history")
	cfg.MaxEdgesPerNamespace = v.GetInt("max-edges-per-namespace")
	cfg.External = compile.ExternalMode(v.GetString("external"))
	cfg.AllowFromNamespaces = list(v, "allow-from-namespace")
	cfg.ExternalPrefixV4 = v.GetInt("external-prefix-v4")
	cfg.ExternalPrefixV6 = v.GetInt("external-prefix-v6")
	if err := cfg.Validate(); err != nil {
		return cfg, badInput(err)
	}
	return cfg, nil
}

// addControllerSourceFlags adds the flow-source flags, named as simulate's: a Hubble
// server, the Otterize network-mapper, or a file (followed as it grows); Hubble and the
// mapper may be combined.
func addControllerSourceFlags(fs *pflag.FlagSet) {
	addSourceFlags(fs)
	fs.String("flows", "", "follow a file of Hubble jsonpb lines as it grows, like tail -F (instead of --hubble and --mapper)")
}

// controllerSources opens the flow sources the flags name (none is allowed).
func controllerSources(v *viper.Viper) ([]simulate.NamedSource, func(), error) {
	lo := liveOptionsFrom(v)
	o := Options{Flows: v.GetString("flows")}
	lo.Follow = o.Flows != ""
	if lo.Follow && (lo.Hubble.Address != "" || lo.Mapper != "") {
		return nil, nil, badInput(errors.New("--flows follows a file: it does not mix with --hubble or --mapper"))
	}
	if lo.Hubble.Address != "" {
		if err := lo.Hubble.Validate(); err != nil {
			return nil, nil, badInput(fmt.Errorf("--hubble: %w", err))
		}
	}
	return openLiveSources(o, lo, clock.RealClock{})
}
