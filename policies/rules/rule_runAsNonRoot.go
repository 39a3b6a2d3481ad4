package rules

// runAsNonRoot: every container has an effective runAsNonRoot: true, so the
// kubelet refuses to start it as root whatever the image says. Fields:
// spec.securityContext.runAsNonRoot and spec.*containers[*].securityContext.runAsNonRoot;
// the container value wins. Unlike the UID rules this applies to Windows
// pods too (the API allows it there and PSA restricted requires it).
// Fix: set the pod's runAsNonRoot: true.

import (
	"podguard.dev/podguard/policies/podspec"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"podguard.dev/podguard/policies/api/v1alpha1"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "securityContext.runAsNonRoot", "securityContext.windowsOptions", "*containers.securityContext.runAsNonRoot", "*containers.securityContext.windowsOptions"},
		ID:    "runAsNonRoot", Order: 30, Action: v1alpha1.ActionEnforce, Mutate: true,
		Checklist: ItemNonRoot,
		Doc:       `Containers run with runAsNonRoot: true (injected at pod level).`,
		PSS:       []PSSCheck{{ID: "runAsNonRoot", Level: Restricted}},
		CIS:       []string{"5.2.7"},
		New:       newRunAsNonRoot,
		Native:    nativeRunAsNonRoot,
	})
}

func newRunAsNonRoot(*v1alpha1.Policy) Rule {
	s := podDefault[bool]{
		id:        "runAsNonRoot",
		field:     []string{"runAsNonRoot"},
		pod:       func(sc *corev1.PodSecurityContext) *bool { return sc.RunAsNonRoot },
		container: func(sc *corev1.SecurityContext) *bool { return sc.RunAsNonRoot },
		ok:        func(v bool) bool { return v },
		show:      strconv.FormatBool,
		want:      "true",
		inject:    true,
	}
	return Rule{
		ID:      "runAsNonRoot",
		Summary: "containers run with runAsNonRoot: true",
		Check:   s.check,
		Fix:     s.fix,
	}
}

func nativeRunAsNonRoot(p *v1alpha1.Policy, mode NativeMode) Native {
	s := podDefault[bool]{id: "runAsNonRoot", field: []string{"runAsNonRoot"}, show: strconv.FormatBool, want: "true", inject: true}
	return s.native(p, mode, func(x string) string { return x + " == true" },
		func(x string) string { return "string(" + x + ")" }, func(string) []Injection {
			return []Injection{{Path: []string{"securityContext", "runAsNonRoot"}, Value: "true"}}
		})
}
