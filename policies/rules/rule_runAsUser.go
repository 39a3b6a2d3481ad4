package rules

// runAsUser: every container runs as an allowed UID (default exactly 1000,
// the seed's appuser). Fields: spec.securityContext.runAsUser and
// spec.*containers[*].securityContext.runAsUser; the container value wins.
// Unset in both places means the image's USER, which may be root, so it is
// Required. Fix: set the pod's runAsUser to the first allowed UID.
// Windows pods (spec.os.name: windows) cannot set runAsUser: nothing is
// required or injected, an explicit disallowed value is still reported, and
// windowsOptions.runAsUserName ContainerAdministrator is a warning.

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() { register("runAsUser", newRunAsUser) }

func newRunAsUser(p *v1alpha1.Policy) Rule {
	allowed := p.Rules.RunAsUser.AllowedUIDs
	s := podDefault[int64]{
		id:        "runAsUser",
		field:     []string{"runAsUser"},
		pod:       func(sc *corev1.PodSecurityContext) *int64 { return sc.RunAsUser },
		container: func(sc *corev1.SecurityContext) *int64 { return sc.RunAsUser },
		ok:        func(v int64) bool { return slices.Contains(allowed, v) },
		show:      func(v int64) string { return strconv.FormatInt(v, 10) },
		want:      joinInts(allowed),
		inject:    allowed[0],
		linuxOnly: true,
	}
	return Rule{
		ID:      "runAsUser",
		Summary: fmt.Sprintf("containers run as UID %s", joinInts(allowed)),
		Check: func(t *podspec.Target) []Finding {
			out := s.check(t)
			if t.Windows() {
				out = append(out, windowsAdmin(t)...)
			}
			return out
		},
		Fix: s.fix,
	}
}

const windowsAdminUser = "ContainerAdministrator"

func windowsAdmin(t *podspec.Target) []Finding {
	var out []Finding
	podAdmin := false
	if sc := t.Spec.SecurityContext; sc != nil && sc.WindowsOptions != nil && sc.WindowsOptions.RunAsUserName != nil {
		podAdmin = *sc.WindowsOptions.RunAsUserName == windowsAdminUser
		if podAdmin && !t.ContainersOnly {
			p := t.PodSecurityContextPath().Child("windowsOptions", "runAsUserName")
			out = append(out, Finding{Type: field.ErrorTypeInvalid, Path: p, Advisory: true,
				Message: "the pod runs as ContainerAdministrator, the Windows administrator",
				Fix:     fmt.Sprintf("set %s: ContainerUser", p)})
		}
	}
	for _, c := range t.Containers {
		if c.SecurityContext != nil && c.SecurityContext.WindowsOptions != nil && c.SecurityContext.WindowsOptions.RunAsUserName != nil {
			if *c.SecurityContext.WindowsOptions.RunAsUserName == windowsAdminUser {
				p := c.SecurityContextPath().Child("windowsOptions", "runAsUserName")
				out = append(out, Finding{Type: field.ErrorTypeInvalid, Path: p, Advisory: true,
					Message: fmt.Sprintf("container %q runs as ContainerAdministrator, the Windows administrator", c.Name),
					Fix:     fmt.Sprintf("set %s: ContainerUser", p)})
			}
		}
	}
	return out
}

func joinInts(v []int64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += strconv.FormatInt(x, 10)
	}
	return s
}
