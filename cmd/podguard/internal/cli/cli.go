// Package cli holds what podguard's sub-commands share: streams, exit
// codes, the policy flags and the reading of manifest inputs.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/manifest"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/policies/safetext"
	"podguard.dev/podguard/webhook"
	"podguard.dev/podguard/webhook/audit"
)

// Exit codes, a contract with users' scripts and CI.
const (
	// ExitOK: everything allowed (warnings may have been printed).
	ExitOK = 0
	// ExitDenied: at least one object denied.
	ExitDenied = 1
	// ExitBadInput: bad input or usage; the message names file, document and line.
	ExitBadInput = 2
	// ExitInterrupted: SIGINT or SIGTERM ended an offline command (128 + SIGINT).
	ExitInterrupted = 130
)

// Streams are a command's standard input, output and error.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// ExitError carries an exit code out of a command. Its message, if any, has
// not been printed yet.
type ExitError struct {
	Code int
	Err  error
}

// Unwrap returns the error carried.
func (e *ExitError) Unwrap() error { return e.Err }

// ErrorText is an error as stderr shows it: on one line, its control
// characters visible, except an invalid policy's list of problems, which
// load.Error already keeps one per line.
func ErrorText(err error) string {
	var le *load.Error
	if !errors.As(err, &le) {
		return safetext.Line(err.Error())
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = safetext.Line(l)
	}
	return strings.Join(lines, "\n")
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Exit returns an ExitError with a code and no further message.
func Exit(code int) error { return &ExitError{Code: code} }

// BadInput returns an exit-2 error with a message.
func BadInput(format string, args ...any) error {
	return &ExitError{Code: ExitBadInput, Err: fmt.Errorf(format, args...)}
}

// CodeOf maps a command's error to its exit code.
func CodeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitBadInput
}

// PolicyOptions select the policy a command applies.
type PolicyOptions struct {
	// File is the policy file; empty means the default policy.
	File string
	// Namespace is podguard's own namespace, exempt in the default policy.
	Namespace string
	// ExceptionFiles are the --exceptions paths: PodGuardExceptions to
	// honour as a cluster holding them would.
	ExceptionFiles []string
	// Kubeconfig is --kubeconfig: the PodGuardExceptions of that cluster
	// are honoured too. Only when given: these commands ask no cluster
	// otherwise.
	Kubeconfig string
	// Note, when set, is told of exceptions the policy ignores.
	Note func(string)
	// TrustDir is --trust-dir: where the ConfigMaps and Secrets the image
	// rules read are, laid out as the chart mounts them.
	TrustDir string
	// TUF, when set, fetches the trusted roots of the TUF repositories the
	// policy names (DigestOptions.TUFReader: the commands that verify
	// images).
	TUF rules.TUFReader
}

// AddExceptionFlags registers --exceptions and --kubeconfig.
func (o *PolicyOptions) AddExceptionFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.ExceptionFiles, "exceptions", nil, "file or directory of PodGuardExceptions to honour, as the cluster holding them would (each applies in its own metadata.namespace); repeatable")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "also honour the PodGuardExceptions of the cluster this kubeconfig file names (needs list on podguardexceptions.podguard.dev); without it no cluster is asked")
}

// Exceptions reads the PodGuardExceptions to honour: the --exceptions
// files, and the cluster's with --kubeconfig, listed as the audit lists
// them.
func (o *PolicyOptions) Exceptions(ctx context.Context) ([]v1alpha1.PodGuardException, error) {
	var xs []v1alpha1.PodGuardException
	if len(o.ExceptionFiles) > 0 {
		var err error
		if xs, err = ReadExceptions(ctx, o.ExceptionFiles, nil, DefaultMaxInputBytes); err != nil {
			return nil, err
		}
	}
	if o.Kubeconfig == "" {
		return xs, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return nil, BadInput("--kubeconfig %s: %v", safetext.Line(o.Kubeconfig), err)
	}
	cfg.UserAgent = "podguard"
	in, err := audit.ListExceptions(ctx, cfg, "")
	if err != nil {
		return nil, BadInput("--kubeconfig %s: %v", safetext.Line(o.Kubeconfig), err)
	}
	return append(xs, in...), nil
}

// AddFlags registers --policy and --podguard-namespace.
func (o *PolicyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.File, "policy", "", "policy file (podguard.dev/v1alpha1 Policy); default: the built-in default policy")
	AddOwnNamespaceFlag(fs, &o.Namespace, "podguard's own namespace, exempt under the default exemptions (env POD_NAMESPACE)")
}

