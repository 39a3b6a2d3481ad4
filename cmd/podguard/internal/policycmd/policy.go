// Package policycmd implements `podguard policy`: print the default policy
// and check policy files.
package policycmd

import (
	"fmt"
	"podguard.dev/podguard/policies/api/defaults"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/policies/safetext"
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
			if err := o.CheckNamespace(); err != nil {
				return err
			}
			_, err := s.Out.Write(defaults.PolicyYAML(o.Namespace))
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
	var strict bool
	cmd := &cobra.Command{
		Use:   "check -f FILE [--strict]",
		Short: "Check a policy file and print the rules it enforces",
		Long: `Decode (strictly: unknown and duplicate fields are errors), default and
validate a policy file, then print what it enforces, rule by rule, with the
Pod Security Standards and CIS controls of each, and every exemption with its
scope. Settings that give up a Pod Security Standards control (a PSS rule set
to warn, audit or off, mode warn or audit, capabilities beyond restricted's,
an exemption that lifts a PSS rule from every image, or from every pod in
every namespace) are warned about on stderr, and so is every exemption that
reaches more than one namespace.

Exit status: 0 valid, 1 valid but giving up a PSS control with --strict, 2
invalid or unreadable (every problem is listed with its line).`,
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
			printImageTrust(s, p)
			printTrustSources(s, p, o.TrustDir != "")
			printExemptions(s, p, time.Now())
			weak := rules.PSSWeakenings(p)
			broad, wide := rules.ExemptionBreadth(p)
			weak = append(weak, broad...)
			for _, w := range weak {
				fmt.Fprintf(s.Err, "podguard: warning: %s\n", safetext.Line(w.String()))
			}
			for _, w := range wide {
				fmt.Fprintf(s.Err, "podguard: warning: %s: broader than one namespace\n", safetext.Line(w))
			}
			if strict && len(weak) > 0 {
				return &cli.ExitError{Code: cli.ExitDenied, Err: fmt.Errorf("--strict: the policy gives up %d Pod Security Standards setting(s)", len(weak))}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "policy file")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 when the policy gives up a Pod Security Standards control")
	o.AddFlags(cmd.Flags())
	o.AddTrustFlag(cmd.Flags())
	_ = cmd.Flags().MarkHidden("policy")
	return cmd
}

func printRules(s cli.Streams, p *v1alpha1.Policy) {
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tACTION\tMUTATE\tCONTROLS\tREQUIRES")
	for _, d := range rules.Definitions() {
		r, _ := rules.Get(p, d.ID)
		st := p.Rules[d.ID]
		action := string(rules.EffectiveAction(p, d.ID))
		if action != string(st.Action) {
			action += " (mode)"
		}
		mutate := "-"
		if st.Mutate != nil {
			mutate = fmt.Sprint(*st.Mutate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, action, mutate, d.Controls(), r.Summary)
	}
	_ = tw.Flush()
}

// printImageTrust lists what imageSignatures verifies: each trust entry's
// images and authorities. Globs and names are the policy author's text:
// one line each, control characters made visible.
func printImageTrust(s cli.Streams, p *v1alpha1.Policy) {
	ps, on := rules.ImageSignatures(p)
	if !on {
		return
	}
	stale, ttl := ps.Durations()
	fmt.Fprintf(s.Out, "\nimage trust (imageSignatures, verified by the webhook; verdicts reused %s, admitted %s after the last verification while a registry is unreachable): %d\n", ttl, stale, len(ps.Trust))
	for i, tr := range ps.Trust {
		var who []string
		for _, a := range tr.Authorities {
			kind := "key"
			if a.Key != nil && a.Key.PEMFrom != nil {
				kind += " from " + a.Key.PEMFrom.String()
			}
			if a.Notation != nil {
				kind = "notation " + strings.Join(a.Notation.TrustedIdentities, " | ")
				if a.Notation.CertificatesFrom != nil {
					kind += ", CA from " + a.Notation.CertificatesFrom.String()
				}
			}
			if a.Keyless != nil {
				kind = "keyless " + a.Keyless.Issuer + a.Keyless.IssuerRegExp + " " + a.Keyless.Subject + a.Keyless.SubjectRegExp
				if a.Keyless.TrustedRootFrom != nil {
					kind += ", trusted root from " + a.Keyless.TrustedRootFrom.String()
				}
				if t := a.Keyless.TUF; t != nil {
					kind += ", trusted root from TUF repository " + t.URL
				}
				if a.Keyless.IgnoreSCT {
					kind += ", no SCT required"
				}
			}
			who = append(who, fmt.Sprintf("%q (%s)", a.Name, kind))
		}
		fmt.Fprintf(s.Out, "  %d. images %s: a signature by %s of %s\n", i+1, safetext.Line(strings.Join(tr.Images, ", ")), tr.Require, safetext.Line(strings.Join(who, ", ")))
	}
}

// printTrustSources names the ConfigMaps and Secrets the image rules read
// in podguard's namespace: what must exist (and be mounted) for their
// authorities to vouch for anything.
func printTrustSources(s cli.Streams, p *v1alpha1.Policy, checked bool) {
	srcs := rules.TrustSources(p)
	if len(srcs) == 0 {
		return
	}
	how := "not checked here: give --trust-dir to read them"
	if checked {
		how = "read from --trust-dir and usable"
	}
	fmt.Fprintf(s.Out, "\ntrust material in podguard's namespace (%s): %s\n", how, safetext.Line(strings.Join(srcs, ", ")))
}

// printExemptions lists each exemption with its full scope, and says
// which have expired.
func printExemptions(s cli.Streams, p *v1alpha1.Policy, now time.Time) {
	fmt.Fprintf(s.Out, "\nexemptions: %d\n", len(p.Exemptions))
	// Reasons and globs are the policy author's text: one line each,
	// control characters made visible.
	for i, e := range safetext.Sanitized(p.Exemptions) {
		scope := []string{}
		add := func(name string, vals []string) {
			if len(vals) > 0 {
				scope = append(scope, name+" "+strings.Join(vals, ", "))
			}
		}
		rulesText := []string{"all rules"}
		if len(e.Rules) > 0 {
			rulesText = e.Rules
		}
		add("rules", rulesText)
		add("namespaces", e.Namespaces)
		add("users", e.Users)
		add("groups", e.Groups)
		add("images", e.Images)
		add("containers", e.ContainerNames)
		var workloads []string
		for _, w := range e.Workloads {
			workloads = append(workloads, w.Kind+"/"+w.Name)
		}
		add("workloads", workloads)
		if e.Selector != nil {
			if sel, err := metav1.LabelSelectorAsSelector(e.Selector); err == nil {
				add("pods labelled", []string{sel.String()})
			}
		}
		expiry := ""
		if e.Expires != "" {
			expiry = "; expires " + e.Expires
			if t, err := v1alpha1.ParseExpiry(e.Expires); err == nil && !now.Before(t) {
				expiry += " (EXPIRED: no longer applies)"
			}
		}
		fmt.Fprintf(s.Out, "- [%d] %s\n      %s%s\n", i, e.Reason, strings.Join(scope, "; "), expiry)
	}
}
