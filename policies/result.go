package policies

// Finding is one reported problem, as the CLI's JSON output and the
// webhook's responses carry it.
type Finding struct {
	// Rule is the rule ID.
	Rule string `json:"rule"`
	// Field is the path of the offending field from the object root.
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Fix says what to set or remove.
	Fix string `json:"fix"`
	// Injected marks a warning about a workload's template that Pod
	// mutation will fix (Admit).
	Injected bool `json:"-"`
	// Line and Column locate Field in the input file (1-based), where the
	// caller read one (the CLI); the engine leaves them 0.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// Exempted records an exemption that applied to an object.
type Exempted struct {
	// Rule is the rule ID, or "*" for an exemption covering every rule.
	Rule string `json:"rule"`
	// Reason is the exemption's reason.
	Reason string `json:"reason"`
	// Expires is the exemption's expiry as written in the policy, or "".
	Expires string `json:"expires"`
}

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
