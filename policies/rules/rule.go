// Package rules holds podguard's rules, one per file (rule_<ID>.go), each
// with its check and its fix defined together, and the registry that
// collects them. Rules are pure functions of a pod spec target and the
// policy; they never do I/O.
package rules

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

// Finding is one problem at one field: a field.Error plus the fix to apply.
type Finding struct {
	// Type is the field.Error type: Required (missing), Invalid (bad value),
	// Forbidden (must not be set) or NotSupported.
	Type field.ErrorType
	// Path is the offending field from the object root.
	Path podspec.Path
	// Message says what is wrong, without any secret or env value.
	Message string
	// Fix says what to set or remove.
	Fix string
	// Advisory findings are warnings whatever the rule's action: things
	// worth knowing that the policy cannot demand (Windows admin user).
	Advisory bool
}

// Rule is one check with its fix.
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

// Constructor builds a rule from the (defaulted) policy's parameters.
type Constructor func(p *v1alpha1.Policy) Rule

var registry = map[string]Constructor{}

func register(id string, c Constructor) {
	if _, dup := registry[id]; dup {
		panic(fmt.Sprintf("rule %s registered twice", id))
	}
	registry[id] = c
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

// Build constructs every rule for a defaulted policy, sorted by ID.
func Build(p *v1alpha1.Policy) []Rule {
	out := make([]Rule, 0, len(registry))
	for _, id := range IDs() {
		r := registry[id](p)
		if r.ID != id {
			panic(fmt.Sprintf("rule registered as %s builds %s", id, r.ID))
		}
		out = append(out, r)
	}
	return out
}

// Get builds one rule by ID.
func Get(p *v1alpha1.Policy, id string) (Rule, bool) {
	c, ok := registry[id]
	if !ok {
		return Rule{}, false
	}
	return c(p), true
}
