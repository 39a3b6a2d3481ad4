// Package app assembles podguard's command tree and maps results to exit codes.
package app

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"podguard.dev/podguard/cmd/podguard/internal/auditcmd"
	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/cmd/podguard/internal/exceptioncmd"
	"podguard.dev/podguard/cmd/podguard/internal/exportcmd"
	"podguard.dev/podguard/cmd/podguard/internal/imagescmd"
	"podguard.dev/podguard/cmd/podguard/internal/mutatecmd"
	"podguard.dev/podguard/cmd/podguard/internal/policycmd"
	"podguard.dev/podguard/cmd/podguard/internal/servecmd"
	"podguard.dev/podguard/cmd/podguard/internal/testcmd"
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
	// cobra collects pflag's own deprecation notices in a buffer it shows
	// only on a flag error: say it here, on stderr, where scripts' logs
	// keep it.
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Changed && f.Deprecated != "" {
				fmt.Fprintf(s.Err, "podguard: warning: --%s is deprecated: %s\n", f.Name, f.Deprecated)
			}
		})
	}
	root.AddCommand(servecmd.NewCommand(s), validatecmd.NewCommand(s), mutatecmd.NewCommand(s), exceptioncmd.NewCommand(s), auditcmd.NewCommand(s), exportcmd.NewCommand(s), imagescmd.NewCommand(s), policycmd.NewCommand(s), testcmd.NewCommand(s), versioncmd.NewCommand(s))
	// podguard completion bash|zsh|fish|powershell.
	root.CompletionOptions.HiddenDefaultCmd = false
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
			fmt.Fprintf(errOut, "podguard: error: %s\n", cli.ErrorText(err))
		}
	}
	return cli.CodeOf(err)
}
