// Package policycmd implements `podguard policy`: print the default policy
// and check policy files.
package policycmd

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
)

// NewCommand returns the policy command and its sub-commands.
func NewCommand(s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print the default policy, check a policy file",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDefault(s), newCheck(s))
	return cmd
}

func newDefault(s cli.Streams) *cobra.Command {
	o := cli.PolicyOptions{}
	cmd := &cobra.Command{
		Use:   "default",
		Short: "Print the default policy as a commented policy file",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := s.Out.Write(v1alpha1.DefaultPolicyYAML(o.Namespace))
			return err
		},
	}
	o.AddFlags(cmd.Flags())
	_ = cmd.Flags().MarkHidden("policy")
	return cmd
}

func newCheck(s cli.Streams) *cobra.Command {
	o := cli.PolicyOptions{}
	var file string
	cmd := &cobra.Command{
		Use:   "check -f FILE",
		Short: "Check a policy file and print the rules it enforces",
		Long: `Decode (strictly: unknown and duplicate fields are errors), default and
validate a policy file, then print what it enforces, rule by rule.

Exit status: 0 valid, 2 invalid or unreadable (the message names the line).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" && len(args) == 1 {
				file = args[0]
			}
			if file == "" {
				return cli.BadInput("give the policy file with -f FILE")
			}
			o.File = file
			p, err := o.Load(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "policy %s is valid (mode %s)\n\n", file, p.Mode)
			printRules(s, p)
			fmt.Fprintf(s.Out, "\nexemptions: %d\n", len(p.Exemptions))
			for _, e := range p.Exemptions {
				fmt.Fprintf(s.Out, "- %s\n", e.Reason)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "policy file")
	o.AddFlags(cmd.Flags())
	_ = cmd.Flags().MarkHidden("policy")
	return cmd
}

func printRules(s cli.Streams, p *v1alpha1.Policy) {
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tACTION\tMUTATE\tREQUIRES")
	settings := p.Rules.Settings()
	ids := rules.IDs()
	sort.Strings(ids)
	for _, id := range ids {
		r, _ := rules.Get(p, id)
		st := settings[id]
		action := st.Action
		if action == v1alpha1.ActionEnforce && p.Mode != v1alpha1.ActionEnforce {
			action = p.Mode + " (mode)"
		}
		mutate := "-"
		if st.Mutate != nil {
			mutate = fmt.Sprint(*st.Mutate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, action, mutate, r.Summary)
	}
	_ = tw.Flush()
}
