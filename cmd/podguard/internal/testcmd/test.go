// Package testcmd implements `podguard test`: policy tests, resources with
// the verdict expected of each rule on each, checked against a policy (as
// kyverno test and gator verify do for their engines).
package testcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/manifest"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/policies/safetext"
)

// FileName is the name `podguard test` looks for in directories.
const FileName = "podguard-test.yaml"

// Options are the flags of `podguard test`.
type Options struct {
	Paths     []string
	Output    string
	Namespace string
	MaxBytes  int64
}

// Case is one checked expectation in the JSON output.
type Case struct {
	Test     string `json:"test"`
	File     string `json:"file"`
	Resource string `json:"resource"`
	Rule     string `json:"rule,omitempty"`
	Expected string `json:"expected"`
	Got      string `json:"got"`
	Pass     bool   `json:"pass"`
	// Detail says what differs or what the finding was.
	Detail string `json:"detail,omitempty"`
}

// Summary counts the cases.
type Summary struct {
	Tests  int `json:"tests"`
	Cases  int `json:"cases"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// NewCommand returns the test command.
func NewCommand(s cli.Streams) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "test [PATH ...] [-o text|json|junit]",
		Short: "Run policy tests: resources with the verdict expected of each rule",
		Long: `Run the policy tests in the given files, or in every ` + FileName + ` under
the given directories (default: the current directory).

A test file (kind PolicyTest, podguard.dev/v1alpha1) names a policy (default
the built-in one), optional PodGuardExceptions and a target namespace,
resources (manifests), and results: for an object (Kind/name or
Kind/namespace/name) either the verdict expected of a rule (pass, mutate,
warn, deny, audit, exempt), judged as the cluster admits the object
(validate --mutate), or a file with the object as podguard mutate writes
it. Paths are relative to the test file.

Exit status: 0 every case passed, 1 at least one failed, 2 a test file,
policy or resource could not be read (the message names it).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Paths = args
			return o.Run(cmd.Context(), s)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text (a table), json or junit (JUnit XML, for CI test reports)")
	fs.Int64Var(&o.MaxBytes, "max-input-bytes", cli.DefaultMaxInputBytes, "largest file read, in bytes")
	cli.AddOwnNamespaceFlag(fs, &o.Namespace, "podguard's own namespace, exempt under the default exemptions (env POD_NAMESPACE)")
	return cmd
}

// Run finds the test files, runs each and reports.
func (o *Options) Run(ctx context.Context, s cli.Streams) error {
	if o.Output != "text" && o.Output != "json" && o.Output != "junit" {
		return cli.BadInput("unknown output format %q: use text, json or junit", o.Output)
	}
	files, err := findTests(o.Paths)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return cli.BadInput("no %s found in %s", FileName, strings.Join(o.Paths, ", "))
	}
	var cases []Case
	var problems []error
	for _, f := range files {
		cs, err := o.runFile(ctx, f)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		cases = append(cases, cs...)
	}
	sum := Summary{Tests: len(files), Cases: len(cases)}
	for _, c := range cases {
		if c.Pass {
			sum.Passed++
		} else {
			sum.Failed++
		}
	}
	if err := write(s.Out, o.Output, cases, sum); err != nil {
		return err
	}
	if len(problems) > 0 {
		cli.PrintProblems(s.Err, problems)
		return cli.Exit(cli.ExitBadInput)
	}
	if sum.Failed > 0 {
		return cli.Exit(cli.ExitDenied)
	}
	return nil
}

// findTests expands the paths: files as given, directories searched for
// FileName.
func findTests(paths []string) ([]string, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, &cli.ExitError{Code: cli.ExitBadInput, Err: err}
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && d.Name() == FileName {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, &cli.ExitError{Code: cli.ExitBadInput, Err: err}
		}
	}
	return out, nil
}

// object is one judged resource.
type object struct {
	obj *manifest.Object
	ns  string
	// res and changes are its judgement as admitted, once made.
	res     *policies.Result
	changes []change.Change
}

