package rules

// hostNamespaces: the pod shares none of the host's namespaces (Docker's
// network isolation). Fields: spec.hostNetwork, spec.hostPID, spec.hostIPC
// must not be true. As PSA baseline. No fix.

import (
	"fmt"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"hostNetwork", "hostPID", "hostIPC"},
		ID:    "hostNamespaces", Order: 90, Action: v1alpha1.ActionEnforce,
		Checklist: ItemHostAccess,
		Doc:       `No hostNetwork, hostPID or hostIPC (Docker's network isolation).`,
		PSS:       []PSSCheck{{ID: "hostNamespaces", Level: Baseline}},
		CIS:       []string{"5.2.3", "5.2.4", "5.2.5"},
		New:       newHostNamespaces,
		Native:    nativeHostNamespaces,
	})
}

func newHostNamespaces(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "hostNamespaces",
		Summary: "no hostNetwork, hostPID or hostIPC",
		Check: func(t *podspec.Target) []Finding {
			if t.ContainersOnly {
				return nil
			}
			var out []Finding
			for _, ns := range []struct {
				name string
				on   bool
				what string
			}{
				{"hostNetwork", t.Spec.HostNetwork, "the host's network: it can reach every node-local service and sniff traffic"},
				{"hostPID", t.Spec.HostPID, "the host's process namespace: it can see and signal every process on the node"},
				{"hostIPC", t.Spec.HostIPC, "the host's IPC namespace"},
			} {
				if ns.on {
					p := t.SpecPath.Child(ns.name)
					out = append(out, forbidden(p, "the pod shares "+ns.what, "remove "+p.String()+" (or set it to false)"))
				}
			}
			return out
		},
	}
}

func nativeHostNamespaces(*v1alpha1.Policy, NativeMode) Native {
	return Native{
		Pod: "!variables.spec.?hostNetwork.orValue(false) && !variables.spec.?hostPID.orValue(false) && !variables.spec.?hostIPC.orValue(false)",
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("the pod shares the host's network, PID or IPC namespace; fix: remove hostNetwork, hostPID and hostIPC from "),
			"variables.specPath", celString("")),
	}
}
