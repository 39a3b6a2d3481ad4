package rules

// procMount: containers keep the default /proc mask. Field:
// spec.*containers[*].securityContext.procMount must be unset or Default.
// As PSA restricted (latest), without the hostUsers: false relaxation. No fix.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"*containers.securityContext.procMount"},
		ID:    "procMount", Order: 140, Action: v1alpha1.ActionEnforce,
		Checklist: ItemKernelHardening,
		Doc:       `procMount is Default.`,
		PSS:       []PSSCheck{{ID: "procMount", Level: Baseline}, {ID: "procMount_restricted", Level: Restricted}},
		CIS:       []string{"5.7.3"},
		New:       newProcMount,
		Native:    nativeProcMount,
	})
}

func newProcMount(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "procMount",
		Summary: "procMount is Default",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				if sc := c.SecurityContext; sc != nil && sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
					p := c.SecurityContextPath().Child("procMount")
					out = append(out, forbidden(p, fmt.Sprintf("container %q sets procMount %q, unmasking /proc", c.Name, *sc.ProcMount),
						fmt.Sprintf("remove %s or set it to Default", p)))
				}
			}
			return out
		},
	}
}

func nativeProcMount(*v1alpha1.Policy, NativeMode) Native {
	return Native{
		Container:        "c.?securityContext.?procMount.orValue('Default') == 'Default'",
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("unmask /proc; fix: remove "), specField("containers[*].securityContext.procMount"), celString(" or set it to Default")),
	}
}