func (o *Options) runFile(ctx context.Context, file string) ([]Case, error) {
	t, err := o.readTest(file)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(file)
	rel := func(p string) string {
		if filepath.IsAbs(p) || p == "" {
			return p
		}
		return filepath.Join(dir, p)
	}
	po := cli.PolicyOptions{File: rel(t.Policy), Namespace: o.Namespace}
	for _, x := range t.Exceptions {
		po.ExceptionFiles = append(po.ExceptionFiles, rel(x))
	}
	enf, err := po.Enforcer(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	req := cli.RequestOptions{TargetNamespace: t.TargetNamespace}
	var now time.Time
	if t.Now != "" {
		if now, err = v1alpha1.ParseExpiry(t.Now); err != nil {
			return nil, &cli.ExitError{Code: cli.ExitBadInput, Err: fmt.Errorf("%s: now: %w", file, err)}
		}
	}
	var paths []string
	for _, r := range t.Resources {
		paths = append(paths, rel(r))
	}
	judged, err := readObjects(ctx, paths, o.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: resources: %w", file, err)
	}
	objects := map[string][]*object{}
	for _, ob := range judged {
		ns, err := req.NamespaceOf(ob.Namespace)
		if err != nil {
			return nil, fmt.Errorf("%s: resources: %s: %w", file, ob.Source(), err)
		}
		x := &object{obj: ob, ns: ns}
		for _, key := range []string{ob.Kind + "/" + ob.Name, ob.Kind + "/" + ns + "/" + ob.Name} {
			objects[key] = append(objects[key], x)
		}
	}
	name := t.Name
	if name == "" {
		name = file
	}
	var cases []Case
	for i, r := range t.Results {
		c := Case{Test: name, File: file, Resource: r.Resource, Rule: r.Rule}
		matches := objects[r.Resource]
		if len(matches) != 1 {
			return nil, fmt.Errorf("%s: results[%d].resource: %q matches %d objects of the resources; name exactly one (Kind/name or Kind/namespace/name)", file, i, r.Resource, len(matches))
		}
		ob := matches[0]
		attrs := req.Attributes(ob.ns)
		attrs.Now = now
		if r.Rule != "" {
			// Judged once, however many rules the results name.
			if ob.res == nil {
				if ob.res, ob.changes, err = enf.Admit(ob.obj.Typed, attrs); err != nil {
					return nil, fmt.Errorf("%s: %s: %w", file, ob.obj.Source(), err)
				}
			}
			c.Expected = r.Result
			c.Got, c.Detail = verdict(ob.res, ob.changes, r.Rule)
			c.Pass = c.Got == c.Expected
			cases = append(cases, c)
		}
		if r.Mutated != "" {
			mc := Case{Test: name, File: file, Resource: r.Resource, Expected: "mutated as " + r.Mutated}
			got := ob.obj.Typed.DeepCopyObject()
			if _, err := enf.Mutate(got, attrs); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, ob.obj.Source(), err)
			}
			want, err := readObject(rel(r.Mutated), o.MaxBytes)
			if err != nil {
				return nil, fmt.Errorf("%s: results[%d].mutated: %w", file, i, err)
			}
			diff, err := differences(got, want)
			if err != nil {
				return nil, fmt.Errorf("%s: results[%d].mutated: %w", file, i, err)
			}
			mc.Pass = len(diff) == 0
			mc.Got = "as expected"
			if !mc.Pass {
				mc.Got, mc.Detail = "different", strings.Join(diff, "; ")
			}
			cases = append(cases, mc)
		}
	}
	return cases, nil
}

