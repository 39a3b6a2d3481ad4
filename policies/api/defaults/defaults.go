// Package defaults fills a policy's unset fields with the default policy
// and prints the default policy as a commented file. Both read the rule
// registry (policies/rules): which rules exist, their default actions and
// parameters; the policy API (policies/api/v1alpha1) holds types only.
package defaults

import (
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
)

// SetDefaults fills every unset field of p with the default policy.
// ownNamespace is podguard's namespace, exempt by default.
func SetDefaults(p *v1alpha1.Policy, ownNamespace string) {
	if p.APIVersion == "" {
		p.APIVersion = v1alpha1.APIVersion
	}
	if p.Kind == "" {
		p.Kind = v1alpha1.PolicyKind
	}
	if p.Mode == "" {
		p.Mode = v1alpha1.ActionEnforce
	}
	if p.Mutation.Templates == nil {
		f := false
		p.Mutation.Templates = &f
	}
	if p.Rules == nil {
		p.Rules = v1alpha1.Rules{}
	}
	for _, d := range rules.Definitions() {
		c := p.Rules[d.ID]
		if c == nil {
			c = &v1alpha1.RuleConfig{}
			p.Rules[d.ID] = c
		}
		if c.Action == "" {
			c.Action = d.Action
		}
		if c.Mutate == nil && d.Fixable() {
			m := d.Mutate
			c.Mutate = &m
		}
		if c.Params == nil && d.Params != nil {
			c.Params = d.Params()
		}
		if c.Params != nil {
			c.Params.Default()
		}
	}
	if p.Exceptions.Enabled == nil {
		t := true
		p.Exceptions.Enabled = &t
	}
	if p.Exceptions.Rules == nil {
		p.Exceptions.Rules = ExceptableRules()
	}
	if p.Exceptions.MaxDuration == "" {
		p.Exceptions.MaxDuration = DefaultExceptionMaxDuration
	}
	if p.Exemptions == nil {
		if ownNamespace == "" {
			ownNamespace = v1alpha1.DefaultNamespace
		}
		p.Exemptions = DefaultExemptions(ownNamespace)
	}
}

// DefaultExemptions are the exemptions of a policy that sets none.
func DefaultExemptions(ownNamespace string) []v1alpha1.Exemption {
	return []v1alpha1.Exemption{
		{
			Reason:     "kube-system runs the cluster's own components, which need host access",
			Namespaces: []string{"kube-system"},
		},
		{
			Reason:     "podguard's own namespace: a broken policy must never block podguard itself",
			Namespaces: []string{ownNamespace},
		},
	}
}

// DefaultExceptionMaxDuration is how far ahead of its creation a
// PodGuardException may expire unless the policy says otherwise.
const DefaultExceptionMaxDuration = "90d"

// ExceptableRules are the rules PodGuardExceptions may lift by default:
// those that implement no Pod Security Standards baseline control, so an
// application team's exception can never reach the baseline (privileged,
// host namespaces, hostPath...), and are not the platform team's alone
// (image signatures).
func ExceptableRules() []string {
	var out []string
	for _, d := range rules.Definitions() {
		baseline := d.PlatformOnly
		for _, c := range d.PSS {
			if c.Level == rules.Baseline {
				baseline = true
			}
		}
		if !baseline {
			out = append(out, d.ID)
		}
	}
	return out
}
