// Package exportcmd implements `podguard export`: the policy as
// ValidatingAdmissionPolicies and a MutatingAdmissionPolicy, evaluated by
// kube-apiserver itself.
package exportcmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/native"
	"podguard.dev/podguard/policies/safetext"
)

// Options are the flags of `podguard export`.
type Options struct {
	Policy            cli.PolicyOptions
	Output            string
	StaticDir         string
	NamePrefix        string
	ExcludeNamespaces []string
	OptOutLabel       string
}

// NewCommand returns the export command.
func NewCommand(s cli.Streams) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "export [--policy FILE] [-o yaml|json] [--static-manifests DIR] [--name-prefix podguard]",
		Short: "Write the policy as ValidatingAdmissionPolicies and a MutatingAdmissionPolicy",
		Long: `Write the policy as Kubernetes' own admission objects (admissionregistration.k8s.io/v1,
Kubernetes 1.36 or newer): one ValidatingAdmissionPolicy per kind of object and
action (enforce: Deny, warn: Warn, audit: Audit) with its binding, and one
MutatingAdmissionPolicy that fills in Pods as the webhook does. kube-apiserver
evaluates them in-process: no network round trip, and they keep enforcing while
podguard is down. Exemptions become CEL; one with an expiry is exported only
while valid (CEL has no clock: export again before it expires). What only the
webhook does is listed in the output's header and on stderr.

--static-manifests DIR writes the manifest-based admission layout (KEP-5793):
DIR/validating-policies/, DIR/mutating-policies/ (every name ending in
.static.k8s.io) and DIR/admission-config.yaml for kube-apiserver's
--admission-control-config-file. DIR must be the absolute path it will have on
the control-plane hosts; nothing is written if anything fails.

Exit status: 0, or 2 for an invalid policy (the error policy check gives) or a
failure to write.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.Run(cmd.Context(), s) },
	}
	fs := cmd.Flags()
	o.Policy.AddFlags(fs)
	o.Policy.AddExceptionFlags(fs)
	fs.StringVarP(&o.Output, "output", "o", "yaml", "yaml or json (a v1 List)")
	fs.StringVar(&o.StaticDir, "static-manifests", "", "write the static manifest layout into this directory (absolute path) instead of printing")
	fs.StringVar(&o.NamePrefix, "name-prefix", "podguard", "prefix of every object's name")
	fs.StringArrayVar(&o.ExcludeNamespaces, "exclude-namespace", nil, "namespace the bindings leave out, as the webhook configurations do; repeatable (default kube-system and --namespace)")
	fs.StringVar(&o.OptOutLabel, "opt-out-label", "podguard.dev/ignore", "namespaces labelled with it set to true are left out, as by the webhook configurations (empty: none)")
	return cmd
}

// Run exports the policy.
func (o *Options) Run(ctx context.Context, s cli.Streams) error {
	if o.Output != "yaml" && o.Output != "json" {
		return cli.BadInput("unknown output format %q: use yaml or json", o.Output)
	}
	if o.StaticDir != "" && !filepath.IsAbs(o.StaticDir) {
		return cli.BadInput("--static-manifests needs an absolute path, the one kube-apiserver will read (it refuses a relative one): %s", o.StaticDir)
	}
	p, err := o.Policy.Load(ctx)
	if err != nil {
		return err
	}
	xs, err := o.Policy.Exceptions(ctx)
	if err != nil {
		return err
	}
	if len(xs) > 0 {
		_, states, _ := policies.NewWithExceptions(p, xs, time.Now())
		for _, st := range states {
			if st.State == policies.ExceptionIgnored {
				fmt.Fprintf(s.Err, "podguard: note: PodGuardException %s/%s is ignored: %s\n", safetext.Line(st.Namespace), safetext.Line(st.Name), safetext.Line(st.Problem))
			}
		}
		p = policies.WithExceptions(p, xs, time.Now())
	}
	exclude := o.ExcludeNamespaces
	if exclude == nil {
		exclude = []string{"kube-system", o.Policy.Namespace}
	}
	e, err := native.Build(p, native.Options{NamePrefix: o.NamePrefix, Static: o.StaticDir != "", ExcludeNamespaces: exclude, OptOutLabel: o.OptOutLabel})
	if err != nil {
		return &cli.ExitError{Code: cli.ExitBadInput, Err: err}
	}
	for _, w := range e.WebhookOnly {
		if w.Rule != "" {
			fmt.Fprintf(s.Err, "podguard: note: webhook only: rule %s: %s\n", w.Rule, safetext.Line(w.Reason))
		} else {
			fmt.Fprintf(s.Err, "podguard: note: webhook only: %s\n", safetext.Line(w.Reason))
		}
	}
	for _, n := range e.Notes {
		fmt.Fprintf(s.Err, "podguard: note: %s\n", safetext.Line(n))
	}
	if o.StaticDir != "" {
		files, err := e.StaticFiles(o.StaticDir)
		if err != nil {
			return &cli.ExitError{Code: cli.ExitBadInput, Err: err}
		}
		if err := writeDir(o.StaticDir, files); err != nil {
			return &cli.ExitError{Code: cli.ExitBadInput, Err: err}
		}
		fmt.Fprintf(s.Err, "podguard: wrote %d files into %s; pass --admission-control-config-file=%s to kube-apiserver\n",
			len(files), safetext.Line(o.StaticDir), safetext.Line(filepath.Join(o.StaticDir, native.AdmissionConfigFile)))
		return nil
	}
	var out []byte
	if o.Output == "json" {
		out, err = e.JSON()
	} else {
		out, err = e.YAML()
	}
	if err != nil {
		return err
	}
	_, err = s.Out.Write(out)
	return err
}

// writeDir writes the files into a new sibling directory and swaps it in
// for dir, so a failure leaves dir as it was: never half written. A dir
// that exists must be empty or an earlier export (it holds
// admission-config.yaml).
func writeDir(dir string, files map[string][]byte) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, native.AdmissionConfigFile)); err != nil {
			return fmt.Errorf("%s is not empty and not an earlier podguard export; refusing to replace it", dir)
		}
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(tmp, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}