// readTest decodes and checks a test file strictly.
func (o *Options) readTest(file string) (*v1alpha1.PolicyTest, error) {
	fail := func(err error) error {
		return &cli.ExitError{Code: cli.ExitBadInput, Err: fmt.Errorf("%s: %w", file, err)}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fail(err)
	}
	if int64(len(data)) > o.MaxBytes {
		return nil, fail(fmt.Errorf("larger than %d bytes", o.MaxBytes))
	}
	var t v1alpha1.PolicyTest
	if err := yaml.UnmarshalStrict(data, &t); err != nil {
		return nil, fail(err)
	}
	var errs []string
	if t.APIVersion != v1alpha1.APIVersion || t.Kind != v1alpha1.PolicyTestKind {
		errs = append(errs, fmt.Sprintf("apiVersion and kind must be %s and %s", v1alpha1.APIVersion, v1alpha1.PolicyTestKind))
	}
	if len(t.Resources) == 0 {
		errs = append(errs, "resources: Required value: name the manifests to judge")
	}
	if len(t.Results) == 0 {
		errs = append(errs, "results: Required value: a test without expectations checks nothing")
	}
	for i, r := range t.Results {
		p := fmt.Sprintf("results[%d]", i)
		if strings.Count(r.Resource, "/") < 1 || strings.Count(r.Resource, "/") > 2 {
			errs = append(errs, p+".resource: Kind/name or Kind/namespace/name")
		}
		if r.Rule == "" && r.Mutated == "" {
			errs = append(errs, p+": give rule and result, or mutated")
		}
		if (r.Rule == "") != (r.Result == "") {
			errs = append(errs, p+": rule and result go together")
		}
		if r.Rule != "" {
			if _, ok := rules.Lookup(r.Rule); !ok {
				errs = append(errs, fmt.Sprintf("%s.rule: Unsupported value: %q: supported values: %s", p, r.Rule, strings.Join(rules.IDs(), ", ")))
			}
		}
		if r.Result != "" && !slices.Contains(v1alpha1.Verdicts, r.Result) {
			errs = append(errs, fmt.Sprintf("%s.result: Unsupported value: %q: supported values: %s", p, r.Result, strings.Join(v1alpha1.Verdicts, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, fail(errors.New(strings.Join(errs, "\n  ")))
	}
	return &t, nil
}

// verdict is what rule came to in a result judged as admitted.
func verdict(res *policies.Result, changes []change.Change, rule string) (string, string) {
	for _, l := range []struct {
		fs      []policies.Finding
		verdict string
	}{{res.Violations, v1alpha1.VerdictDeny}, {res.Warnings, v1alpha1.VerdictWarn}, {res.Audits, v1alpha1.VerdictAudit}} {
		for _, f := range l.fs {
			if f.Rule == rule {
				return l.verdict, f.Field + ": " + f.Message
			}
		}
	}
	for _, x := range res.Exempted {
		if x.Rule == rule || x.Rule == "*" {
			return v1alpha1.VerdictExempt, x.Reason
		}
	}
	for _, c := range changes {
		if c.Rule == rule {
			return v1alpha1.VerdictMutate, ""
		}
	}
	return v1alpha1.VerdictPass, ""
}

// readObjects reads the objects podguard judges in paths; the first
// problem met is the error.
func readObjects(ctx context.Context, paths []string, maxBytes int64) ([]*manifest.Object, error) {
	var out []*manifest.Object
	var problems []error
	in := cli.InputOptions{Files: paths, MaxBytes: maxBytes}
	err := in.EachObject(ctx, nil, func(string) {}, func(err error) { problems = append(problems, err) }, func(ob *manifest.Object) {
		if ob.Supported() {
			out = append(out, ob)
		}
	})
	if err == nil && len(problems) > 0 {
		err = problems[0]
	}
	return out, err
}

// readObject reads the one Kubernetes object of a file.
func readObject(path string, maxBytes int64) (runtime.Object, error) {
	objs, err := readObjects(context.Background(), []string{path}, maxBytes)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("%s holds %d objects podguard judges; want one", path, len(objs))
	}
	return objs[0].Typed, nil
}

// differences lists the field paths (down to the leaves) where got and
// want differ, both compared as their JSON.
func differences(got, want runtime.Object) ([]string, error) {
	toMap := func(o runtime.Object) (map[string]any, error) {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(b, &m)
	}
	g, err := toMap(got)
	if err != nil {
		return nil, err
	}
	w, err := toMap(want)
	if err != nil {
		return nil, err
	}
	var out []string
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		am, aok := a.(map[string]any)
		bm, bok := b.(map[string]any)
		if aok && bok {
			keys := map[string]bool{}
			for k := range am {
				keys[k] = true
			}
			for k := range bm {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			slices.Sort(sorted)
			for _, k := range sorted {
				walk(strings.TrimPrefix(path+"."+k, "."), am[k], bm[k])
			}
			return
		}
		al, aok := a.([]any)
		bl, bok := b.([]any)
		if aok && bok && len(al) == len(bl) {
			for i := range al {
				walk(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i])
			}
			return
		}
		if !reflect.DeepEqual(a, b) {
			ga, _ := json.Marshal(a)
			wb, _ := json.Marshal(b)
			out = append(out, fmt.Sprintf("%s: got %s, want %s", path, ga, wb))
		}
	}
	walk("", g, w)
	return out, nil
}

func write(w io.Writer, format string, cases []Case, sum Summary) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(struct {
			Cases   []Case  `json:"cases"`
			Summary Summary `json:"summary"`
		}{append([]Case{}, cases...), sum}, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case "junit":
		return writeJUnit(w, cases, sum)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tRESOURCE\tRULE\tEXPECTED\tGOT\tRESULT")
	for _, c := range cases {
		result := "pass"
		if !c.Pass {
			result = "FAIL"
		}
		rule := c.Rule
		if rule == "" {
			rule = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", safetext.Line(c.Test), safetext.Line(c.Resource), rule, safetext.Line(c.Expected), c.Got, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range cases {
		if !c.Pass && c.Detail != "" {
			fmt.Fprintf(w, "FAIL %s %s %s: %s\n", safetext.Line(c.Test), safetext.Line(c.Resource), c.Rule, safetext.Line(c.Detail))
		}
	}
	_, err := fmt.Fprintf(w, "\n%d %s, %d %s: %d passed, %d failed\n", sum.Tests, safetext.Plural(sum.Tests, "test", "tests"),
		sum.Cases, safetext.Plural(sum.Cases, "case", "cases"), sum.Passed, sum.Failed)
	return err
}

// writeJUnit writes the cases as JUnit XML, one testsuite per test file.
func writeJUnit(w io.Writer, cases []Case, sum Summary) error {
	out := cli.JUnitSuites{Tests: sum.Cases, Failures: sum.Failed}
	index := map[string]int{}
	for _, c := range cases {
		i, ok := index[c.File]
		if !ok {
			i = len(out.Suites)
			index[c.File] = i
			out.Suites = append(out.Suites, cli.JUnitSuite{Name: c.Test})
		}
		name := c.Resource
		if c.Rule != "" {
			name += " " + c.Rule
		}
		jc := cli.JUnitCase{Name: name + " " + c.Expected, Classname: c.Test}
		if !c.Pass {
			jc.Failure = &cli.JUnitFailure{Message: "expected " + c.Expected + ", got " + c.Got, Text: c.Detail}
		}
		out.Suites[i].Add(jc)
	}
	return cli.WriteJUnit(w, out)
}
