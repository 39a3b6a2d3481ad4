package v1alpha1

import (
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// DefaultNamespace is podguard's own namespace when neither --namespace nor
// POD_NAMESPACE says otherwise.
const DefaultNamespace = "podguard"

// DefaultUID and DefaultGID are the seed's appuser: 1000:1000.
const (
	DefaultUID int64 = 1000
	DefaultGID int64 = 1000
)

// RuleDefault is what a rule does when the policy does not say.
type RuleDefault struct {
	Action Action
	// Fixable says whether the rule has a fix, and so accepts mutate.
	Fixable bool
	// Mutate is the default of mutate for fixable rules.
	Mutate bool
}

// RuleDefaults is the default policy rule by rule, keyed by rule ID.
var RuleDefaults = map[string]RuleDefault{
	"runAsUser":                {ActionEnforce, true, true},
	"runAsGroup":               {ActionEnforce, true, true},
	"runAsNonRoot":             {ActionEnforce, true, true},
	"capabilities":             {ActionEnforce, true, true},
	"allowPrivilegeEscalation": {ActionEnforce, true, true},
	"privileged":               {ActionEnforce, false, false},
	"resources":                {ActionEnforce, true, true},
	"seccompProfile":           {ActionEnforce, true, true},
	"hostNamespaces":           {ActionEnforce, false, false},
	"hostPorts":                {ActionEnforce, false, false},
	"volumeTypes":              {ActionEnforce, false, false},
	"appArmorProfile":          {ActionEnforce, false, false},
	"seLinuxOptions":           {ActionEnforce, false, false},
	"procMount":                {ActionEnforce, false, false},
	"sysctls":                  {ActionEnforce, false, false},
	"windowsHostProcess":       {ActionEnforce, false, false},
	"hostProbesAndLifecycle":   {ActionEnforce, false, false},
	"readOnlyRootFilesystem":   {ActionWarn, true, false},
	"probes":                   {ActionWarn, false, false},
	"secretsInEnv":             {ActionWarn, false, false},
	"imageTag":                 {ActionWarn, false, false},
}

// DefaultSecretNamePatterns match env var names that look like they hold a secret.
var DefaultSecretNamePatterns = []string{
	`(?i)passw(or)?d`,
	`(?i)secret`,
	`(?i)token`,
	`(?i)api_?key`,
	`(?i)private_?key`,
	`(?i)access_?key`,
	`(?i)credential`,
}

// Settings returns a pointer to the settings of every rule, keyed by rule
// ID (the JSON name of its field in Rules), so code can range over rules
// without a hand-kept list.
func (r *Rules) Settings() map[string]*RuleSettings {
	out := make(map[string]*RuleSettings, len(RuleDefaults))
	v := reflect.ValueOf(r).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		id, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		f := v.Field(i)
		if s, ok := f.Addr().Interface().(*RuleSettings); ok {
			out[id] = s
			continue
		}
		out[id] = f.FieldByName("RuleSettings").Addr().Interface().(*RuleSettings)
	}
	return out
}

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
	for id, s := range p.Rules.Settings() {
		d, ok := RuleDefaults[id]
		if !ok {
			continue
		}
		if s.Action == "" {
			s.Action = d.Action
		}
		if s.Mutate == nil && d.Fixable {
			m := d.Mutate
			s.Mutate = &m
		}
	}
	r := &p.Rules
	if len(r.RunAsUser.AllowedUIDs) == 0 {
		r.RunAsUser.AllowedUIDs = []int64{DefaultUID}
	}
	if len(r.RunAsGroup.AllowedGIDs) == 0 {
		r.RunAsGroup.AllowedGIDs = []int64{DefaultGID}
	}
	if r.Capabilities.AllowedAdd == nil {
		r.Capabilities.AllowedAdd = []corev1.Capability{"NET_BIND_SERVICE"}
	}
	if r.Resources.DefaultLimits == nil {
		r.Resources.DefaultLimits = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("500m"),
			corev1.ResourceMemory: resource.MustParse("512Mi"),
		}
	}
	if r.Resources.DefaultRequests == nil {
		r.Resources.DefaultRequests = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		}
	}
	if len(r.SecretsInEnv.NamePatterns) == 0 {
		r.SecretsInEnv.NamePatterns = append([]string(nil), DefaultSecretNamePatterns...)
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
