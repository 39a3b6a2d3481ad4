package v1alpha1

import (
	"fmt"
	"sort"
	"sync"
)

// RuleType is what the policy API knows of a rule: its ID, defaults and
// parameters. The rules register their own (policies/rules, one file per
// rule), so the policy API, its defaults, its validation and the printed
// default policy all read one definition and keep no copy.
type RuleType struct {
	// ID is the rule's key under rules: in a policy.
	ID string
	// Order places the rule in the default policy file and in tables.
	Order int
	// DefaultAction is the rule's action when the policy does not set one.
	DefaultAction Action
	// Fixable says whether the rule has a fix (a fact of its code), and so
	// accepts mutate.
	Fixable bool
	// DefaultMutate is mutate's default for a fixable rule.
	DefaultMutate bool
	// NewParams returns the rule's parameters, unset; nil when it has none.
	NewParams func() RuleParams
	// Doc is the comment written above the rule in the default policy file.
	Doc string
}

var (
	ruleTypesMu sync.RWMutex
	ruleTypes   = map[string]RuleType{}
)

// RegisterRuleType adds a rule's type. It panics on a duplicate ID: two
// rule files claiming one ID is a programming error.
func RegisterRuleType(t RuleType) {
	ruleTypesMu.Lock()
	defer ruleTypesMu.Unlock()
	if _, dup := ruleTypes[t.ID]; dup {
		panic(fmt.Sprintf("rule type %s registered twice", t.ID))
	}
	ruleTypes[t.ID] = t
}

// RuleTypeOf returns the registered type of a rule ID.
func RuleTypeOf(id string) (RuleType, bool) {
	ruleTypesMu.RLock()
	defer ruleTypesMu.RUnlock()
	t, ok := ruleTypes[id]
	return t, ok
}

// RuleTypes returns every registered rule type, by Order then ID.
func RuleTypes() []RuleType {
	ruleTypesMu.RLock()
	out := make([]RuleType, 0, len(ruleTypes))
	for _, t := range ruleTypes {
		out = append(out, t)
	}
	ruleTypesMu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Order != out[j].Order {
			return out[i].Order < out[j].Order
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// RuleIDs returns every registered rule ID, sorted.
func RuleIDs() []string {
	ts := RuleTypes()
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	sort.Strings(out)
	return out
}
