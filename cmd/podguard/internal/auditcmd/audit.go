// Package auditcmd implements `podguard audit`: judge what already runs in
// a cluster, with the same engine as the webhook, and write the evidence.
package auditcmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/policies/safetext"
	"podguard.dev/podguard/webhook"
	"podguard.dev/podguard/webhook/audit"
)

// Options are the flags of `podguard audit`.
type Options struct {
	Kubeconfig      string
	Context         string
	Namespace       string
	AllNamespaces   bool
	Policy          cli.PolicyOptions
	Output          string
	Selector        string
	Baseline        string
	BaselineExpires string
	ChunkSize       int64
	RequestTimeout  time.Duration
	// OptOutLabel and ExcludeNamespaces name the namespaces podguard's
	// webhooks never see (the chart's webhook.optOutLabel and
	// webhook.excludeNamespaces): shown, never judged or baselined.
	OptOutLabel       string
	ExcludeNamespaces []string
	// Images asks registries what the image rules need (--verify-images,
	// --registry-ca-file, --registry-auth-file, --resolve-timeout).
	Images cli.DigestOptions
	// PodPullSecrets presents each pod's own imagePullSecrets, read with
	// the caller's credentials, to its registries (--pod-pull-secrets).
	PodPullSecrets bool
	// exceptions are the cluster's PodGuardExceptions, once listed.
	exceptions []v1alpha1.PodGuardException
	// AfterList is handed to audit.List (tests).
	AfterList func(audit.Resource)
}

