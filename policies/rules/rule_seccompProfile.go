package rules

// seccompProfile: every container runs under a seccomp profile of type
// RuntimeDefault or Localhost. Fields: spec.securityContext.seccompProfile and
// spec.*containers[*].securityContext.seccompProfile; the container value
// wins. Unset everywhere means Unconfined on most runtimes, so it is
// Required. Fix: set the pod's seccompProfile.type: RuntimeDefault.
// Windows pods have no seccomp: nothing is required or injected there.

import (
	corev1 "k8s.io/api/core/v1"
	"podguard.dev/podguard/policies/podspec"

	"podguard.dev/podguard/policies/api/v1alpha1"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "securityContext.seccompProfile", "*containers.securityContext.seccompProfile"},
		ID:    "seccompProfile", Order: 80, Action: v1alpha1.ActionEnforce, Mutate: true,
		Checklist: ItemKernelHardening,
		Doc: `Containers run under the RuntimeDefault or a Localhost seccomp profile
(RuntimeDefault is injected at pod level).`,
		PSS:    []PSSCheck{{ID: "seccompProfile_baseline", Level: Baseline}, {ID: "seccompProfile_restricted", Level: Restricted}},
		CIS:    []string{"5.7.2"},
		New:    newSeccompProfile,
		Native: nativeSeccompProfile,
	})
}

func newSeccompProfile(*v1alpha1.Policy) Rule {
	s := podDefault[corev1.SeccompProfile]{
		id:          "seccompProfile",
		field:       []string{"seccompProfile"},
		reportField: []string{"type"},
		pod:         func(sc *corev1.PodSecurityContext) *corev1.SeccompProfile { return sc.SeccompProfile },
		container:   func(sc *corev1.SecurityContext) *corev1.SeccompProfile { return sc.SeccompProfile },
		ok: func(v corev1.SeccompProfile) bool {
			return v.Type == corev1.SeccompProfileTypeRuntimeDefault || v.Type == corev1.SeccompProfileTypeLocalhost
		},
		show: func(v corev1.SeccompProfile) string {
			if v.Type == "" {
				return `{type: ""}`
			}
			return "{type: " + string(v.Type) + "}"
		},
		want:      "{type: RuntimeDefault} or {type: Localhost}",
		inject:    corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		linuxOnly: true,
	}
	return Rule{
		ID:      "seccompProfile",
		Summary: "containers run under the RuntimeDefault or a Localhost seccomp profile",
		Check:   s.check,
		Fix:     s.fix,
	}
}

func nativeSeccompProfile(p *v1alpha1.Policy, mode NativeMode) Native {
	s := podDefault[corev1.SeccompProfile]{id: "seccompProfile", field: []string{"seccompProfile"},
		show: func(v corev1.SeccompProfile) string { return "{type: " + string(v.Type) + "}" },
		want: "{type: RuntimeDefault} or {type: Localhost}", inject: corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}, linuxOnly: true}
	return s.native(p, mode, func(x string) string { return x + ".type in ['RuntimeDefault', 'Localhost']" },
		func(x string) string { return "'{type: ' + " + x + ".type + '}'" }, func(string) []Injection {
			return []Injection{{Path: []string{"securityContext", "seccompProfile"}, Value: "{'type': 'RuntimeDefault'}"}}
		})
}
