// Command shadowgate compiles ClientIntents into NetworkPolicies, evaluates them against
// observed flows, and reports the traffic that enforcement would drop.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/viper"

	"github.com/shadowgate/shadowgate/cmd/shadowgate/cli"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cli.New(viper.New()).ExecuteContext(ctx)
	if err != nil && !cli.Silent(err) {
		fmt.Fprintln(os.Stderr, "shadowgate:", err)
	}
	return cli.Code(err)
}
