package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

// New builds the shadowgate command tree reading configuration from v: flags, then
// SHADOWGATE_* environment variables, then the --config file.
func New(v *viper.Viper) *cobra.Command {
	root := &cobra.Command{
		Use:   "shadowgate",
		Short: "Shadow-mode NetworkPolicy enforcement from ClientIntents",
		Long: `shadowgate compiles ClientIntents into the NetworkPolicies enforcement would apply,
evaluates them against observed Hubble flows, and reports the traffic that would be dropped.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return loadConfig(v, cmd)
		},
	}
	root.PersistentFlags().String("config", "", "configuration file (YAML, JSON or TOML); SHADOWGATE_CONFIG also works")
	root.PersistentFlags().BoolP("quiet", "q", false, "no progress line and no warnings on standard error")
	root.PersistentFlags().BoolP("verbose", "v", false, "also say what the cluster snapshot held and what the loader warned about")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
	root.AddCommand(
		newSimulateCmd(v),
		newEvaluateCmd(v),
		newCompileCmd(v),
		newDemoCmd(v),
		newGateCmd(v),
		newConfigCmd(v),
		newControllerCmd(v),
		newPromoteCmd(v),
		newRollbackCmd(v),
		newStatusCmd(v),
		newInitCmd(v),
		newSuggestCmd(v),
		newReportCmd(v),
	)
	root.AddCommand(newBenchCmd(v))
	return root
}

// loadConfig binds the running command's flags to v (so flags win over the environment and
// the file) and reads the configuration file when one is given.
func loadConfig(v *viper.Viper, cmd *cobra.Command) error {
	v.SetEnvPrefix("SHADOWGATE")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	var bindErr error
	bind := func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
			bindErr = err
		}
	}
	cmd.Flags().VisitAll(bind)
	cmd.InheritedFlags().VisitAll(bind)
	if bindErr != nil {
		return bindErr
	}
	path := v.GetString("config")
	if path == "" {
		return nil
	}
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return badInput(fmt.Errorf("config file %s: %w", path, err))
	}
	return nil
}

// exactArgs is cobra.ExactArgs with the bad-input exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return badInput(err)
		}
		return nil
	}
}
