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
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "securityContext.runAsUser", "securityContext.windowsOptions.runAsUserName", "*containers.securityContext.runAsUser", "*containers.securityContext.windowsOptions.runAsUserName"},
		ID:    "runAsUser", Order: 10, Action: v1alpha1.ActionEnforce, Mutate: true,
		Checklist: ItemNonRoot,
		Doc: `Containers run as one of these UIDs; the first is injected as the pod's
securityContext.runAsUser when neither pod nor container sets one.`,
		PSS:    []PSSCheck{{ID: "runAsUser", Level: Restricted}},
		CIS:    []string{"5.2.7", "5.7.3"},
		Params: func() v1alpha1.RuleParams { return &RunAsUserParams{} },
		New:    newRunAsUser,
		Native: nativeRunAsUser,
	})
}

// runAsUserShape is the rule's one pod-default shape, for Check, Fix and
// CEL alike.
func runAsUserShape(p *v1alpha1.Policy) (podDefault[int64], []int64) {
	allowed := params[*RunAsUserParams](p, "runAsUser").AllowedUIDs
	return idDefault("runAsUser", allowed,
		func(sc *corev1.PodSecurityContext) *int64 { return sc.RunAsUser },
		func(sc *corev1.SecurityContext) *int64 { return sc.RunAsUser }), allowed
}

func newRunAsUser(p *v1alpha1.Policy) Rule {
	s, allowed := runAsUserShape(p)
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
			out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(), Advisory: true,
				Message: "the pod runs as ContainerAdministrator, the Windows administrator",
				Fix:     fmt.Sprintf("set %s: ContainerUser", p)})
		}
	}
	for _, c := range t.Containers {
		if c.SecurityContext != nil && c.SecurityContext.WindowsOptions != nil && c.SecurityContext.WindowsOptions.RunAsUserName != nil {
			if *c.SecurityContext.WindowsOptions.RunAsUserName == windowsAdminUser {
				p := c.SecurityContextPath().Child("windowsOptions", "runAsUserName")
				out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(), Advisory: true,
					Message: fmt.Sprintf("container %q runs as ContainerAdministrator, the Windows administrator", c.Name),
					Fix:     fmt.Sprintf("set %s: ContainerUser", p)})
			}
		}
	}
	return out
}

// RunAsUserParams are the runAsUser rule's parameters.
type RunAsUserParams struct {
	// AllowedUIDs are the user IDs containers may run as. The first is
	// injected when none is set. Default [1000]. 0 (root) is never allowed.
	AllowedUIDs []int64 `json:"allowedUIDs,omitempty"`
}

// Default sets AllowedUIDs to [1000] when empty.
func (r *RunAsUserParams) Default() {
	if len(r.AllowedUIDs) == 0 {
		r.AllowedUIDs = []int64{v1alpha1.DefaultUID}
	}
}

// Validate refuses root and out-of-range or duplicate IDs.
func (r *RunAsUserParams) Validate(path *field.Path) field.ErrorList {
	return validateIDs(r.AllowedUIDs, path.Child("allowedUIDs"), "UID 0 is root; the policy requires a non-root user")
}

func nativeRunAsUser(p *v1alpha1.Policy, mode NativeMode) Native {
	s, allowed := runAsUserShape(p)
	return s.native(p, mode, func(x string) string { return x + " in " + celInts(allowed) },
		func(x string) string { return "string(" + x + ")" }, []Injection{{Path: []string{"securityContext", "runAsUser"}, Value: strconv.FormatInt(allowed[0], 10)}})
}
