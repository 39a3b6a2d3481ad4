// Package mutatecmd implements `podguard mutate`: print manifests with the
// missing fields injected, as the webhook would inject them.
package mutatecmd

import (
	"bytes"
	"context"
	"fmt"
	"podguard.dev/podguard/policies/safetext"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies/manifest"
	"podguard.dev/podguard/policies/podspec"
)

// Options are the flags of `podguard mutate`.
type Options struct {
	Input   cli.InputOptions
	Diff    bool
	Verbose bool
	Strict  bool
	Request cli.RequestOptions
	Policy  cli.PolicyOptions
	Digests cli.DigestOptions
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

Exit status: 0, 2 on bad input (bad documents are still printed, unchanged),
130 interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.Run(cmd.Context(), s) },
	}
	fs := cmd.Flags()
	o.Input.AddFlags(fs)
	fs.BoolVar(&o.Diff, "diff", false, "print a unified diff of what is injected instead of the documents")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "list every object not filled in (not pod-bearing), with the reason, on stderr")
	fs.BoolVar(&o.Strict, "strict", false, "no effect: a pod-bearing kind under an API version that does not serve it (v1 Deployment) is now always an error")
	_ = fs.MarkDeprecated("strict", "a pod-bearing kind under an API version that does not serve it is now always an error, as kubectl makes it; --strict will be removed")
	o.Request.AddFlags(fs)
	o.Policy.AddFlags(fs)
	o.Policy.AddExceptionFlags(fs)
	o.Digests.AddFlags(fs)
	return cmd
}

// Run mutates the inputs and prints them, document by document.
func (o *Options) Run(ctx context.Context, s cli.Streams) error {
	if err := o.Request.CheckTargetNamespace(); err != nil {
		return err
	}
	o.Policy.Note = func(n string) { fmt.Fprintf(s.Err, "podguard: note: %s\n", safetext.Line(n)) }
	enf, err := o.Policy.Enforcer(ctx)
	if err != nil {
		return err
	}
	problems, docs, skipped := 0, 0, 0
	problem := func(err error) {
		problems++
		cli.PrintProblems(s.Err, []error{err})
	}
	note := func(n string) { fmt.Fprintf(s.Err, "podguard: note: %s\n", safetext.Line(n)) }
	var prev *manifest.Document
	var werr error
	err = o.Input.EachDocument(ctx, s.In, note, problem, func(doc *manifest.Document) {
		docs++
		objs, err := doc.Objects()
		if err != nil {
			problem(err)
		}
		for _, obj := range objs {
			if !obj.Supported() {
				skipped++
				reason, misplaced := podspec.SkipReason(obj.APIVersion, obj.Kind)
				if misplaced {
					problem(&manifest.InputError{Source: doc.Source, Doc: doc.Index, Line: doc.Line, Err: fmt.Errorf("%s (kubectl refuses it too: no matches for kind %q in version %q)", reason, obj.Kind, obj.APIVersion)})
				} else if o.Verbose {
					fmt.Fprintf(s.Err, "podguard: note: %s\n", safetext.Line(fmt.Sprintf("%s %s %s/%s: skipped: %s", obj.Source(), obj.APIVersion, obj.Kind, obj.Name, reason)))
				}
				continue
			}
			ns, err := o.Request.NamespaceOf(obj.Namespace)
			if err != nil {
				problem(&manifest.InputError{Source: doc.Source, Doc: doc.Index, Line: doc.Line, Err: err})
				continue
			}
			attrs := o.Request.Attributes(ns)
			attrs.Digests, err = o.Digests.Digests(ctx, enf, obj.Typed)
			if err != nil {
				problem(err)
				continue
			}
			changes, err := enf.Mutate(obj.Typed, attrs)
			if err == nil {
				err = obj.Apply(changes)
			}
			if err != nil {
				problem(fmt.Errorf("%s: %w", obj.Source(), err))
			}
		}
		rendered, err := doc.Render()
		if err != nil {
			problem(err)
			rendered = doc.Raw
		}
		var out bytes.Buffer
		if o.Diff {
			if !doc.Changed() {
				return
			}
			d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
				A: difflib.SplitLines(string(doc.Raw)), B: difflib.SplitLines(string(rendered)),
				FromFile: doc.Name(), ToFile: doc.Name() + " (mutated)", Context: 3,
			})
			if err != nil {
				problem(fmt.Errorf("%s: diff: %w", doc.Name(), err))
				return
			}
			out.WriteString(d)
		} else {
			// A JSON stream stays a JSON stream; everything else is cut by ---.
			if prev != nil && !(prev.JSON && doc.JSON && prev.Source == doc.Source) {
				out.WriteString("---\n")
			}
			out.Write(rendered)
			if len(rendered) > 0 && rendered[len(rendered)-1] != '\n' {
				out.WriteByte('\n')
			}
		}
		prev = doc
		if _, err := s.Out.Write(out.Bytes()); err != nil && werr == nil {
			werr = err
		}
	})
	if err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if skipped > 0 && !o.Verbose {
		fmt.Fprintf(s.Err, "podguard: note: %d objects are not pod-bearing kinds and were passed through unchanged (-v lists them)\n", skipped)
	}
	if docs == 0 && problems == 0 {
		fmt.Fprintln(s.Err, "podguard: note: the input holds no Kubernetes objects")
	}
	if problems > 0 {
		return cli.Exit(cli.ExitBadInput)
	}
	return nil
}
