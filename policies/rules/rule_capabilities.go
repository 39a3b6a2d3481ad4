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
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "*containers.securityContext.capabilities"},
		ID:    "capabilities", Order: 40, Action: v1alpha1.ActionEnforce, Mutate: true,
		Checklist: ItemCapabilities,
		Doc: `Containers drop ALL capabilities (ALL is appended to drop) and add back
only these.`,
		PSS:    []PSSCheck{{ID: "capabilities_baseline", Level: Baseline}, {ID: "capabilities_restricted", Level: Restricted}},
		CIS:    []string{"5.2.8", "5.2.9", "5.2.10"},
		Params: func() v1alpha1.RuleParams { return &CapabilitiesParams{} },
		New:    newCapabilities,
		Native: nativeCapabilities,
	})
}

const capAll corev1.Capability = "ALL"

// KubectlDebugHint is the fix of an ephemeral container denied for
// SYS_PTRACE: kubectl debug's default "general" profile adds it, and its
// "restricted" profile gives a container this policy admits.
const KubectlDebugHint = `run kubectl debug with --profile=restricted (the default "general" profile adds SYS_PTRACE)`

func newCapabilities(p *v1alpha1.Policy) Rule {
	allowed := params[*CapabilitiesParams](p, "capabilities").AllowedAdd
	allowedText := joinNames(allowed)
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
					out = append(out, Finding{Type: field.ErrorTypeRequired, Field: capsPath().Child("drop").String(),
						Message: fmt.Sprintf("container %q does not drop ALL capabilities", c.Name),
						Fix:     fmt.Sprintf("add ALL to %s", capsPath().Child("drop"))})
				}
				if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
					continue
				}
				for j, add := range c.SecurityContext.Capabilities.Add {
					if !slices.Contains(allowed, add) {
						fix := fmt.Sprintf("remove %s from %s, or exempt this container by name or image", add, capsPath().Child("add"))
						if c.Kind == podspec.EphemeralContainer && add == "SYS_PTRACE" {
							fix = KubectlDebugHint
						}
						out = append(out, forbidden(capsPath().Child("add").Index(j),
							fmt.Sprintf("container %q adds capability %s; allowed: %s", c.Name, add, allowedText), fix))
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

// CapabilitiesParams are the capabilities rule's parameters.
type CapabilitiesParams struct {
	// AllowedAdd are the capabilities containers may add after dropping ALL.
	// Default [NET_BIND_SERVICE], as Pod Security Standard restricted.
	AllowedAdd []corev1.Capability `json:"allowedAdd,omitempty"`
}

// pssAllowedAdd is what PSS restricted lets a container add back.
var pssAllowedAdd = []corev1.Capability{"NET_BIND_SERVICE"}

// Default allows NET_BIND_SERVICE when the list is left out (nil); an
// explicit empty list allows nothing.
func (c *CapabilitiesParams) Default() {
	if c.AllowedAdd == nil {
		c.AllowedAdd = slices.Clone(pssAllowedAdd)
	}
}

// Validate refuses ALL and names Kubernetes would not recognise.
func (c *CapabilitiesParams) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	cp := path.Child("allowedAdd")
	for i, cap := range c.AllowedAdd {
		switch {
		case cap == capAll:
			errs = append(errs, field.Invalid(cp.Index(i), cap, "adding ALL capabilities cannot be allowed"))
		case strings.HasPrefix(string(cap), "CAP_") || strings.ToUpper(string(cap)) != string(cap) || cap == "":
			errs = append(errs, field.Invalid(cp.Index(i), cap, "write capabilities as Kubernetes does: upper case without the CAP_ prefix, e.g. NET_BIND_SERVICE"))
		}
	}
	return errs
}

// belowRestricted names the allowed capabilities PSS restricted forbids.
func (c *CapabilitiesParams) belowRestricted(path *field.Path) []Weakening {
	var out []Weakening
	for i, cap := range c.AllowedAdd {
		if !slices.Contains(pssAllowedAdd, cap) {
			out = append(out, Weakening{Field: path.Child("allowedAdd").Index(i).String(), Control: "PSS restricted capabilities_restricted",
				Detail: fmt.Sprintf("containers may add %s; restricted allows only NET_BIND_SERVICE", cap)})
		}
	}
	return out
}

func nativeCapabilities(p *v1alpha1.Policy, mode NativeMode) Native {
	allowed := params[*CapabilitiesParams](p, "capabilities").AllowedAdd
	dropsAll := "c.?securityContext.?capabilities.?drop.orValue([]).exists(d, d == 'ALL')"
	adds := fmt.Sprintf("c.?securityContext.?capabilities.?add.orValue([]).all(a, a in %s)", celList(allowed))
	n := Native{
		Container: fmt.Sprintf("(variables.windows || %s) && %s", dropsAll, adds),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString(fmt.Sprintf("do not drop ALL capabilities or add one outside %s; fix: add ALL to ", joinNames(allowed))),
			specField("containers[*].securityContext.capabilities.drop"), celString(" and remove the others from add")),
	}
	fix := FixInForce(p, "capabilities")
	if mode == AsAdmitted && fix {
		n.Container = adds
	}
	if mode == AsSubmitted && fix {
		// drop is an atomic list: an apply configuration would replace it,
		// so ALL is appended.
		n.Inject = []Injection{{Container: true, Path: []string{"securityContext", "capabilities", "drop"}, Value: "'ALL'", Append: true,
			When: fmt.Sprintf("!$exempt(c) && !variables.windows && !%s", dropsAll)}}
	}
	return n
}
