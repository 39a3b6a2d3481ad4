package policies

import "podguard.dev/podguard/policies/finding"

// Finding and Exempted are the one definition of what every part of
// podguard reports (policies/finding); the names stay here for the
// engine's callers.
type (
	// Finding is one problem at one field, with its fix.
	Finding = finding.Finding
	// Exempted is an exemption that applied.
	Exempted = finding.Exempted
)

// Result is the verdict on one object.
type Result struct {
	// Allowed is false when there is at least one violation.
	Allowed bool `json:"allowed"`
	// Violations are findings of enforce-action rules: they deny.
	Violations []Finding `json:"violations"`
	// Warnings are findings of warn-action rules, advisory findings, expired
	// exemptions and, for objects judged as admitted, what mutation injects.
	Warnings []Finding `json:"warnings"`
	// Audits are findings of audit-action rules.
	Audits []Finding `json:"audits"`
	// Exempted lists the exemptions that applied.
	Exempted []Exempted `json:"exempted"`
	// Omitted counts the findings left out of the lists above by
	// Attributes.MaxFindings.
	Omitted Omitted `json:"-"`
}

// Omitted counts findings beyond Attributes.MaxFindings, by list and rule ID.
type Omitted struct {
	Violations, Warnings, Audits map[string]int
}

// Total is the number of findings omitted from every list.
func (o *Omitted) Total() int {
	n := 0
	for _, m := range []map[string]int{o.Violations, o.Warnings, o.Audits} {
		for _, c := range m {
			n += c
		}
	}
	return n
}

func count(m *map[string]int, rule string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[rule]++
}

// WithLists returns a copy of r whose empty lists are empty slices rather
// than nil, so JSON shows [] instead of null: scripts index into them
// without checking.
func (r *Result) WithLists() *Result {
	out := *r
	if out.Violations == nil {
		out.Violations = []Finding{}
	}
	if out.Warnings == nil {
		out.Warnings = []Finding{}
	}
	if out.Audits == nil {
		out.Audits = []Finding{}
	}
	if out.Exempted == nil {
		out.Exempted = []Exempted{}
	}
	return &out
}
