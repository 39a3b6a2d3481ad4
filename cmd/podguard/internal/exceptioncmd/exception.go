// Package exceptioncmd implements `podguard exception`: write the
// PodGuardException an application team sends for approval, from the
// denials of its manifests or from a rule and a workload.
package exceptioncmd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/manifest"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/safetext"
	"podguard.dev/podguard/policies/yamlenc"
)

// Options are the flags of `podguard exception create`.
type Options struct {
	Input      cli.InputOptions
	Policy     cli.PolicyOptions
	Request    cli.RequestOptions
	FromDenial bool
	Rules      []string
	Workloads  []string
	Namespace  string
	Reason     string
	Expires    string
	// Now is the time expiries count from (tests); zero means time.Now().
	Now time.Time
}

// NewCommand returns the exception command and its sub-command.
func NewCommand(s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exception",
		Short: "Write PodGuardExceptions: an application team's request to lift rules from its workloads",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newCreate(s))
	return cmd
}

func newCreate(s cli.Streams) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "create (--from-denial -f PATH | --rule R --workload Kind/name -n NS) --reason TEXT [--expires 30d]",
		Short: "Print a ready PodGuardException manifest for review and kubectl apply",
		Long: `Print PodGuardException manifests (podguard.dev/v1alpha1), ready to review
and apply in the namespace of the workloads they cover.

--from-denial judges the manifests given with -f as the cluster admits them
(validate --mutate) and writes one exception per denied workload, naming the
rules that denied it. Rules the policy does not let be excepted (by default,
every Pod Security Standards baseline rule) are left out, and named on
stderr: those need the manifest fixed, or the platform team.

Otherwise --rule and --workload (Kind/name, repeatable) with -n say what to
lift from what.

--expires is days (30d), a duration, a date or a timestamp; by default the
policy's exceptions.maxDuration. --reason is required: it is reported
wherever the exception applies.

Exit status: 0 written, 1 nothing to except (no denial), 2 bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.Run(cmd.Context(), s) },
	}
	fs := cmd.Flags()
	o.Input.AddFlags(fs)
	fs.BoolVar(&o.FromDenial, "from-denial", false, "write the exceptions the -f manifests need to be admitted")
	fs.StringArrayVar(&o.Rules, "rule", nil, "rule to lift (with --workload); repeatable")
	fs.StringArrayVar(&o.Workloads, "workload", nil, "workload the exception covers, as Kind/name (Deployment/web); repeatable")
	fs.StringVarP(&o.Namespace, "namespace", "n", "", "namespace of the exception and its workloads (with --workload; with --from-denial, for manifests that name none)")
	fs.StringVar(&o.Reason, "reason", "", "why the exception is needed (required)")
	fs.StringVar(&o.Expires, "expires", "", "when it ends: days (30d), a duration (720h), a date or a timestamp; default the policy's exceptions.maxDuration")
	fs.StringVar(&o.Policy.File, "policy", "", "policy file (podguard.dev/v1alpha1 Policy); default: the built-in default policy")
	o.Policy.Namespace = v1alpha1.DefaultNamespace
	return cmd
}

// Run writes the exceptions.
func (o *Options) Run(ctx context.Context, s cli.Streams) error {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if strings.TrimSpace(o.Reason) == "" {
		return cli.BadInput("--reason is required: say why the exception is needed; it is reported wherever it applies")
	}
	if o.FromDenial == (len(o.Workloads) > 0) {
		return cli.BadInput("give either --from-denial with -f, or --rule and --workload with -n")
	}
	p, err := o.Policy.Load(ctx)
	if err != nil {
		return err
	}
	expires := o.Expires
	if expires == "" {
		expires = p.Exceptions.MaxDuration
	}
	text, _, err := v1alpha1.ExpiryFrom(expires, now)
	if err != nil {
		return cli.BadInput("--expires: %v", err)
	}
	var xs []v1alpha1.PodGuardException
	if o.FromDenial {
		if xs, err = o.fromDenials(ctx, s, p, text); err != nil {
			return err
		}
	} else if xs, err = o.fromFlags(text); err != nil {
		return err
	}
	if len(xs) == 0 {
		fmt.Fprintln(s.Err, "podguard: note: nothing to except: no workload is denied for a rule the policy lets be excepted")
		return cli.Exit(cli.ExitDenied)
	}
	e, err := policies.New(p)
	if err != nil {
		return cli.BadInput("%v", err)
	}
	for i := range xs {
		// Check it as admission will, with the time it will be created.
		x := xs[i]
		x.CreationTimestamp = metav1.NewTime(now)
		if problems := e.ValidateException(&x, now); len(problems) > 0 {
			return cli.BadInput("the policy would refuse PodGuardException %s/%s: %s", x.Namespace, x.Name, strings.Join(problems, "; "))
		}
		b, err := yamlenc.Marshal(xs[i])
		if err != nil {
			return err
		}
		fmt.Fprintf(s.Out, "---\n%s", b)
	}
	return nil
}

func newException(ns, name string, rules []string, w v1alpha1.WorkloadRef, reason, expires string) v1alpha1.PodGuardException {
	return v1alpha1.PodGuardException{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.ExceptionKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.PodGuardExceptionSpec{Rules: rules, Workloads: []v1alpha1.WorkloadRef{w}, Reason: reason, Expires: expires},
	}
}

// exceptionName is a DNS name for the exception of a workload.
func exceptionName(kind, name string) string {
	n := strings.ToLower(kind) + "-" + name
	if len(n) > 253 {
		n = n[:253]
	}
	return strings.Trim(n, "-.")
}

func (o *Options) fromFlags(expires string) ([]v1alpha1.PodGuardException, error) {
	if o.Namespace == "" || len(o.Rules) == 0 {
		return nil, cli.BadInput("--workload needs -n (the namespace) and at least one --rule")
	}
	if errs := k8svalidation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return nil, cli.BadInput("-n %q: not a namespace name", safetext.Line(o.Namespace))
	}
	var out []v1alpha1.PodGuardException
	for _, w := range o.Workloads {
		kind, name, ok := strings.Cut(w, "/")
		if !ok || kind == "" || name == "" {
			return nil, cli.BadInput("--workload %q: want Kind/name, e.g. Deployment/web", safetext.Line(w))
		}
		rules := slices.Clone(o.Rules)
		slices.Sort(rules)
		out = append(out, newException(o.Namespace, exceptionName(kind, name), slices.Compact(rules), v1alpha1.WorkloadRef{Kind: kind, Name: name}, o.Reason, expires))
	}
	return out, nil
}

func (o *Options) fromDenials(ctx context.Context, s cli.Streams, p *v1alpha1.Policy, expires string) ([]v1alpha1.PodGuardException, error) {
	if len(o.Input.Files) == 0 {
		return nil, cli.BadInput("--from-denial needs the manifests: -f PATH")
	}
	e, err := policies.New(p)
	if err != nil {
		return nil, cli.BadInput("%v", err)
	}
	var out []v1alpha1.PodGuardException
	var problems []error
	note := func(n string) { fmt.Fprintf(s.Err, "podguard: note: %s\n", safetext.Line(n)) }
	err = o.Input.EachObject(ctx, s.In, note, func(err error) { problems = append(problems, err) }, func(obj *manifest.Object) {
		if !obj.Supported() {
			return
		}
		ns := obj.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		if ns == "" {
			problems = append(problems, fmt.Errorf("%s: %s/%s names no namespace: give -n", obj.Source(), obj.Kind, obj.Name))
			return
		}
		res, _, err := e.Admit(obj.Typed, policies.Attributes{Namespace: ns})
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", obj.Source(), err))
			return
		}
		var rules, refused []string
		for _, f := range res.Violations {
			switch {
			case slices.Contains(p.Exceptions.Rules, f.Rule):
				rules = append(rules, f.Rule)
			default:
				refused = append(refused, f.Rule)
			}
		}
		slices.Sort(rules)
		slices.Sort(refused)
		rules, refused = slices.Compact(rules), slices.Compact(refused)
		if len(refused) > 0 {
			note(fmt.Sprintf("%s %s/%s: the policy does not let %s be excepted: fix the manifest, or ask the platform team", obj.Source(), obj.Kind, obj.Name, strings.Join(refused, ", ")))
		}
		if len(rules) == 0 {
			return
		}
		kind := obj.Kind
		if t, ok := podspec.Find(obj.Typed); ok {
			kind = t.Kind.Kind
		}
		out = append(out, newException(ns, exceptionName(kind, obj.Name), rules, v1alpha1.WorkloadRef{Kind: kind, Name: obj.Name}, o.Reason, expires))
	})
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		cli.PrintProblems(s.Err, problems)
		return nil, cli.Exit(cli.ExitBadInput)
	}
	return out, nil
}
