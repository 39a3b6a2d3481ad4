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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
