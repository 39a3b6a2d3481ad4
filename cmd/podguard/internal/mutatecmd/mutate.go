// Package mutatecmd implements `podguard mutate`: print manifests with the
// missing fields injected, as the webhook would inject them.
package mutatecmd

import (
	"bytes"
	"context"
	"fmt"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
)

// Options are the flags of `podguard mutate`.
type Options struct {
	Files   []string
	Diff    bool
	Request cli.RequestOptions
	Policy  cli.PolicyOptions
}

// NewCommand returns the mutate command.
func NewCommand(s cli.Streams) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "mutate -f PATH [-f PATH ...] [--policy FILE] [--diff]",
		Short: "Print manifests with the missing fields injected",
		Long: `Print every input document, in input order, separated by ---, with the
missing fields of Pods and pod templates filled in as the policy says (pod
templates included: you asked for it). Explicit values are never changed.
Documents without changes come out byte-identical; changed ones keep their
comments and key order, with injected keys appended; JSON stays JSON.

--diff prints a unified diff of the changed documents instead.

Exit status: 0, or 2 on bad input (bad documents are still printed, unchanged).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.Run(cmd.Context(), s) },
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.Files, "filename", "f", nil, "file, directory or - (stdin); repeatable")
	fs.BoolVar(&o.Diff, "diff", false, "print a unified diff of what is injected instead of the documents")
	o.Request.AddFlags(fs)
	o.Policy.AddFlags(fs)
	return cmd
}

// Run mutates the inputs and prints them.
func (o *Options) Run(_ context.Context, s cli.Streams) error {
	enf, err := o.Policy.Enforcer()
	if err != nil {
		return err
	}
	in, err := cli.ReadInputs(o.Files, s.In)
	if err != nil {
		return err
	}
	problems := in.Problems
	var out bytes.Buffer
	for i, doc := range in.Docs {
		objs, err := doc.Objects()
		if err != nil {
			problems = append(problems, err)
		}
		for _, obj := range objs {
			if !obj.Supported() {
				continue
			}
			changes, err := enf.Mutate(obj.Typed, o.Request.Attributes(obj.Namespace))
			if err == nil {
				err = obj.Apply(changes)
			}
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", obj.Source(), err))
			}
		}
		rendered, err := doc.Render()
		if err != nil {
			problems = append(problems, err)
			rendered = doc.Raw
		}
		if o.Diff {
			if !doc.Changed() {
				continue
			}
			d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
				A: difflib.SplitLines(string(doc.Raw)), B: difflib.SplitLines(string(rendered)),
				FromFile: doc.Name(), ToFile: doc.Name() + " (mutated)", Context: 3,
			})
			out.WriteString(d)
			continue
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(rendered)
		if len(rendered) > 0 && rendered[len(rendered)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	if _, err := s.Out.Write(out.Bytes()); err != nil {
		return err
	}
	cli.PrintProblems(s.Err, problems)
	if len(in.Docs) == 0 && len(problems) == 0 {
		fmt.Fprintln(s.Err, "podguard: note: the input holds no Kubernetes objects")
	}
	if len(problems) > 0 {
		return cli.Exit(cli.ExitBadInput)
	}
	return nil
}
