package v1alpha1

// DefaultNamespace is podguard's own namespace when neither --namespace nor
// POD_NAMESPACE says otherwise.
const DefaultNamespace = "podguard"

// DefaultUID and DefaultGID are the seed's appuser: 1000:1000.
const (
	DefaultUID int64 = 1000
	DefaultGID int64 = 1000
)

// SetDefaults fills every unset field of p with the default policy.
// ownNamespace is podguard's namespace, exempt by default.
func SetDefaults(p *Policy, ownNamespace string) {
	if p.APIVersion == "" {
		p.APIVersion = APIVersion
	}
	if p.Kind == "" {
		p.Kind = PolicyKind
	}
	if p.Mode == "" {
		p.Mode = ActionEnforce
	}
	if p.Mutation.Templates == nil {
		f := false
		p.Mutation.Templates = &f
	}
	if p.Rules == nil {
		p.Rules = Rules{}
	}
	for _, t := range RuleTypes() {
		c := p.Rules[t.ID]
		if c == nil {
			c = &RuleConfig{}
			p.Rules[t.ID] = c
		}
		if c.Action == "" {
			c.Action = t.DefaultAction
		}
		if c.Mutate == nil && t.Fixable {
			m := t.DefaultMutate
			c.Mutate = &m
		}
		if c.Params == nil && t.NewParams != nil {
			c.Params = t.NewParams()
		}
		if c.Params != nil {
			c.Params.Default()
		}
	}
	if p.Exemptions == nil {
		if ownNamespace == "" {
			ownNamespace = DefaultNamespace
		}
		p.Exemptions = DefaultExemptions(ownNamespace)
	}
}

// DefaultExemptions are the exemptions of a policy that sets none.
func DefaultExemptions(ownNamespace string) []Exemption {
	return []Exemption{
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

// Bool returns *b, false for nil.
func Bool(b *bool) bool { return b != nil && *b }
