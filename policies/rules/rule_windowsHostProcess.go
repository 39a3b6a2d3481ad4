package rules

// windowsHostProcess: no Windows HostProcess containers (they run as a
// process on the host). Fields: spec.securityContext.windowsOptions.hostProcess
// and spec.*containers[*].securityContext.windowsOptions.hostProcess must not
// be true. As PSA baseline. No fix.

import (
	"fmt"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"securityContext.windowsOptions.hostProcess", "*containers.securityContext.windowsOptions.hostProcess"},
		ID:    "windowsHostProcess", Order: 160, Action: v1alpha1.ActionEnforce,
		Checklist: ItemHostAccess,
		Doc:       `No Windows HostProcess containers.`,
		PSS:       []PSSCheck{{ID: "windowsHostProcess", Level: Baseline}},
		CIS:       []string{"5.2.11"},
		New:       newWindowsHostProcess,
		Native:    nativeWindowsHostProcess,
	})
}

func newWindowsHostProcess(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "windowsHostProcess",
		Summary: "no Windows HostProcess containers",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			if sc := t.Spec.SecurityContext; sc != nil && sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil && *sc.WindowsOptions.HostProcess && !t.ContainersOnly {
				p := t.PodSecurityContextPath().Child("windowsOptions", "hostProcess")
				out = append(out, forbidden(p, "the pod runs as a Windows HostProcess, directly on the host", fmt.Sprintf("remove %s", p)))
			}
			for _, c := range t.Containers {
				if sc := c.SecurityContext; sc != nil && sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil && *sc.WindowsOptions.HostProcess {
					p := c.SecurityContextPath().Child("windowsOptions", "hostProcess")
					out = append(out, forbidden(p, fmt.Sprintf("container %q runs as a Windows HostProcess, directly on the host", c.Name), fmt.Sprintf("remove %s", p)))
				}
			}
			return out
		},
	}
}

func nativeWindowsHostProcess(*v1alpha1.Policy, NativeMode) Native {
	return Native{
		Pod:              "!variables.spec.?securityContext.?windowsOptions.?hostProcess.orValue(false)",
		PodMessage:       fmt.Sprintf("%s + %s", celString("the pod runs as a Windows HostProcess, directly on the host; fix: remove "), specField("securityContext.windowsOptions.hostProcess")),
		Container:        "!c.?securityContext.?windowsOptions.?hostProcess.orValue(false)",
		ContainerMessage: fmt.Sprintf("%s + %s", celString("run as a Windows HostProcess, directly on the host; fix: remove "), specField("containers[*].securityContext.windowsOptions.hostProcess")),
	}
}
