package rules

// userNamespaces: pods run in a user namespace (spec.hostUsers: false,
// GA in Kubernetes 1.36): a container's root, and every UID, map to
// unprivileged IDs on the node, as Docker's userns-remap does. It adds to
// runAsUser, it does not replace it: podguard still asks for the policy's
// UID (1000) inside the namespace, where Pod Security Admission 1.35 and
// later relax runAsNonRoot and runAsUser for such pods. Field:
// spec.hostUsers. Off by default (a cluster's runtime and its volumes must
// support id-mapped mounts); warn or enforce when a policy turns it on.
// Windows pods cannot set hostUsers and are not judged.
// Fix (mutate: true, opt-in): hostUsers: false where unset, only where the
// API server accepts it (1.37's validation): not with hostNetwork, hostPID
// or hostIPC, nor with a container's volumeDevices. Such a pod is reported
// with what stands in the way; it cannot be fixed, only exempted.

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "hostUsers", "hostNetwork", "hostPID", "hostIPC", "*containers.volumeDevices"},
		ID:    "userNamespaces", Order: 15, Action: v1alpha1.ActionOff,
		Checklist: ItemNonRoot,
		Doc: `Pods run in a user namespace (hostUsers: false): their UIDs, root
included, map to unprivileged IDs on the node (Docker's userns-remap).
Off by default; the node's runtime and volumes must support it. With
mutate: true, hostUsers: false is injected where the API server accepts it
(not with hostNetwork, hostPID, hostIPC or volumeDevices).`,
		New:    newUserNamespaces,
		Native: nativeUserNamespaces,
	})
}

// userNamespaceBlockers are what keeps a pod out of a user namespace: the
// API server (1.37) refuses hostUsers: false with them.
func userNamespaceBlockers(t *podspec.Target) []string {
	var out []string
	s := t.Spec
	if s.HostNetwork {
		out = append(out, "hostNetwork")
	}
	if s.HostPID {
		out = append(out, "hostPID")
	}
	if s.HostIPC {
		out = append(out, "hostIPC")
	}
	for _, c := range t.Containers {
		if len(c.VolumeDevices) > 0 {
			out = append(out, fmt.Sprintf("the volumeDevices of container %q", c.Name))
		}
	}
	return out
}

func newUserNamespaces(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "userNamespaces",
		Summary: "pods run in a user namespace (hostUsers: false)",
		Check: func(t *podspec.Target) []Finding {
			if t.ContainersOnly || t.Windows() {
				return nil
			}
			p := t.SpecPath.Child("hostUsers")
			switch hu := t.Spec.HostUsers; {
			case hu != nil && !*hu:
				return nil
			case hu != nil:
				return []Finding{{Type: field.ErrorTypeInvalid, Field: p.String(),
					Message: "the pod sets hostUsers: true: its UIDs are the node's, root included",
					Fix:     fmt.Sprintf("set %s: false", p)}}
			}
			fix := fmt.Sprintf("set %s: false", p)
			if b := userNamespaceBlockers(t); len(b) > 0 {
				fix = fmt.Sprintf("a pod with %s cannot run in a user namespace (the API server refuses hostUsers: false with them): drop them, or exempt the pod from userNamespaces", strings.Join(b, ", "))
			}
			return []Finding{{Type: field.ErrorTypeRequired, Field: p.String(),
				Message: "the pod does not run in a user namespace (hostUsers is unset, so true)",
				Fix:     fix}}
		},
		Fix: func(t *podspec.Target) []change.Change {
			if t.ContainersOnly || t.Windows() || t.Spec.HostUsers != nil || len(userNamespaceBlockers(t)) > 0 {
				return nil
			}
			return []change.Change{{Op: change.Set, Path: t.SpecPath.Child("hostUsers"), Value: false}}
		},
	}
}

func nativeUserNamespaces(p *v1alpha1.Policy, mode NativeMode) Native {
	// What the API server refuses hostUsers: false with.
	blocked := "(variables.spec.?hostNetwork.orValue(false) || variables.spec.?hostPID.orValue(false) || variables.spec.?hostIPC.orValue(false) || " +
		"variables.spec.?initContainers.orValue([]).exists(c, c.?volumeDevices.orValue([]).size() > 0) || " +
		"variables.spec.containers.exists(c, c.?volumeDevices.orValue([]).size() > 0))"
	ok := "variables.windows || variables.spec.?hostUsers.orValue(true) == false"
	if mode == AsAdmitted && FixInForce(p, "userNamespaces") {
		// Pod mutation injects it where it can.
		ok = fmt.Sprintf("variables.windows || variables.spec.?hostUsers.orValue(true) == false || (!has(variables.spec.hostUsers) && !%s)", blocked)
	}
	n := Native{
		Pod: ok,
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("the pod does not run in a user namespace; fix: set "),
			specField("hostUsers"), celString(": false (not possible with hostNetwork, hostPID, hostIPC or volumeDevices: exempt such a pod)")),
	}
	if mode == AsSubmitted && FixInForce(p, "userNamespaces") {
		n.Inject = []Injection{{Path: []string{"hostUsers"}, Value: "false",
			When: "object.spec.?os.?name.orValue('') != 'windows' && !" + strings.ReplaceAll(blocked, "variables.spec", "object.spec")}}
	}
	return n
}