// AddTrustFlag registers --trust-dir, for the commands that verify images
// or check the policy's trust material.
func (o *PolicyOptions) AddTrustFlag(fs *pflag.FlagSet) {
	fs.StringVar(&o.TrustDir, "trust-dir", "", "directory holding the ConfigMaps and Secrets the policy's pemFrom and trustedRootFrom name, as the chart mounts them (configmaps/NAME/KEY, secrets/NAME/KEY); a missing or malformed one is an error; without it their authorities verify nothing")
}

// OwnNamespaceFlag names podguard's own namespace on every command.
const OwnNamespaceFlag = "podguard-namespace"

// AddOwnNamespaceFlag registers --podguard-namespace, defaulting to
// POD_NAMESPACE or podguard's default namespace, and --namespace as its
// deprecated alias: until this release --namespace meant podguard's own
// namespace in validate, mutate, export, policy and serve, while audit's
// --namespace (like kubectl's) is the namespace to look at. Kept for one
// release so scripts keep working.
func AddOwnNamespaceFlag(fs *pflag.FlagSet, target *string, usage string) {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = v1alpha1.DefaultNamespace
	}
	fs.StringVar(target, OwnNamespaceFlag, ns, usage)
	fs.StringVar(target, "namespace", ns, usage)
	_ = fs.MarkDeprecated("namespace", "use --"+OwnNamespaceFlag+" (podguard's own namespace); validate and mutate take --target-namespace for the namespace the manifests go to")
}

// CheckNamespace refuses a --podguard-namespace (or POD_NAMESPACE) that is
// not a namespace name: it is written into the default policy's exemptions.
func (o *PolicyOptions) CheckNamespace() error {
	if errs := k8svalidation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return BadInput("--%s %q: not a namespace name: %s", OwnNamespaceFlag, safetext.Line(o.Namespace), strings.Join(errs, "; "))
	}
	return nil
}

// Load reads, defaults and validates the policy. Reading is bounded and
// stops when ctx ends, like every input (a FIFO given as --policy must not
// hang the command).
func (o *PolicyOptions) Load(ctx context.Context) (*v1alpha1.Policy, error) {
	if err := o.CheckNamespace(); err != nil {
		return nil, err
	}
	if o.File == "" {
		return load.Default(o.Namespace), nil
	}
	in := InputOptions{MaxBytes: load.MaxPolicyBytes}
	data, err := in.Read(ctx, Input{Path: o.File, open: o.File}, nil)
	if errors.Is(err, ErrInterrupted) {
		return nil, &ExitError{Code: ExitInterrupted, Err: err}
	}
	if err == nil {
		var p *v1alpha1.Policy
		if p, err = load.Bytes(data, o.File, o.Namespace); err == nil {
			return p, o.resolveTrust(p)
		}
	}
	return nil, &ExitError{Code: ExitBadInput, Err: err}
}

// resolveTrust reads what the image rules take from ConfigMaps and
// Secrets from --trust-dir. Unlike the webhook, which keeps serving and
// denies the images a missing key was to vouch for, the CLI refuses: in
// CI a missing file is a mistake to fix, not an outage to ride out.
//
// Trusted roots of TUF repositories are fetched with o.TUF, which the
// commands that ask registries set (their CA, --cache-dir, --offline); a
// repository that cannot be read is an error too.
func (o *PolicyOptions) resolveTrust(p *v1alpha1.Policy) error {
	if o.TrustDir == "" && o.TUF == nil {
		return nil
	}
	var read rules.TrustReader
	if o.TrustDir != "" {
		read = webhook.TrustDir(o.TrustDir)
	}
	if _, problems := rules.ResolveTrust(p, read, o.TUF); len(problems) > 0 {
		what := "trust material"
		if o.TrustDir != "" {
			what = "--trust-dir " + o.TrustDir
		}
		return &ExitError{Code: ExitBadInput, Err: fmt.Errorf("%s: %s: %w", o.File, what, problems.ToAggregate())}
	}
	return nil
}

// Enforcer builds the engine for the policy and the --exceptions.
func (o *PolicyOptions) Enforcer(ctx context.Context) (*policies.Enforcer, error) {
	p, err := o.Load(ctx)
	if err != nil {
		return nil, err
	}
	xs, err := o.Exceptions(ctx)
	if err != nil {
		return nil, err
	}
	e, states, err := policies.NewWithExceptions(p, xs, time.Now())
	if err != nil {
		return nil, &ExitError{Code: ExitBadInput, Err: err}
	}
	for _, st := range states {
		if o.Note == nil {
			break
		}
		switch st.State {
		case policies.ExceptionIgnored:
			o.Note(fmt.Sprintf("PodGuardException %s/%s is ignored: %s", st.Namespace, st.Name, st.Problem))
		case policies.ExceptionExpired:
			o.Note(fmt.Sprintf("PodGuardException %s/%s expired at %s", st.Namespace, st.Name, st.Expires))
		}
	}
	return e, nil
}

