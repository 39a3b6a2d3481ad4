// Package rules holds podguard's rules, one per file (rule_<ID>.go), each
// with everything that is true of it: its check and its fix defined
// together, its defaults, its parameters with their defaults and
// validation, the Pod Security Standards and CIS controls it implements,
// and its native (CEL) form. The registry collects them; the policy API,
// the default policy file, policy check, export and audit read the
// registry and keep no copy. Rules are pure functions of a pod spec target
// and the policy; they never do I/O.
package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/finding"
	"podguard.dev/podguard/policies/podspec"
)

// Finding is what a rule's Check returns: the one Finding type of
// podguard (policies/finding). A rule sets Type, Field, Message, Fix and,
// for things worth knowing that the policy cannot demand, Advisory; the
// engine sets Rule.
type Finding = finding.Finding

// Rule is one check with its fix, built for one policy.
type Rule struct {
	// ID is the stable camelCase name used in policies and reports.
	ID string
	// Summary is one line for people: what the rule requires.
	Summary string
	// Check returns every finding on the target's containers and pod spec.
	Check func(t *podspec.Target) []Finding
	// Fix returns the changes that fill the missing fields Check reports,
	// without touching any set value. Nil when the rule cannot fix anything.
	Fix func(t *podspec.Target) []change.Change
}

// PSSLevel is a Pod Security Standards level.
type PSSLevel string

// The Pod Security Standards levels.
const (
	Baseline   PSSLevel = "baseline"
	Restricted PSSLevel = "restricted"
)

// PSSCheck is a check of Kubernetes' Pod Security Admission
// (k8s.io/pod-security-admission/policy), by its check ID and level.
type PSSCheck struct {
	ID    string
	Level PSSLevel
}

// CISBenchmark names the CIS Kubernetes Benchmark version the CIS IDs cite.
const CISBenchmark = "CIS Kubernetes Benchmark v1.10"

// Definition is everything true of one rule, written in its own file.
type Definition struct {
	// ID is the rule's stable name.
	ID string
	// Order places the rule in the default policy file and in tables.
	Order int
	// Action is the rule's default action.
	Action v1alpha1.Action
	// Mutate is mutate's default for a fixable rule. Whether a rule is
	// fixable is not declared: it is whether New builds a Fix.
	Mutate bool
	// Doc is the comment above the rule in the default policy file.
	Doc string
	// PlatformOnly keeps the rule out of the rules PodGuardExceptions may
	// lift by default (exceptions.rules): image trust is the platform
	// team's, as the baseline rules are.
	PlatformOnly bool
	// Example, YAML of the rule's parameters, is printed commented out
	// under the rule's entry in the default policy file: for a rule that
	// does nothing until a policy fills a parameter in.
	Example string
	// PSS lists the Pod Security Standards checks the rule implements;
	// empty for a rule beyond the standards.
	PSS []PSSCheck
	// CIS lists the CIS Kubernetes Benchmark recommendations it implements.
	CIS []string
	// Checklist is the item of the hardening checklist the rule proves.
	Checklist ChecklistItem
	// Params returns the rule's parameters, unset; nil when it has none.
	Params func() v1alpha1.RuleParams
	// New builds the rule for a defaulted, validated policy.
	New func(p *v1alpha1.Policy) Rule
	// Native renders the rule as CEL for a defaulted policy (see Native).
	Native func(p *v1alpha1.Policy, mode NativeMode) Native
	// Reads are the pod spec fields the rule reads (see podspec.Fields):
	// the audit's slim copy keeps every rule's, and a test judges every
	// fixture on a copy holding only these, which must decide alike.
	Reads podspec.Fields
	// Subresources are the Pod subresources whose requests the rule judges
	// besides the Pod itself (resources judges pods/resize): the webhook
	// judges such a request for these rules only.
	Subresources []string

	fixable bool
}

// Fixable reports whether the rule has a fix.
func (d *Definition) Fixable() bool { return d.fixable }

// Controls renders the rule's controls for people, e.g.
// "PSS restricted runAsNonRoot; CIS 5.2.7".
func (d *Definition) Controls() string {
	var parts []string
	for _, c := range d.PSS {
		parts = append(parts, fmt.Sprintf("PSS %s %s", c.Level, c.ID))
	}
	if len(d.PSS) == 0 {
		parts = append(parts, "beyond PSS")
	}
	if len(d.CIS) > 0 {
		parts = append(parts, "CIS "+strings.Join(d.CIS, ", "))
	}
	return strings.Join(parts, "; ")
}

