// Command podguard is a Kubernetes admission webhook that makes every pod
// run with least privilege, and the offline CLI that judges manifests the
// same way. See `podguard --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"podguard.dev/podguard/cmd/podguard/internal/app"
	"podguard.dev/podguard/cmd/podguard/internal/cli"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal asks the command to stop (serve drains and shuts
		// down; the offline commands stop reading); a second one does not wait.
		<-sigs
		cancel()
		<-sigs
		os.Exit(cli.ExitInterrupted)
	}()
	code := app.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}
