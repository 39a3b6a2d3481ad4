package report

import (
	"slices"

	"podguard.dev/podguard/policies"
)

// Exception is a PodGuardException as the audit found it: active,
// expired or ignored (with why), and the subjects it lifted rules from.
type Exception struct {
	policies.ExceptionState
	// Subjects are "Kind/name" of the subjects it applied to.
	Subjects []string `json:"subjects"`
}

// exceptionsOf lists the Enforcer's exceptions with the subjects each
// applied to, found in the subjects' exempted lists.
func exceptionsOf(e *policies.Enforcer, namespaces []Namespace) []Exception {
	out := []Exception{}
	for _, st := range e.Exceptions() {
		x := Exception{ExceptionState: st, Subjects: []string{}}
		key := st.Namespace + "/" + st.Name
		for _, ns := range namespaces {
			if ns.Name != st.Namespace {
				continue
			}
			for _, s := range ns.Subjects {
				if slices.ContainsFunc(s.Exempted, func(x Exempted) bool { return x.Exception == key }) {
					x.Subjects = append(x.Subjects, s.Kind+"/"+s.Name)
				}
			}
		}
		out = append(out, x)
	}
	return out
}
