package bench

import (
	"fmt"
	"os"
)

// childHooks are the child processes some figures are measured in (the memory figure's
// daemon, the gRPC row's server), each started as this same binary with its variable
// set. Any binary that links the package (the CLI, its test binaries) can be the child,
// so the hooks cannot wait for a command line to be parsed.
var childHooks = map[string]func(arg string) error{
	memoryChildEnv: memoryChild,
	grpcServerEnv:  func(path string) error { return grpcServerChild(path, os.Stdin, os.Stdout) },
}

func init() {
	for env, run := range childHooks {
		arg := os.Getenv(env)
		if arg == "" {
			continue
		}
		if err := run(arg); err != nil {
			fmt.Fprintf(os.Stderr, "%s child: %v\n", env, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}