// NewCommand returns the audit command.
func NewCommand(s cli.Streams) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "audit [--kubeconfig FILE] [--context C] [-n NS | -A] [--policy FILE] [-o text|json|yaml|html] [--selector L] [--baseline FILE]",
		Short: "Judge what already runs in a cluster and report it against the hardening checklist",
		Long: `List every Pod and pod-bearing workload (the kinds the webhook judges) and the
NetworkPolicies, and judge each with the same engine as the webhook: workloads
as the cluster would admit their next rollout (mutation first), Pods as they
run. Pods owned by a workload are collapsed into it, with a count. The report
gives, per namespace, the hardening checklist (non-root 1000:1000, capabilities
dropped, no privilege escalation, limits, read-only root filesystem, no host
access, seccomp/AppArmor/SELinux, probes, no literal secrets, pinned images,
service account tokens, network isolation), each item with its Pod Security
Standards and CIS Kubernetes Benchmark controls and the subjects behind a
failure; then what would be denied or warned, field by field, with the fix.

-o text (default), json and yaml (a podguard.dev/v1alpha1 AuditReport, a
documented contract) or html (one self-contained file for an auditor).

--baseline FILE writes the policy (--policy, or the default policy) with the
exemptions today's cluster needs to pass added, each as narrow as its
findings allow (rule and image, or rule and namespace) and expiring after
--baseline-expires: enforce for everything new at once, then burn the list
down. Comments of the policy file are kept.

Needs list on pods, podtemplates, replicationcontrollers, deployments,
replicasets, statefulsets, daemonsets, jobs, cronjobs and networkpolicies
(the chart's audit-reader ClusterRole), and get or list on namespaces for
the opt-out label. Lists are paged (--chunk-size). Namespaces podguard's
webhooks never see (--opt-out-label, --exclude-namespace) are listed as not
audited: never judged, counted or baselined.

Exit status: 0 nothing would be denied, 1 something would be denied, 2 an
error (unreachable API server, missing permission, bad policy or flags).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.Run(cmd.Context(), s) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; default $KUBECONFIG or ~/.kube/config, or the in-cluster configuration")
	fs.StringVar(&o.Context, "context", "", "kubeconfig context; default the current one")
	fs.StringVarP(&o.Namespace, "namespace", "n", "", "namespace to audit; default the context's namespace")
	fs.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "audit every namespace")
	fs.StringVar(&o.Policy.File, "policy", "", "policy file (podguard.dev/v1alpha1 Policy); default: the built-in default policy")
	o.Policy.AddTrustFlag(fs)
	ownNS := os.Getenv("POD_NAMESPACE")
	if ownNS == "" {
		ownNS = v1alpha1.DefaultNamespace
	}
	fs.StringVar(&o.Policy.Namespace, "podguard-namespace", ownNS, "podguard's own namespace, exempt under the default exemptions (env POD_NAMESPACE)")
	fs.StringVarP(&o.Output, "output", "o", "text", "text, json, yaml or html")
	fs.StringVarP(&o.Selector, "selector", "l", "", "label selector: only subjects whose labels or whose Pods' labels match")
	fs.StringVar(&o.Baseline, "baseline", "", "write the policy with the exemptions today's cluster needs to pass to this file")
	fs.StringVar(&o.BaselineExpires, "baseline-expires", "90d", "when baseline exemptions end: days (90d, rounded up to midnight UTC), a Go duration (2160h), a date (2027-03-31) or an RFC 3339 timestamp; in the future")
	fs.Int64Var(&o.ChunkSize, "chunk-size", 500, "objects per list request")
	fs.StringVar(&o.OptOutLabel, "opt-out-label", "podguard.dev/ignore", "namespaces labelled with it set to true are not audited, as podguard's webhooks never see them (the chart's webhook.optOutLabel; empty: none); needs get or list on namespaces")
	fs.StringArrayVar(&o.ExcludeNamespaces, "exclude-namespace", nil, "namespace podguard's webhooks never see (the chart's webhook.excludeNamespaces and podguard's own): not audited; repeatable")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", time.Minute, "how long one API request may take")
	o.Images.AddRegistryFlags(fs)
	o.Images.AddVerifyFlags(fs)
	o.Images.AddCacheFlags(fs)
	fs.BoolVar(&o.PodPullSecrets, "pod-pull-secrets", false, "with --verify-images, present each pod's own imagePullSecrets (read from its namespace with your credentials: needs get on secrets) to its registries, as serve --pod-pull-secrets does; never printed")
	return cmd
}

// Run audits the cluster and writes the report.
func (o *Options) Run(ctx context.Context, s cli.Streams) error {
	var render func(*report.Report) error
	switch o.Output {
	case "text":
		render = func(r *report.Report) error { return r.Text(s.Out) }
	case "json":
		render = func(r *report.Report) error { return r.JSON(s.Out) }
	case "yaml":
		render = func(r *report.Report) error { return r.YAML(s.Out) }
	case "html":
		render = func(r *report.Report) error { return r.HTML(s.Out) }
	default:
		return cli.BadInput("unknown output format %q: use text, json, yaml or html", o.Output)
	}
	if o.AllNamespaces && o.Namespace != "" {
		return cli.BadInput("--namespace and --all-namespaces exclude each other")
	}
	if o.ChunkSize <= 0 || o.RequestTimeout <= 0 {
		return cli.BadInput("--chunk-size and --request-timeout must be greater than 0")
	}
	var sel labels.Selector
	if o.Selector != "" {
		var err error
		if sel, err = labels.Parse(o.Selector); err != nil {
			return cli.BadInput("--selector: %v", err)
		}
	}
	expiresText, _, err := parseExpiry(o.BaselineExpires, time.Now())
	if err != nil {
		return cli.BadInput("--baseline-expires: %v", err)
	}
	if err := o.Images.CheckCacheFlags(); err != nil {
		return err
	}
	if o.PodPullSecrets && (!o.Images.Verify || o.Images.Offline) {
		return cli.BadInput("--pod-pull-secrets presents credentials to registries: it needs --verify-images, without --offline")
	}
	o.Policy.TUF = o.Images.TUFReader()
	policy, err := o.Policy.Load(ctx)
	if err != nil {
		return err
	}
	cfg, ns, cluster, err := o.restConfig()
	if err != nil {
		return cli.BadInput("%v", err)
	}
	// The cluster's PodGuardExceptions apply as they do at admission.
	xs, err := audit.ListExceptions(ctx, cfg, ns)
	if err != nil {
		if ctx.Err() != nil {
			return &cli.ExitError{Code: cli.ExitInterrupted, Err: cli.ErrInterrupted}
		}
		fmt.Fprintf(s.Err, "podguard: note: %s; auditing without them\n", safetext.Line(err.Error()))
	}
	o.exceptions = xs
	enf, _, err := policies.NewWithExceptions(policy, xs, time.Now())
	if err != nil {
		return cli.BadInput("%v", err)
	}
	in, err := audit.List(ctx, cfg, audit.ListOptions{Namespace: ns, ChunkSize: o.ChunkSize, AfterList: o.AfterList,
		OptOut: report.OptOut{Label: o.OptOutLabel, Exclude: o.ExcludeNamespaces},
		Note:   func(n string) { fmt.Fprintf(s.Err, "podguard: note: %s\n", safetext.Line(n)) }})
	if err != nil {
		if ctx.Err() != nil {
			return &cli.ExitError{Code: cli.ExitInterrupted, Err: cli.ErrInterrupted}
		}
		return cli.BadInput("%v", err)
	}
	in.Cluster, in.Selector = cluster, sel
	if o.PodPullSecrets {
		c, err := client.New(cfg, client.Options{})
		if err != nil {
			return cli.BadInput("%v", err)
		}
		o.Images.PullSecrets = webhook.NewPullSecrets(c, logr.Discard())
	}
	if in.ImageFacts, err = o.Images.Facts(ctx); err != nil {
		return err
	}
	r := report.Build(enf, in)
	if err := o.Images.Save(); err != nil {
		return err
	}
	if err := render(r); err != nil {
		return err
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(s.Err, "podguard: note: %d %s could not be judged; the report lists each with the reason\n", len(r.Skipped), safetext.Plural(len(r.Skipped), "object", "objects"))
	}
	if o.Baseline != "" {
		if err := o.writeBaseline(ctx, s, r, in, expiresText); err != nil {
			return err
		}
	}
	if r.Denied() {
		return cli.Exit(cli.ExitDenied)
	}
	return nil
}

// writeBaseline merges the baseline exemptions into the policy file,
// checks that the result is a valid policy under which nothing in the
// audit is denied any more, and writes it atomically.
func (o *Options) writeBaseline(ctx context.Context, s cli.Streams, r *report.Report, in report.Input, expires string) error {
	var src []byte
	if o.Policy.File != "" {
		var err error
		if src, err = load.ReadFile(o.Policy.File); err != nil {
			return cli.BadInput("%v", err)
		}
	}
	ex := report.Baseline(r, expires)
	merged, err := report.MergeExemptions(src, ex, o.Policy.Namespace)
	if err != nil {
		return cli.BadInput("merging the baseline into %s: %v", policyName(o.Policy.File), err)
	}
	p, err := load.Bytes(merged, o.Baseline, o.Policy.Namespace)
	if err != nil {
		return fmt.Errorf("the baseline policy is not valid (a podguard bug, please report it): %w", err)
	}
	e, _, err := policies.NewWithExceptions(p, o.exceptions, time.Now())
	if err != nil {
		return fmt.Errorf("the baseline policy is not valid (a podguard bug, please report it): %w", err)
	}
	after := report.Build(e, in)
	if err := writeAtomic(o.Baseline, merged); err != nil {
		return cli.BadInput("writing the baseline: %v", err)
	}
	fmt.Fprintf(s.Err, "podguard: wrote %s: %s plus %d baseline %s expiring %s; under it %d of %d subjects would be denied\n",
		safetext.Line(o.Baseline), safetext.Line(policyName(o.Policy.File)), len(ex), safetext.Plural(len(ex), "exemption", "exemptions"), expires,
		after.Summary.Fail, after.Summary.Subjects)
	return ctx.Err()
}

func policyName(file string) string {
	if file == "" {
		return "the default policy"
	}
	return file
}

// writeAtomic replaces path with data through a temporary file in the same
// directory, so a policy being watched is never read half-written.
//
// Only a regular file (or none) is replaced: renaming over a device or a
// symlink would replace it, and run as root, `--baseline /dev/null` turned
// the machine's /dev/null into a regular file.
func writeAtomic(path string, data []byte) error {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s); give the path of a policy file", path, fi.Mode().Type())
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// parseExpiry reads "90d", a Go duration, a date or a timestamp.
func parseExpiry(v string, now time.Time) (string, time.Time, error) {
	return v1alpha1.ExpiryFrom(v, now)
}

// restConfig loads the kubeconfig as kubectl does and returns the
// namespace to audit ("" for all) and a name for the cluster.
func (o *Options) restConfig() (*rest.Config, string, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			if in, ierr := rest.InClusterConfig(); ierr == nil {
				cfg, err = in, nil
			}
		}
		if err != nil {
			return nil, "", "", fmt.Errorf("no usable kubeconfig (give --kubeconfig or set $KUBECONFIG): %v", err)
		}
	}
	cfg.Timeout = o.RequestTimeout
	// Lists of thousands of objects: the client's default 5 requests per
	// second would make pagination the slowest part of an audit.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "podguard-audit"
	ns := ""
	if !o.AllNamespaces {
		ns = o.Namespace
		if ns == "" {
			if ns, _, err = cc.Namespace(); err != nil || ns == "" {
				ns = "default"
			}
		}
	}
	cluster := cfg.Host
	if raw, err := cc.RawConfig(); err == nil {
		name := o.Context
		if name == "" {
			name = raw.CurrentContext
		}
		if name != "" {
			cluster = fmt.Sprintf("context %s (%s)", name, cfg.Host)
		}
	}
	return cfg, ns, cluster, nil
}
