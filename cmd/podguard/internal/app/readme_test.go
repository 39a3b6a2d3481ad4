package app_test

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"podguard.dev/podguard/cmd/podguard/internal/app"
	"podguard.dev/podguard/cmd/podguard/internal/cli"
)

// TestReadmeListsEveryFlag: every flag `--help` shows, of every command,
// is in the README, in the usage block of its command.
func TestReadmeListsEveryFlag(t *testing.T) {
	data, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	root := app.NewRoot(cli.Streams{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && !c.Hidden {
			usage := usageBlock(readme, c.CommandPath())
			if usage == "" {
				t.Errorf("the README has no usage block for %q", c.CommandPath())
			}
			c.Flags().VisitAll(func(f *pflag.Flag) {
				if f.Hidden || f.Name == "help" {
					return
				}
				named := func(flag string) bool {
					return strings.Contains(usage, flag+" ") || strings.Contains(usage, flag+"]") || strings.Contains(usage, flag+"\n")
				}
				if !named("--"+f.Name) && (f.Shorthand == "" || !named("-"+f.Shorthand)) {
					t.Errorf("%s --%s is not in the README's usage of %s", c.CommandPath(), f.Name, c.CommandPath())
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// usageBlock returns the lines of the README's code blocks that start
// with the command and their continuation lines (indented).
func usageBlock(readme, command string) string {
	var b strings.Builder
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], command+" ") && lines[i] != command {
			continue
		}
		b.WriteString(lines[i] + "\n")
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "   ") {
			i++
			b.WriteString(lines[i] + "\n")
		}
	}
	return b.String()
}
