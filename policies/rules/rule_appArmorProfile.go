package rules

// appArmorProfile: no AppArmor profile is disabled. Fields:
// spec.securityContext.appArmorProfile.type and
// spec.*containers[*].securityContext.appArmorProfile.type must be
// RuntimeDefault or Localhost when set; the deprecated annotations
// container.apparmor.security.beta.kubernetes.io/* on the pod (template)
// metadata must be runtime/default or localhost/*. As PSA baseline. No fix.

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"securityContext.appArmorProfile", "*containers.securityContext.appArmorProfile"},
		ID:    "appArmorProfile", Order: 120, Action: v1alpha1.ActionEnforce,
		Checklist: ItemKernelHardening,
		Doc:       `AppArmor is never Unconfined (fields and annotations).`,
		PSS:       []PSSCheck{{ID: "appArmorProfile", Level: Baseline}},
		CIS:       []string{"5.7.3"},
		New:       newAppArmorProfile,
		Native:    nativeAppArmorProfile,
	})
}

func appArmorTypeOK(t corev1.AppArmorProfileType) bool {
	return t == corev1.AppArmorProfileTypeRuntimeDefault || t == corev1.AppArmorProfileTypeLocalhost
}

func newAppArmorProfile(*v1alpha1.Policy) Rule {
	bad := func(p podspec.Path, who string, typ corev1.AppArmorProfileType) Finding {
		return forbidden(p, fmt.Sprintf("%s sets AppArmor profile type %q; allowed: RuntimeDefault or Localhost", who, typ),
			fmt.Sprintf("set %s: RuntimeDefault, or remove it", p))
	}
	return Rule{
		ID:      "appArmorProfile",
		Summary: "AppArmor is never Unconfined",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			if sc := t.Spec.SecurityContext; sc != nil && sc.AppArmorProfile != nil && !appArmorTypeOK(sc.AppArmorProfile.Type) && !t.ContainersOnly {
				out = append(out, bad(t.PodSecurityContextPath().Child("appArmorProfile", "type"), "the pod", sc.AppArmorProfile.Type))
			}
			for _, c := range t.Containers {
				if sc := c.SecurityContext; sc != nil && sc.AppArmorProfile != nil && !appArmorTypeOK(sc.AppArmorProfile.Type) {
					out = append(out, bad(c.SecurityContextPath().Child("appArmorProfile", "type"), fmt.Sprintf("container %q", c.Name), sc.AppArmorProfile.Type))
				}
			}
			if t.ContainersOnly {
				return out
			}
			keys := make([]string, 0, len(t.PodMeta.Annotations))
			for k := range t.PodMeta.Annotations {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := t.PodMeta.Annotations[k]
				if !strings.HasPrefix(k, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) {
					continue
				}
				if v == "" || v == corev1.DeprecatedAppArmorBetaProfileRuntimeDefault || strings.HasPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix) {
					continue
				}
				p := t.PodMetaPath.Child("annotations", k)
				out = append(out, forbidden(p, fmt.Sprintf("annotation %s sets AppArmor profile %q; allowed: runtime/default or localhost/<profile>", k, v),
					fmt.Sprintf("remove the annotation and set securityContext.appArmorProfile.type: RuntimeDefault")))
			}
			return out
		},
	}
}

func nativeAppArmorProfile(*v1alpha1.Policy, NativeMode) Native {
	ok := "%s.?appArmorProfile.?type.orValue('RuntimeDefault') in ['RuntimeDefault', 'Localhost']"
	return Native{
		Pod: fmt.Sprintf(ok, "variables.spec.?securityContext") + fmt.Sprintf(" && variables.meta.?annotations.orValue({}).all(k, !k.startsWith(%s) || "+
			"variables.meta.annotations[k] == '' || variables.meta.annotations[k] == 'runtime/default' || variables.meta.annotations[k].startsWith('localhost/'))",
			celString(corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix)),
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("the pod sets an Unconfined AppArmor profile; fix: set "), specField("securityContext.appArmorProfile.type"),
			celString(": RuntimeDefault and remove container.apparmor.security.beta.kubernetes.io annotations that say unconfined")),
		Container:        fmt.Sprintf(ok, "c.?securityContext"),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("set an Unconfined AppArmor profile; fix: set "), specField("containers[*].securityContext.appArmorProfile.type"), celString(": RuntimeDefault")),
	}
}
