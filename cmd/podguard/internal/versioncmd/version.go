// Package versioncmd implements `podguard version`.
package versioncmd

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
)

// Set at build time with -ldflags "-X ...versioncmd.version=v0.1.0 -X ...versioncmd.commit=abc".
var (
	version = "v0.0.0-dev"
	commit  = ""
)

// KubernetesLine is the Kubernetes minor release whose API podguard is built
// against; a test keeps it equal to go.mod's k8s.io/api.
const KubernetesLine = "1.37"

// Info describes the build.
type Info struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	GoVersion  string `json:"goVersion"`
	Kubernetes string `json:"kubernetes"`
}

// Get returns the build's version information.
func Get() Info {
	i := Info{Version: version, Commit: commit, GoVersion: runtime.Version(), Kubernetes: KubernetesLine}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "k8s.io/api" {
				// k8s.io/api v0.X.Y is Kubernetes 1.X.Y.
				i.Kubernetes = KubernetesLine + " (k8s.io/api " + m.Version + ")"
			}
		}
		if i.Commit == "" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					i.Commit = s.Value
				}
			}
		}
	}
	return i
}

// NewCommand returns the version command.
func NewCommand(s cli.Streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o text|json]",
		Short: "Print podguard's version, commit and Kubernetes API line",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			i := Get()
			switch output {
			case "json":
				b, _ := json.MarshalIndent(i, "", "  ")
				fmt.Fprintln(s.Out, string(b))
			case "text":
				c := i.Commit
				if c == "" {
					c = "unknown"
				}
				fmt.Fprintf(s.Out, "podguard %s\ncommit: %s\ngo: %s\nkubernetes: %s\n", i.Version, c, i.GoVersion, i.Kubernetes)
			default:
				return cli.BadInput("unknown output format %q: use text or json", output)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
