package rules

// capabilities: every container drops ALL capabilities and adds back only
// allowed ones (default NET_BIND_SERVICE, as PSA restricted). Fields:
// spec.*containers[*].securityContext.capabilities.drop / add.
// Fix: append ALL to drop. An added capability outside the allow-list is
// never removed: that is a decision for the owner, reported as Forbidden.
// Windows pods have no Linux capabilities: drop is not required there, but
// an explicit forbidden add is still reported.

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func init() { register("capabilities", newCapabilities) }

const capAll corev1.Capability = "ALL"

func newCapabilities(p *v1alpha1.Policy) Rule {
	allowed := p.Rules.Capabilities.AllowedAdd
	allowedText := quoteList(allowed)
	if allowedText == "" {
		allowedText = "none"
	}
	dropsAll := func(c podspec.Container) bool {
		return c.SecurityContext != nil && c.SecurityContext.Capabilities != nil && slices.Contains(c.SecurityContext.Capabilities.Drop, capAll)
	}
	return Rule{
		ID:      "capabilities",
		Summary: fmt.Sprintf("containers drop ALL capabilities and add only %s", allowedText),
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				capsPath := func() podspec.Path { return c.SecurityContextPath().Child("capabilities") }
				if !dropsAll(c) && !t.Windows() {
					out = append(out, Finding{Type: field.ErrorTypeRequired, Path: capsPath().Child("drop"),
						Message: fmt.Sprintf("container %q does not drop ALL capabilities", c.Name),
						Fix:     fmt.Sprintf("add ALL to %s", capsPath().Child("drop"))})
				}
				if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
					continue
				}
				for j, add := range c.SecurityContext.Capabilities.Add {
					if !slices.Contains(allowed, add) {
						out = append(out, forbidden(capsPath().Child("add").Index(j),
							fmt.Sprintf("container %q adds capability %s; allowed: %s", c.Name, add, allowedText),
							fmt.Sprintf("remove %s from %s, or exempt this container by name or image", add, capsPath().Child("add"))))
					}
				}
			}
			return out
		},
		Fix: func(t *podspec.Target) []change.Change {
			if t.Windows() {
				return nil
			}
			var out []change.Change
			for _, c := range t.Containers {
				if !dropsAll(c) {
					out = append(out, change.Change{Op: change.Append, Path: c.SecurityContextPath().Child("capabilities", "drop"), Value: capAll})
				}
			}
			return out
		},
	}
}
