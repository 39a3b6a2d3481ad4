package rules

// seLinuxOptions: SELinux options only pick an allowed container type and
// never set a user or role. Fields: spec.securityContext.seLinuxOptions and
// spec.*containers[*].securityContext.seLinuxOptions: type must be empty,
// container_t, container_init_t, container_kvm_t or container_engine_t;
// user and role must be empty. As PSA baseline (latest). No fix.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"securityContext.seLinuxOptions", "*containers.securityContext.seLinuxOptions"},
		ID:    "seLinuxOptions", Order: 130, Action: v1alpha1.ActionEnforce,
		Checklist: ItemKernelHardening,
		Doc:       `SELinux: container types only, no user or role.`,
		PSS:       []PSSCheck{{ID: "seLinuxOptions", Level: Baseline}},
		CIS:       []string{"5.7.3"},
		New:       newSELinuxOptions,
		Native:    nativeSELinuxOptions,
	})
}

var seLinuxTypes = sets.New("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")

func newSELinuxOptions(*v1alpha1.Policy) Rule {
	judge := func(o *corev1.SELinuxOptions, p podspec.Path, who string) []Finding {
		var out []Finding
		if !seLinuxTypes.Has(o.Type) {
			out = append(out, forbidden(p.Child("type"), fmt.Sprintf("%s sets SELinux type %q; allowed: container_t, container_init_t, container_kvm_t, container_engine_t", who, o.Type),
				fmt.Sprintf("remove %s or set it to container_t", p.Child("type"))))
		}
		if o.User != "" {
			out = append(out, forbidden(p.Child("user"), fmt.Sprintf("%s sets an SELinux user", who), fmt.Sprintf("remove %s", p.Child("user"))))
		}
		if o.Role != "" {
			out = append(out, forbidden(p.Child("role"), fmt.Sprintf("%s sets an SELinux role", who), fmt.Sprintf("remove %s", p.Child("role"))))
		}
		return out
	}
	return Rule{
		ID:      "seLinuxOptions",
		Summary: "SELinux options set no user or role and only container types",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			if sc := t.Spec.SecurityContext; sc != nil && sc.SELinuxOptions != nil && !t.ContainersOnly {
				out = append(out, judge(sc.SELinuxOptions, t.PodSecurityContextPath().Child("seLinuxOptions"), "the pod")...)
			}
			for _, c := range t.Containers {
				if sc := c.SecurityContext; sc != nil && sc.SELinuxOptions != nil {
					out = append(out, judge(sc.SELinuxOptions, c.SecurityContextPath().Child("seLinuxOptions"), fmt.Sprintf("container %q", c.Name))...)
				}
			}
			return out
		},
	}
}

func nativeSELinuxOptions(*v1alpha1.Policy, NativeMode) Native {
	types := celList(sets.List(seLinuxTypes))
	ok := func(x string) string {
		return fmt.Sprintf("(!%[1]s.hasValue() || (%[1]s.value().?type.orValue('') in %[2]s && %[1]s.value().?user.orValue('') == '' && %[1]s.value().?role.orValue('') == ''))", x, types)
	}
	return Native{
		Pod: ok("variables.spec.?securityContext.?seLinuxOptions"),
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("the pod sets an SELinux user, role or type other than container_t, container_init_t, container_kvm_t, container_engine_t; fix: correct "),
			specField("securityContext.seLinuxOptions"), celString("")),
		Container: ok("c.?securityContext.?seLinuxOptions"),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("set an SELinux user, role or type other than container_t, container_init_t, container_kvm_t, container_engine_t; fix: correct "),
			specField("containers[*].securityContext.seLinuxOptions"), celString("")),
	}
}