// registry holds every rule's definition: the one registry the policy's
// defaulting, validation and printed form, the engine, the export, the
// audit and the docs read. A rule registers itself from its own file.
var registry = map[string]*Definition{}

// Register adds a rule: each rule file calls it from its init. Whether the
// rule is fixable is found by building it with its default parameters. It
// panics on a second rule of the same ID, or a definition that does not
// build the rule it names: programming errors.
func Register(d Definition) {
	if _, dup := registry[d.ID]; dup {
		panic(fmt.Sprintf("rule %s registered twice", d.ID))
	}
	p := &v1alpha1.Policy{Rules: v1alpha1.Rules{d.ID: &v1alpha1.RuleConfig{}}}
	if d.Params != nil {
		params := d.Params()
		params.Default()
		p.Rules[d.ID].Params = params
	}
	r := d.New(p)
	if r.ID != d.ID {
		panic(fmt.Sprintf("rule registered as %s builds %s", d.ID, r.ID))
	}
	d.fixable = r.Fix != nil
	d.Mutate = d.Mutate && d.fixable
	registry[d.ID] = &d
}

// IDs returns the ID of every registered rule, sorted.
func IDs() []string {
	ids := make([]string, 0, len(registry))
	for id := range registry {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Definitions returns every rule's definition, in the order of the default
// policy file.
func Definitions() []*Definition {
	out := make([]*Definition, 0, len(registry))
	for _, d := range registry {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Order != out[j].Order {
			return out[i].Order < out[j].Order
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Lookup returns one rule's definition.
func Lookup(id string) (*Definition, bool) {
	d, ok := registry[id]
	return d, ok
}

// Build constructs every rule for a defaulted policy, sorted by ID.
func Build(p *v1alpha1.Policy) []Rule {
	out := make([]Rule, 0, len(registry))
	for _, id := range IDs() {
		out = append(out, registry[id].New(p))
	}
	return out
}

// Get builds one rule by ID.
func Get(p *v1alpha1.Policy, id string) (Rule, bool) {
	d, ok := registry[id]
	if !ok {
		return Rule{}, false
	}
	return d.New(p), true
}

// params returns a rule's parameters from a defaulted policy, typed.
func params[T v1alpha1.RuleParams](p *v1alpha1.Policy, id string) T {
	return p.Rules[id].Params.(T)
}

// EffectiveAction is what a finding of rule id does under a defaulted
// policy: its action, or the policy's mode (warn, audit) in place of
// enforce. "" for a rule the policy does not have. The engine, the
// export, policy check and the PSS checks all ask here.
func EffectiveAction(p *v1alpha1.Policy, id string) v1alpha1.Action {
	c := p.Rules[id]
	if c == nil {
		return ""
	}
	if c.Action == v1alpha1.ActionEnforce && p.Mode != "" && p.Mode != v1alpha1.ActionEnforce {
		return p.Mode
	}
	return c.Action
}

// FixInForce reports whether rule id's fix runs under a defaulted policy:
// the rule has a fix, its mutate is true, and its action is not off.
func FixInForce(p *v1alpha1.Policy, id string) bool {
	c := p.Rules[id]
	d, ok := registry[id]
	return ok && d.fixable && c != nil && c.Action != v1alpha1.ActionOff && v1alpha1.Bool(c.Mutate)
}

// ForSubresource returns the rules that judge requests for a Pod
// subresource (Definition.Subresources), sorted; none for a subresource
// no rule judges.
func ForSubresource(sub string) []string {
	var out []string
	for _, id := range IDs() {
		if slices.Contains(registry[id].Subresources, sub) {
			out = append(out, id)
		}
	}
	return out
}

// MarkdownTable is the README's table of rules: one row per rule with its
// default action (and mutate), its controls and what it requires.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| rule | default | controls | requires; what mutation injects |\n|---|---|---|---|\n")
	for _, d := range Definitions() {
		def := string(d.Action)
		if d.Fixable() {
			def += fmt.Sprintf(", mutate %v", d.Mutate)
		}
		doc := strings.Join(strings.Fields(d.Doc), " ")
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.ID, def, d.Controls(), strings.ReplaceAll(doc, "|", `\|`))
	}
	return b.String()
}
