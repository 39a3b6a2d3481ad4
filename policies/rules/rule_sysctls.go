package rules

// sysctls: the pod sets only namespaced, safe sysctls. Field:
// spec.securityContext.sysctls[*].name must be one of the PSA baseline
// (latest) safe set. No fix.

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/sets"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"securityContext.sysctls"},
		ID:    "sysctls", Order: 150, Action: v1alpha1.ActionEnforce,
		Checklist: ItemKernelHardening,
		Doc:       `Only the safe sysctls.`,
		PSS:       []PSSCheck{{ID: "sysctls", Level: Baseline}},
		CIS:       []string{"5.7.3"},
		New:       newSysctls,
		Native:    nativeSysctls,
	})
}

var safeSysctls = sets.New(
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_wmem",
	"net.ipv4.tcp_slow_start_after_idle",
	"net.ipv4.tcp_notsent_lowat",
)

func newSysctls(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "sysctls",
		Summary: "only safe sysctls",
		Check: func(t *podspec.Target) []Finding {
			sc := t.Spec.SecurityContext
			if sc == nil || t.ContainersOnly {
				return nil
			}
			var out []Finding
			for i, s := range sc.Sysctls {
				if safeSysctls.Has(s.Name) {
					continue
				}
				p := t.PodSecurityContextPath().Child("sysctls").Index(i).Child("name")
				out = append(out, forbidden(p, fmt.Sprintf("sysctl %s is not in the safe set", s.Name),
					fmt.Sprintf("remove %s from %s", s.Name, t.PodSecurityContextPath().Child("sysctls"))))
			}
			return out
		},
	}
}

func nativeSysctls(*v1alpha1.Policy, NativeMode) Native {
	return Native{
		Pod:        fmt.Sprintf("variables.spec.?securityContext.?sysctls.orValue([]).all(s, s.name in %s)", celList(sets.List(safeSysctls))),
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("the pod sets a sysctl outside the safe set; fix: remove it from "), specField("securityContext.sysctls"), celString("")),
	}
}
