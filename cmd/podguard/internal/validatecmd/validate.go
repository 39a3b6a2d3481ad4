// Package validatecmd implements `podguard validate`: judge manifests
// offline, exactly as the webhook would.
package validatecmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"podguard.dev/podguard/policies/safetext"
	"strings"

	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/manifest"
	"podguard.dev/podguard/policies/podspec"
)

// Options are the flags of `podguard validate`.
type Options struct {
	Input   cli.InputOptions
	Mutate  bool
	Output  string
	Verbose bool
	Strict  bool
	Request cli.RequestOptions
	Policy  cli.PolicyOptions
	Digests cli.DigestOptions
}

// Skipped is an object (or a document) that was not judged, with why.
type Skipped struct {
	Source     string `json:"source"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Reason     string `json:"reason"`
	// misplaced marks a pod-bearing kind under the wrong API version: text
	// output names it even without -v.
	misplaced bool
}

// Summary counts what a run judged.
type Summary struct {
	// Objects is every object read: judged and skipped.
	Objects int `json:"objects"`
	Judged  int `json:"judged"`
	Allowed int `json:"allowed"`
	Denied  int `json:"denied"`
	// Violations and Warnings count findings.
	Violations int `json:"violations"`
	Warnings   int `json:"warnings"`
	Skipped    int `json:"skipped"`
	// Fixable counts the violations that mutation fixes at admission
	// (without --mutate; with it they are warnings already).
	Fixable int `json:"fixable"`
}

// Result is one judged object in the JSON output.
type Result struct {
	Source     string `json:"source"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	*policies.Result
	// file is the input's path, for SARIF.
	file string
	// utf16Column converts a finding's column into UTF-16 code units,
	// for SARIF.
	utf16Column func(line, column int) int
	// fix renders the document with one rule's fix applied, for SARIF;
	// nil when no fix is known.
	fix func(rule string) (docFix, bool)
}

// docFix replaces a document's lines with their fixed text.
type docFix struct {
	startLine, endLine int
	text               string
}

