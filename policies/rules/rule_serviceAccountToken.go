package rules

// serviceAccountToken: a pod that never talks to the API server carries no
// token to it (CIS 5.1.6). Field: spec.automountServiceAccountToken must be
// false. Default action warn: many pods do talk to the API server; those
// exempt themselves, or mount a projected token only in the container
// that needs it.
// Fix (mutate is off by default): set automountServiceAccountToken: false,
// only for pods of the namespace's default service account (none named,
// or "default"): a pod given its own account was given it on purpose,
// unless the policy's includeNamedServiceAccounts says otherwise. An
// explicit true is never changed. On a cluster, the API server's
// ServiceAccount admission plugin has already mounted the token by the time
// a webhook sees the pod, so the fix also removes that volume
// (kube-api-access-*, exactly as the plugin writes it) and its mounts;
// nothing a person wrote is removed.

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"automountServiceAccountToken", "serviceAccountName", "serviceAccount", "volumes", "*containers.volumeMounts"},
		ID:    "serviceAccountToken", Order: 220, Action: v1alpha1.ActionWarn,
		Checklist: ItemTokens,
		Doc: `Pods that never talk to the API server set automountServiceAccountToken:
false, so they carry no token. With mutate: true, false is injected into
pods of the default service account (and, with includeNamedServiceAccounts:
true, of every account), and the token volume the API server mounted is
removed.`,
		CIS:    []string{"5.1.6"},
		Params: func() v1alpha1.RuleParams { return &ServiceAccountTokenParams{} },
		New:    newServiceAccountToken,
		Native: nativeServiceAccountToken,
	})
}

// ServiceAccountTokenParams are the serviceAccountToken rule's parameters.
type ServiceAccountTokenParams struct {
	// IncludeNamedServiceAccounts lets the fix inject false into pods that
	// name a service account other than default. Default false.
	IncludeNamedServiceAccounts bool `json:"includeNamedServiceAccounts,omitempty"`
}

// Default leaves includeNamedServiceAccounts false.
func (*ServiceAccountTokenParams) Default() {}

// Validate has nothing to check.
func (*ServiceAccountTokenParams) Validate(*field.Path) field.ErrorList { return nil }

func newServiceAccountToken(p *v1alpha1.Policy) Rule {
	includeNamed := params[*ServiceAccountTokenParams](p, "serviceAccountToken").IncludeNamedServiceAccounts
	return Rule{
		ID:      "serviceAccountToken",
		Summary: "pods set automountServiceAccountToken: false",
		Check: func(t *podspec.Target) []Finding {
			if t.ContainersOnly {
				return nil
			}
			p := t.SpecPath.Child("automountServiceAccountToken")
			fix := fmt.Sprintf("set %s: false; a pod that talks to the API server mounts a projected token in the container that needs it, or is exempted", p)
			switch v := t.Spec.AutomountServiceAccountToken; {
			case v == nil:
				return []Finding{{Type: field.ErrorTypeRequired, Field: p.String(),
					Message: "the pod does not set automountServiceAccountToken: false, so every container gets a token to the API server", Fix: fix}}
			case *v:
				return []Finding{{Type: field.ErrorTypeInvalid, Field: p.String(),
					Message: "the pod mounts a service account token in every container (automountServiceAccountToken: true)", Fix: fix}}
			}
			return nil
		},
		Fix: func(t *podspec.Target) []change.Change {
			if t.ContainersOnly || t.Spec.AutomountServiceAccountToken != nil {
				return nil
			}
			if sa := t.Spec.ServiceAccountName; sa != "" && sa != "default" && !includeNamed {
				return nil
			}
			out := []change.Change{{Op: change.Set, Path: t.SpecPath.Child("automountServiceAccountToken"), Value: false}}
			// Removals go from the last index down, so earlier ones stay valid.
			for i := len(t.Spec.Volumes) - 1; i >= 0; i-- {
				v := t.Spec.Volumes[i]
				if !isAdmissionTokenVolume(v) {
					continue
				}
				for _, c := range t.Containers {
					for j := len(c.VolumeMounts) - 1; j >= 0; j-- {
						if c.VolumeMounts[j].Name == v.Name {
							out = append(out, change.Change{Op: change.Remove, Path: c.Path().Child("volumeMounts").Index(j)})
						}
					}
				}
				out = append(out, change.Change{Op: change.Remove, Path: t.SpecPath.Child("volumes").Index(i)})
			}
			return out
		},
	}
}

// isAdmissionTokenVolume recognises the volume the ServiceAccount admission
// plugin adds: kube-api-access-<suffix>, projected from the token, the
// kube-root-ca.crt ConfigMap and the namespace.
func isAdmissionTokenVolume(v corev1.Volume) bool {
	if !strings.HasPrefix(v.Name, "kube-api-access-") || v.Projected == nil || len(v.Projected.Sources) != 3 {
		return false
	}
	s := v.Projected.Sources
	return s[0].ServiceAccountToken != nil && s[0].ServiceAccountToken.Path == "token" &&
		s[1].ConfigMap != nil && s[1].ConfigMap.Name == "kube-root-ca.crt" &&
		s[2].DownwardAPI != nil
}

func nativeServiceAccountToken(p *v1alpha1.Policy, mode NativeMode) Native {
	includeNamed := params[*ServiceAccountTokenParams](p, "serviceAccountToken").IncludeNamedServiceAccounts
	n := Native{
		Pod: "variables.spec.?automountServiceAccountToken.orValue(true) == false",
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("the pod mounts a service account token in every container; fix: set "),
			specField("automountServiceAccountToken"), celString(": false; a pod that talks to the API server mounts a projected token in the container that needs it, or is exempted")),
	}
	fix := FixInForce(p, "serviceAccountToken")
	if mode == AsAdmitted && fix {
		n.Pod = fmt.Sprintf("variables.spec.?automountServiceAccountToken.hasValue() ? variables.spec.automountServiceAccountToken == false : (%t || variables.spec.?serviceAccountName.orValue('') in ['', 'default'])", includeNamed)
	}
	if mode == AsSubmitted && fix {
		n.MutationWebhookOnly = "the fix also removes the token volume the API server mounted, by its index; it is not exported"
	}
	return n
}
