package rules

// allowPrivilegeEscalation: every container sets allowPrivilegeEscalation:
// false (Docker's no-new-privileges), so setuid binaries cannot gain
// privileges. Field: spec.*containers[*].securityContext.allowPrivilegeEscalation.
// Fix: set false, except on a container that is privileged or adds
// SYS_ADMIN: the API server rejects false there, and an API error would hide
// podguard's own, complete denial. Windows pods cannot set the field:
// nothing is required or injected there.

import (
	"fmt"
	"slices"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"

	corev1 "k8s.io/api/core/v1"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "*containers.securityContext.allowPrivilegeEscalation", "*containers.securityContext.privileged", "*containers.securityContext.capabilities"},
		ID:    "allowPrivilegeEscalation", Order: 50, Action: v1alpha1.ActionEnforce, Mutate: true,
		Checklist: ItemPrivilegeEscalation,
		Doc:       `Containers set allowPrivilegeEscalation: false (Docker's no-new-privileges).`,
		PSS:       []PSSCheck{{ID: "allowPrivilegeEscalation", Level: Restricted}},
		CIS:       []string{"5.2.6"},
		New:       newAllowPrivilegeEscalation,
		Native:    nativeAllowPrivilegeEscalation,
	})
}

func newAllowPrivilegeEscalation(*v1alpha1.Policy) Rule {
	s := containerField{
		field:     "allowPrivilegeEscalation",
		get:       func(sc *corev1.SecurityContext) *bool { return sc.AllowPrivilegeEscalation },
		want:      false,
		linuxOnly: true,
	}
	return Rule{
		ID:      "allowPrivilegeEscalation",
		Summary: "containers set allowPrivilegeEscalation: false",
		Check:   s.check,
		Fix: func(t *podspec.Target) []change.Change {
			var out []change.Change
			for _, c := range s.unset(t) {
				if escalates(c) {
					continue
				}
				out = append(out, change.Change{Op: change.Set, Path: c.SecurityContextPath().Child("allowPrivilegeEscalation"), Value: false})
			}
			return out
		},
	}
}

// escalates reports whether the API server forces privilege escalation on:
// privileged containers and containers adding SYS_ADMIN.
func escalates(c podspec.Container) bool {
	sc := c.SecurityContext
	if sc == nil {
		return false
	}
	if sc.Privileged != nil && *sc.Privileged {
		return true
	}
	return sc.Capabilities != nil && (slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") || slices.Contains(sc.Capabilities.Add, "CAP_SYS_ADMIN"))
}

// celEscalates is escalates in CEL: privileged, or adding SYS_ADMIN.
const celEscalates = "(c.?securityContext.?privileged.orValue(false) || c.?securityContext.?capabilities.?add.orValue([]).exists(a, a == 'SYS_ADMIN' || a == 'CAP_SYS_ADMIN'))"

func nativeAllowPrivilegeEscalation(p *v1alpha1.Policy, mode NativeMode) Native {
	s := containerField{field: "allowPrivilegeEscalation", want: false, linuxOnly: true}
	opt := "c.?securityContext.?allowPrivilegeEscalation"
	n := s.native(p, "allowPrivilegeEscalation", mode,
		fmt.Sprintf("%s.hasValue() ? %s.value() == false : (variables.windows || !%s)", opt, opt, celEscalates))
	if mode == AsSubmitted && FixInForce(p, "allowPrivilegeEscalation") {
		n.Inject = []Injection{{Container: true, Path: []string{"securityContext", "allowPrivilegeEscalation"}, Value: "false",
			When: fmt.Sprintf("!$exempt(c) && !variables.windows && !%s", celEscalates)}}
	}
	return n
}
