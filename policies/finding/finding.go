// Package finding holds what every part of podguard reports: a Finding
// (one problem at one field, with its fix) and an Exempted (an exemption
// that applied). Rules return findings, the engine files them under
// violations, warnings and audits, the CLI adds their line and column, the
// webhook answers with them, and the audit's report adds their controls.
package finding

import "k8s.io/apimachinery/pkg/util/validation/field"

// Finding is one problem at one field, as the CLI's JSON output and the
// webhook's responses carry it.
type Finding struct {
	// Rule is the rule ID.
	Rule string `json:"rule"`
	// Field is the path of the offending field from the object root.
	Field string `json:"field"`
	// Message says what is wrong, without any secret or env value.
	Message string `json:"message"`
	// Fix says what to set or remove.
	Fix string `json:"fix"`
	// Line and Column locate Field in the input file (1-based; the column
	// in characters), where the caller read one (the CLI); 0 otherwise.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Type is the kind of problem, as field.Error has it: Required
	// (missing), Invalid (bad value), Forbidden (must not be set) or
	// NotSupported.
	Type field.ErrorType `json:"-"`
	// Advisory findings are warnings whatever the rule's action: things
	// worth knowing that the policy cannot demand (Windows admin user).
	Advisory bool `json:"-"`
	// Injected marks a warning about a workload's template that Pod
	// mutation will fix (the engine's Admit).
	Injected bool `json:"-"`
}

// Exempted records an exemption that applied to an object.
type Exempted struct {
	// Rule is the rule ID, or "*" for an exemption covering every rule.
	Rule string `json:"rule"`
	// Reason is the exemption's reason.
	Reason string `json:"reason"`
	// Expires is the exemption's expiry as written in the policy, or "".
	Expires string `json:"expires"`
	// Exception is "namespace/name" of the PodGuardException that
	// applied, or absent for an exemption of the policy.
	Exception string `json:"exception,omitempty"`
}
