package rules

// hostPorts: no container port binds a host port. Field:
// spec.*containers[*].ports[*].hostPort must be unset or 0. Under
// hostNetwork the API server defaults hostPort to containerPort, so such a
// port counts as a host port. As PSA baseline. No fix.

import (
	"fmt"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"hostNetwork", "*containers.ports"},
		ID:    "hostPorts", Order: 100, Action: v1alpha1.ActionEnforce,
		Checklist: ItemHostAccess,
		Doc:       `No container port binds a hostPort.`,
		PSS:       []PSSCheck{{ID: "hostPorts", Level: Baseline}},
		CIS:       []string{"5.2.13"},
		New:       newHostPorts,
		Native:    nativeHostPorts,
	})
}

func newHostPorts(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "hostPorts",
		Summary: "no container port binds a hostPort",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				for j, port := range c.Ports {
					hp := port.HostPort
					if hp == 0 && t.Spec.HostNetwork {
						hp = port.ContainerPort
					}
					if hp == 0 {
						continue
					}
					p := c.Path().Child("ports").Index(j).Child("hostPort")
					fix := fmt.Sprintf("remove %s; expose the port with a Service", p)
					msg := fmt.Sprintf("container %q binds host port %d", c.Name, hp)
					if port.HostPort == 0 {
						msg += " (under hostNetwork every container port is a host port)"
						fix = fmt.Sprintf("remove %s", t.SpecPath.Child("hostNetwork"))
					}
					out = append(out, forbidden(p, msg, fix))
				}
			}
			return out
		},
	}
}

func nativeHostPorts(*v1alpha1.Policy, NativeMode) Native {
	return Native{
		Container: "c.?ports.orValue([]).all(p, p.?hostPort.orValue(0) == 0) && !(variables.spec.?hostNetwork.orValue(false) && c.?ports.orValue([]).size() > 0)",
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("bind host ports (under hostNetwork every container port is one); fix: remove "),
			specField("containers[*].ports[*].hostPort"), celString(" and expose the ports with a Service")),
	}
}
