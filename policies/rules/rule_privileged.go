package rules

// privileged: no container is privileged. Field:
// spec.*containers[*].securityContext.privileged. No fix: a privileged
// container was asked for explicitly and is reported as Forbidden.

import (
	"fmt"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"*containers.securityContext.privileged"},
		ID:    "privileged", Order: 60, Action: v1alpha1.ActionEnforce,
		Checklist: ItemPrivilegeEscalation,
		Doc:       `No privileged containers.`,
		PSS:       []PSSCheck{{ID: "privileged", Level: Baseline}},
		CIS:       []string{"5.2.2"},
		New:       newPrivileged,
		Native:    nativePrivileged,
	})
}

func newPrivileged(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "privileged",
		Summary: "no container is privileged",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
					p := c.SecurityContextPath().Child("privileged")
					out = append(out, forbidden(p, fmt.Sprintf("container %q is privileged: it has every capability and access to all host devices", c.Name),
						fmt.Sprintf("set %s: false", p)))
				}
			}
			return out
		},
	}
}

func nativePrivileged(*v1alpha1.Policy, NativeMode) Native {
	return Native{
		Container:        "!c.?securityContext.?privileged.orValue(false)",
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("are privileged; fix: set "), specField("containers[*].securityContext.privileged"), celString(": false")),
	}
}
