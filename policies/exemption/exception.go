package exemption

import (
	"fmt"
	"time"

	"podguard.dev/podguard/policies/api/v1alpha1"
)

// FromException is the exemption a PodGuardException amounts to,
// compiled (see PolicyExemption).
func FromException(x *v1alpha1.PodGuardException) (*Exemption, error) {
	list, err := Compile([]v1alpha1.Exemption{PolicyExemption(x)})
	if err != nil {
		return nil, err
	}
	e := list[0]
	e.Exception = x.Namespace + "/" + x.Name
	e.Index = -1
	return e, nil
}

// PolicyExemption is a PodGuardException written as a policy exemption:
// its rules, lifted from its workloads or selected pods (and containers)
// in its own namespace, until it expires. Namespace names are DNS labels,
// so the namespace, written as a glob, matches itself only.
func PolicyExemption(x *v1alpha1.PodGuardException) v1alpha1.Exemption {
	return v1alpha1.Exemption{
		Reason:         x.Spec.Reason,
		Rules:          x.Spec.Rules,
		Namespaces:     []string{x.Namespace},
		Workloads:      x.Spec.Workloads,
		Selector:       x.Spec.Selector,
		Images:         x.Spec.Images,
		ContainerNames: x.Spec.ContainerNames,
		Expires:        x.Spec.Expires,
	}
}

// Source names where an exemption comes from, for people: "exemption 3 of
// the policy" or "PodGuardException apps/redis".
func (e *Exemption) Source() string {
	if e.Exception != "" {
		return "PodGuardException " + e.Exception
	}
	return fmt.Sprintf("exemption %d of the policy", e.Index)
}

// ExpiresAt is when the exemption ends (zero: never).
func (e *Exemption) ExpiresAt() time.Time { return e.Until }