// NewCommand returns the validate command.
func NewCommand(s cli.Streams) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "validate -f PATH [-f PATH ...] [--policy FILE] [--mutate] [-o text|lines|json|sarif|junit]",
		Short: "Judge manifests against the policy, offline",
		Long: `Judge every Pod and pod template in the given manifests against the policy.

PATH is a file, a directory (read recursively: *.yaml, *.yml, *.json) or - for
stdin. Multi-document YAML, JSON streams and Lists are read, cut into
documents exactly as kubectl cuts them; objects of other kinds are passed
over. Without --mutate objects are judged as written; with --mutate as the
cluster admits them: Pods are mutated first, workloads are judged on their
mutated template and what mutation fixes is reported as a warning.

Exit status: 0 everything allowed (warnings may be printed), 1 at least one
object denied, 2 bad input or usage (the message names file, document, line),
130 interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.Run(cmd.Context(), s) },
	}
	fs := cmd.Flags()
	o.Input.AddFlags(fs)
	fs.BoolVar(&o.Mutate, "mutate", false, "judge objects as the cluster admits them (mutation first)")
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text (grouped per object, for people), lines (one line per finding, for grep), json, sarif (SARIF 2.1.0, for code scanning) or junit (JUnit XML, for CI test reports: one testcase per object, failed when denied)")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "text output: list every object not judged, with the reason")
	fs.BoolVar(&o.Strict, "strict", false, "no effect: a pod-bearing kind under an API version that does not serve it (v1 Deployment) is now always an error")
	_ = fs.MarkDeprecated("strict", "a pod-bearing kind under an API version that does not serve it is now always an error, as kubectl makes it; --strict will be removed")
	o.Request.AddFlags(fs)
	o.Policy.AddFlags(fs)
	o.Policy.AddExceptionFlags(fs)
	o.Policy.AddTrustFlag(fs)
	o.Digests.AddFlags(fs)
	o.Digests.AddVerifyFlags(fs)
	o.Digests.AddCacheFlags(fs)
	return cmd
}

// Run judges the inputs and writes the report, object by object.
func (o *Options) Run(ctx context.Context, s cli.Streams) error {
	if o.Output != "text" && o.Output != "lines" && o.Output != "json" && o.Output != "sarif" && o.Output != "junit" {
		return cli.BadInput("unknown output format %q: use text, lines, json, sarif or junit", o.Output)
	}
	if err := o.Request.CheckTargetNamespace(); err != nil {
		return err
	}
	if err := o.Digests.CheckCacheFlags(); err != nil {
		return err
	}
	o.Policy.Note = func(n string) { fmt.Fprintf(s.Err, "podguard: note: %s\n", safetext.Line(n)) }
	o.Policy.TUF = o.Digests.TUFReader()
	enf, err := o.Policy.Enforcer(ctx)
	if err != nil {
		return err
	}
	var w writer
	switch o.Output {
	case "json":
		w = newJSONWriter(s.Out)
	case "sarif":
		w = newSARIFWriter(s.Out)
	case "junit":
		w = &junitWriter{w: s.Out}
	case "lines":
		w = &textWriter{w: s.Out, verbose: o.Verbose, lines: true}
	default:
		w = newTextWriter(s.Out, o.Verbose)
	}
	var st stats
	problems := 0
	problem := func(err error) {
		problems++
		cli.PrintProblems(s.Err, []error{err})
	}
	note := func(n string) { fmt.Fprintf(s.Err, "podguard: note: %s\n", safetext.Line(n)) }
	err = o.Input.EachDocument(ctx, s.In, note, problem, func(doc *manifest.Document) {
		objs, err := doc.Objects()
		if err != nil {
			problem(err)
			reason := err.Error()
			var ie *manifest.InputError
			if errors.As(err, &ie) {
				reason = ie.Err.Error()
			}
			w.skip(Skipped{Source: doc.Name(), Reason: reason})
			return
		}
		for _, obj := range objs {
			st.objects++
			if !obj.Supported() {
				reason, misplaced := podspec.SkipReason(obj.APIVersion, obj.Kind)
				if misplaced {
					problem(&manifest.InputError{Source: obj.Doc.Source, Doc: obj.Doc.Index, Line: obj.Doc.Line, Err: fmt.Errorf("%s (kubectl refuses it too: no matches for kind %q in version %q)", reason, obj.Kind, obj.APIVersion)})
				}
				st.skipped++
				w.skip(Skipped{Source: obj.Source(), APIVersion: obj.APIVersion, Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, Reason: reason, misplaced: misplaced})
				continue
			}
			ns, err := o.Request.NamespaceOf(obj.Namespace)
			if err != nil {
				problem(&manifest.InputError{Source: obj.Doc.Source, Doc: obj.Doc.Index, Line: obj.Doc.Line, Err: err})
				continue
			}
			attrs := o.Request.Attributes(ns)
			if o.Mutate {
				if attrs.Digests, err = o.Digests.Digests(ctx, enf, obj.Typed); err != nil {
					problem(err)
					continue
				}
			}
			if err = o.Digests.Verdicts(ctx, enf, obj.Typed, &attrs); err != nil {
				problem(err)
				continue
			}
			var res *policies.Result
			if o.Mutate {
				res, _, err = enf.Admit(obj.Typed, attrs)
			} else {
				res, err = enf.Validate(obj.Typed, attrs)
			}
			if err != nil {
				problem(fmt.Errorf("%s: %w", obj.Source(), err))
				continue
			}
			locate(obj, res)
			st.add(res)
			if !o.Mutate && !res.Allowed {
				if admitted, _, err := enf.Admit(obj.Typed, attrs); err == nil {
					st.fixable += max(0, len(res.Violations)-len(admitted.Violations))
				}
			}
			var fix func(string) (docFix, bool)
			if o.Output == "sarif" {
				fix = fixer(enf, obj, attrs)
			}
			if err := w.result(Result{Source: obj.Source(), APIVersion: obj.APIVersion, Kind: obj.Kind,
				Namespace: ns, Name: obj.Name, Result: res.WithLists(), file: obj.Doc.Source, utf16Column: obj.UTF16Column, fix: fix}); err != nil {
				problem(err)
			}
		}
	})
	if err != nil {
		return err
	}
	if st.objects == 0 && problems == 0 {
		fmt.Fprintln(s.Err, "podguard: note: the input holds no Kubernetes objects")
	}
	if err := o.Digests.Save(); err != nil {
		problem(err)
	}
	if err := w.finish(st.summary()); err != nil {
		return err
	}
	switch {
	case problems > 0:
		return cli.Exit(cli.ExitBadInput)
	case st.denied > 0:
		return cli.Exit(cli.ExitDenied)
	}
	return nil
}

// locate sets each finding's line and column in the input.
func locate(obj *manifest.Object, res *policies.Result) {
	for _, fs := range [][]policies.Finding{res.Violations, res.Warnings, res.Audits} {
		for i := range fs {
			fs[i].Line, fs[i].Column = obj.Position(fs[i].Field)
		}
	}
}

// stats are the counts a report ends with.
type stats struct {
	objects, judged, denied, violations, warnings, skipped, fixable int
}

func (st *stats) add(r *policies.Result) {
	st.judged++
	if !r.Allowed {
		st.denied++
	}
	st.violations += len(r.Violations)
	st.warnings += len(r.Warnings)
}

func (st *stats) summary() Summary {
	return Summary{Objects: st.objects, Judged: st.judged, Allowed: st.judged - st.denied, Denied: st.denied,
		Violations: st.violations, Warnings: st.warnings, Skipped: st.skipped, Fixable: st.fixable}
}

// writer prints results as they come, so output never waits for, or
// holds, the whole input (only what was skipped is kept, to list at the end).
type writer interface {
	result(Result) error
	skip(Skipped)
	finish(Summary) error
}

// jsonWriter streams {"results": [...], "skipped": [...], "summary": {...}}
// in the layout of json.Encoder with two-space indentation.
type jsonWriter struct {
	w       io.Writer
	n       int
	skipped []Skipped
}

func newJSONWriter(w io.Writer) *jsonWriter { return &jsonWriter{w: w} }

func (j *jsonWriter) result(r Result) error {
	b, err := json.MarshalIndent(r, "    ", "  ")
	if err != nil {
		return err
	}
	sep := ",\n    "
	if j.n == 0 {
		sep = "{\n  \"results\": [\n    "
	}
	j.n++
	_, err = j.w.Write(append([]byte(sep), b...))
	return err
}

func (j *jsonWriter) skip(s Skipped) { j.skipped = append(j.skipped, s) }

func (j *jsonWriter) finish(sum Summary) error {
	var b bytes.Buffer
	if j.n == 0 {
		b.WriteString("{\n  \"results\": [],\n")
	} else {
		b.WriteString("\n  ],\n")
	}
	skipped := j.skipped
	if skipped == nil {
		skipped = []Skipped{}
	}
	for _, part := range []struct {
		key   string
		value any
		last  bool
	}{{"skipped", skipped, false}, {"summary", sum, true}} {
		v, err := json.MarshalIndent(part.value, "  ", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  %q: %s", part.key, v)
		if !part.last {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	_, err := j.w.Write(b.Bytes())
	return err
}

// fixer returns what a SARIF fix of one rule's findings on obj is: its
// document (YAML only: a JSON stream may hold several on a line) rendered
// as podguard mutate renders it, with that rule's changes alone. Rules
// whose fix mutation does not know (privileged, hostPath...) get none.
func fixer(enf *policies.Enforcer, obj *manifest.Object, attrs policies.Attributes) func(string) (docFix, bool) {
	doc := obj.Doc
	if doc.JSON || len(doc.Raw) == 0 {
		return nil
	}
	lines := bytes.Count(bytes.TrimRight(doc.Raw, "\n"), []byte("\n")) + 1
	return func(rule string) (docFix, bool) {
		// A fresh parse of the document: applying changes edits its tree.
		sp, err := manifest.NewSplitter(doc.Source, doc.Raw)
		if err != nil {
			return docFix{}, false
		}
		d, ok := sp.Next()
		if !ok {
			return docFix{}, false
		}
		objs, err := d.Objects()
		if err != nil {
			return docFix{}, false
		}
		var target *manifest.Object
		for _, x := range objs {
			if x.Item == obj.Item && x.Supported() {
				target = x
			}
		}
		if target == nil {
			return docFix{}, false
		}
		a := attrs
		a.Rules = []string{rule}
		changes, err := enf.Mutate(target.Typed, a)
		if err != nil || len(changes) == 0 || target.Apply(changes) != nil {
			return docFix{}, false
		}
		out, err := d.Render()
		if err != nil {
			return docFix{}, false
		}
		return docFix{startLine: doc.Line, endLine: doc.Line + lines - 1, text: strings.TrimRight(string(out), "\n")}, true
	}
}

// junitWriter collects one JUnit testcase per judged object (a testsuite
// per input file), failed when the object is denied, its warnings in
// system-out, for CI systems that show test reports.
type junitWriter struct {
	w      io.Writer
	report cli.JUnitSuites
	index  map[string]int
}

func (j *junitWriter) result(r Result) error {
	if j.index == nil {
		j.index = map[string]int{}
	}
	i, ok := j.index[r.file]
	if !ok {
		i = len(j.report.Suites)
		j.index[r.file] = i
		j.report.Suites = append(j.report.Suites, cli.JUnitSuite{Name: r.file})
	}
	name := r.Kind + " " + r.Name
	if r.Namespace != "" {
		name = r.Kind + " " + r.Namespace + "/" + r.Name
	}
	c := cli.JUnitCase{Name: name, Classname: r.Source}
	line := func(f policies.Finding) string {
		return fmt.Sprintf("%s: %s: %s (fix: %s)", f.Rule, f.Field, f.Message, f.FixHere())
	}
	var ws []string
	for _, f := range r.Warnings {
		ws = append(ws, "warning: "+line(f))
	}
	c.SystemOut = strings.Join(ws, "\n")
	if !r.Allowed {
		var vs []string
		for _, f := range r.Violations {
			vs = append(vs, line(f))
		}
		c.Failure = &cli.JUnitFailure{Message: fmt.Sprintf("denied: %d %s", len(r.Violations), safetext.Plural(len(r.Violations), "violation", "violations")), Text: strings.Join(vs, "\n")}
		j.report.Failures++
	}
	j.report.Tests++
	j.report.Suites[i].Add(c)
	return nil
}

func (j *junitWriter) skip(Skipped) {}

func (j *junitWriter) finish(Summary) error { return cli.WriteJUnit(j.w, j.report) }