// EachDocument reads the inputs in order and hands fn every document, one
// at a time, so memory holds one input's bytes and one document's tree, not
// every object of a stream. Notes (files passed over) go to notes; files
// that cannot be read go to problem. It stops with ErrInterrupted when ctx
// ends, and fails only when the arguments are unusable.
func (o *InputOptions) EachDocument(ctx context.Context, stdin io.Reader, notes func(string), problem func(error), fn func(*manifest.Document)) error {
	inputs, skipped, err := o.Expand()
	if err != nil {
		return err
	}
	for _, n := range skipped {
		notes(n)
	}
	for _, in := range inputs {
		data, err := o.Read(ctx, in, stdin)
		if errors.Is(err, ErrInterrupted) {
			return &ExitError{Code: ExitInterrupted, Err: err}
		}
		if err != nil {
			problem(err)
			continue
		}
		s, err := manifest.NewSplitter(in.Path, data)
		if err != nil {
			problem(err)
			continue
		}
		for {
			if ctx.Err() != nil {
				return &ExitError{Code: ExitInterrupted, Err: ErrInterrupted}
			}
			d, ok := s.Next()
			if !ok {
				break
			}
			fn(d)
		}
	}
	return nil
}

// EachObject is EachDocument for commands that want objects: each
// document's objects (a List's items) go to fn in order, and a document
// that is not a Kubernetes object goes to problem.
func (o *InputOptions) EachObject(ctx context.Context, stdin io.Reader, notes func(string), problem func(error), fn func(*manifest.Object)) error {
	return o.EachDocument(ctx, stdin, notes, problem, func(d *manifest.Document) {
		objs, err := d.Objects()
		if err != nil {
			problem(err)
			return
		}
		for _, obj := range objs {
			fn(obj)
		}
	})
}

// PrintProblems writes each problem on its own line to w.
func PrintProblems(w io.Writer, problems []error) {
	for _, p := range problems {
		fmt.Fprintf(w, "podguard: error: %s\n", ErrorText(p))
	}
}

// RequestOptions name the requesting user offline, for user and group
// exemptions (the webhook reads them from the request).
type RequestOptions struct {
	User   string
	Groups []string
	// TargetNamespace is where the manifests go (kubectl apply -n): the
	// namespace of objects that name none, so namespace exemptions and
	// exceptions apply offline as they will in the cluster.
	TargetNamespace string
}

// AddFlags registers --user, --group and --target-namespace.
func (o *RequestOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.User, "user", "", "requesting user, for user exemptions (the webhook knows it; offline you say it)")
	fs.StringArrayVar(&o.Groups, "group", nil, "requesting user's group, for group exemptions; repeatable")
	fs.StringVar(&o.TargetNamespace, "target-namespace", "", "namespace the manifests are applied to (as kubectl apply -n NS): objects without metadata.namespace are judged there; an object naming another namespace is an error, as kubectl makes it")
}

// CheckTargetNamespace refuses a --target-namespace that is not a namespace name.
func (o *RequestOptions) CheckTargetNamespace() error {
	if o.TargetNamespace == "" {
		return nil
	}
	if errs := k8svalidation.IsDNS1123Label(o.TargetNamespace); len(errs) > 0 {
		return BadInput("--target-namespace %q: not a namespace name: %s", safetext.Line(o.TargetNamespace), strings.Join(errs, "; "))
	}
	return nil
}

// NamespaceOf is the namespace an object lands in: its own, else
// --target-namespace. Like kubectl apply -n, it refuses an object whose own
// namespace differs from --target-namespace.
func (o *RequestOptions) NamespaceOf(own string) (string, error) {
	switch {
	case o.TargetNamespace == "":
		return own, nil
	case own == "" || own == o.TargetNamespace:
		return o.TargetNamespace, nil
	}
	return "", fmt.Errorf("metadata.namespace: %q does not match --target-namespace %q (kubectl refuses it the same way)", own, o.TargetNamespace)
}

// Attributes returns the engine's request attributes for an object of namespace ns.
func (o *RequestOptions) Attributes(ns string) policies.Attributes {
	return policies.Attributes{Namespace: ns, User: o.User, Groups: o.Groups}
}
