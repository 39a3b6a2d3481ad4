// Package app assembles podguard's command tree and maps results to exit codes.
package app

import (
	"context"
	"fmt"
	"io"
	"podguard.dev/podguard/policies/safetext"

	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/auditcmd"
	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/cmd/podguard/internal/exportcmd"
	"podguard.dev/podguard/cmd/podguard/internal/mutatecmd"
	"podguard.dev/podguard/cmd/podguard/internal/policycmd"
	"podguard.dev/podguard/cmd/podguard/internal/servecmd"
	"podguard.dev/podguard/cmd/podguard/internal/validatecmd"
	"podguard.dev/podguard/cmd/podguard/internal/versioncmd"
)

// NewRoot returns the root command.
func NewRoot(s cli.Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "podguard",
		Short: "Least privilege for every pod: admission webhook and offline policy checks",
		Long: `podguard applies one security policy to every pod spec: non-root 1000:1000,
all capabilities dropped, no privilege escalation, seccomp, CPU and memory
limits, and all of Pod Security Standard restricted. The webhook (serve)
denies what breaks the policy and injects what is missing; validate and
mutate do the same offline, for CI.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cli.ExitError{Code: cli.ExitBadInput, Err: fmt.Errorf("%w (see --help)", err)}
	})
	root.AddCommand(servecmd.NewCommand(s), validatecmd.NewCommand(s), mutatecmd.NewCommand(s), auditcmd.NewCommand(s), exportcmd.NewCommand(s), policycmd.NewCommand(s), versioncmd.NewCommand(s))
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// Main runs podguard with args and returns the exit code.
func Main(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	s := cli.Streams{In: in, Out: out, Err: errOut}
	root := NewRoot(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		if ee, ok := err.(*cli.ExitError); !ok || ee.Err != nil {
			fmt.Fprintf(errOut, "podguard: error: %s\n", safetext.Line(err.Error()))
		}
	}
	return cli.CodeOf(err)
}
