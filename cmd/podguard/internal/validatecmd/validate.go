// Package validatecmd implements `podguard validate`: judge manifests
// offline, exactly as the webhook would.
package validatecmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies"
)

// Options are the flags of `podguard validate`.
type Options struct {
	Files   []string
	Mutate  bool
	Output  string
	Request cli.RequestOptions
	Policy  cli.PolicyOptions
}

// Result is one judged object in the JSON output.
type Result struct {
	Source     string `json:"source"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	*policies.Result
}

// Report is the JSON output: {"results": [...]}.
type Report struct {
	Results []Result `json:"results"`
}

// NewCommand returns the validate command.
func NewCommand(s cli.Streams) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "validate -f PATH [-f PATH ...] [--policy FILE] [--mutate] [-o text|json]",
		Short: "Judge manifests against the policy, offline",
		Long: `Judge every Pod and pod template in the given manifests against the policy.

PATH is a file, a directory (read recursively: *.yaml, *.yml, *.json) or - for
stdin. Multi-document YAML, JSON and Lists are read; objects of other kinds are
passed over. Without --mutate objects are judged as written; with --mutate as
the cluster admits them: Pods are mutated first, workloads are judged on their
mutated template and what mutation fixes is reported as a warning.

Exit status: 0 everything allowed (warnings may be printed), 1 at least one
object denied, 2 bad input or usage (the message names file, document, line).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.Run(cmd.Context(), s) },
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.Files, "filename", "f", nil, "file, directory or - (stdin); repeatable")
	fs.BoolVar(&o.Mutate, "mutate", false, "judge objects as the cluster admits them (mutation first)")
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	o.Request.AddFlags(fs)
	o.Policy.AddFlags(fs)
	return cmd
}

// Run judges the inputs and writes the report.
func (o *Options) Run(_ context.Context, s cli.Streams) error {
	if o.Output != "text" && o.Output != "json" {
		return cli.BadInput("unknown output format %q: use text or json", o.Output)
	}
	enf, err := o.Policy.Enforcer()
	if err != nil {
		return err
	}
	in, err := cli.ReadInputs(o.Files, s.In)
	if err != nil {
		return err
	}
	report := Report{Results: []Result{}}
	problems := in.Problems
	skipped, objects := 0, 0
	for _, doc := range in.Docs {
		objs, err := doc.Objects()
		if err != nil {
			problems = append(problems, err)
			continue
		}
		for _, obj := range objs {
			objects++
			if !obj.Supported() {
				skipped++
				continue
			}
			attrs := o.Request.Attributes(obj.Namespace)
			var res *policies.Result
			if o.Mutate {
				res, _, err = enf.Admit(obj.Typed, attrs)
			} else {
				res, err = enf.Validate(obj.Typed, attrs)
			}
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", obj.Source(), err))
				continue
			}
			report.Results = append(report.Results, Result{Source: obj.Source(), APIVersion: obj.APIVersion, Kind: obj.Kind,
				Namespace: obj.Namespace, Name: obj.Name, Result: res.WithLists()})
		}
	}

	cli.PrintProblems(s.Err, problems)
	if objects == 0 && len(problems) == 0 {
		fmt.Fprintln(s.Err, "podguard: note: the input holds no Kubernetes objects")
	}
	if o.Output == "json" {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		writeText(s.Out, report, skipped)
	}

	switch {
	case len(problems) > 0:
		return cli.Exit(cli.ExitBadInput)
	case denied(report) > 0:
		return cli.Exit(cli.ExitDenied)
	}
	return nil
}

func denied(r Report) int {
	n := 0
	for _, res := range r.Results {
		if !res.Allowed {
			n++
		}
	}
	return n
}

func writeText(w io.Writer, r Report, skipped int) {
	var violations, warnings int
	for _, res := range r.Results {
		who := fmt.Sprintf("%s %s/%s", res.Source, res.Kind, res.Name)
		line := func(prefix string, f policies.Finding) {
			fmt.Fprintf(w, "%s: %s: %s: %s%s (fix: %s)\n", who, f.Rule, f.Field, prefix, f.Message, f.Fix)
		}
		for _, f := range res.Violations {
			line("", f)
		}
		for _, f := range res.Warnings {
			line("warning: ", f)
		}
		for _, f := range res.Audits {
			line("audit: ", f)
		}
		for _, x := range res.Exempted {
			exp := ""
			if x.Expires != "" {
				exp = ", expires " + x.Expires
			}
			fmt.Fprintf(w, "%s: %s: -: exempted: %s%s\n", who, x.Rule, x.Reason, exp)
		}
		violations += len(res.Violations)
		warnings += len(res.Warnings)
	}
	n := denied(r)
	parts := []string{fmt.Sprintf("%d %s judged", len(r.Results), plural(len(r.Results), "object", "objects")),
		fmt.Sprintf("%d denied (%d %s)", n, violations, plural(violations, "violation", "violations")),
		fmt.Sprintf("%d allowed", len(r.Results)-n),
		fmt.Sprintf("%d %s", warnings, plural(warnings, "warning", "warnings"))}
	if skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d %s of other kinds skipped", skipped, plural(skipped, "object", "objects")))
	}
	fmt.Fprintf(w, "podguard: %s\n", strings.Join(parts, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
