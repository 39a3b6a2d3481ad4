package rules

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/exemption"
)

// maxID is the largest UID or GID the API server accepts.
const maxID = 2147483647

// idList is an allowed UID or GID list: IDs and inclusive ranges.
type idList []v1alpha1.IDRange

// Contains reports whether id is allowed.
func (l idList) Contains(id int64) bool {
	for _, r := range l {
		if r.Contains(id) {
			return true
		}
	}
	return false
}

// String writes the list for people: "1000, 10000-65535".
func (l idList) String() string {
	parts := make([]string, len(l))
	for i, r := range l {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// First is the ID a fix injects: the first entry's (its minimum for a range).
func (l idList) First() int64 { return l[0].Min }

// CEL is Contains as CEL over the value expression x.
func (l idList) CEL(x string) string {
	var single []int64
	var parts []string
	for _, r := range l {
		if r.Min == r.Max {
			single = append(single, r.Min)
			continue
		}
		parts = append(parts, fmt.Sprintf("(%s >= %d && %s <= %d)", x, r.Min, x, r.Max))
	}
	if len(single) > 0 {
		parts = append([]string{x + " in " + celInts(single)}, parts...)
	}
	return "(" + strings.Join(parts, " || ") + ")"
}

// idOverride gives the containers of some namespaces or images their own
// allowed IDs instead of the rule's: UIDOverride and GIDOverride as the
// shapes read them.
type idOverride struct {
	namespaces, images []string
	ids                idList
}

// scope is the override's scope with the exemptions' matching (one glob
// definition for the webhook, the CLI, the audit and the export).
func (o idOverride) scope() *exemption.Exemption {
	ex, err := exemption.Compile([]v1alpha1.Exemption{{Namespaces: o.namespaces, Images: o.images}})
	if err != nil || len(ex) != 1 {
		// Validation refused what cannot compile; nothing matches then.
		return &exemption.Exemption{Exemption: v1alpha1.Exemption{Namespaces: []string{"\x00"}}}
	}
	return ex[0]
}

// validateIDList checks an allowed list: not empty, never 0, in range,
// ranges the right way round, no entry twice.
func validateIDList(ids []v1alpha1.IDRange, path *field.Path, rootMsg, defaultText string) field.ErrorList {
	var errs field.ErrorList
	if ids != nil && len(ids) == 0 {
		return append(errs, field.Required(path, fmt.Sprintf("an empty list allows nothing: list the IDs (or ranges such as {min: 10000, max: 65535}), or remove the key for the default %s", defaultText)))
	}
	seen := map[v1alpha1.IDRange]bool{}
	for i, r := range ids {
		switch {
		case r.Min <= 0 && r.Max >= 0:
			errs = append(errs, field.Invalid(path.Index(i), r.String(), rootMsg))
		case r.Min < 0 || r.Max > maxID:
			errs = append(errs, field.Invalid(path.Index(i), r.String(), fmt.Sprintf("must be between 1 and %d", maxID)))
		case r.Min > r.Max:
			errs = append(errs, field.Invalid(path.Index(i), r.String(), "min is above max"))
		case seen[r]:
			errs = append(errs, field.Duplicate(path.Index(i), r.String()))
		}
		seen[r] = true
	}
	return errs
}

// validateOverride checks one override of an ID rule; key is the ID
// list's name in the file (allowedUIDs, allowedGIDs).
func validateOverride(o idOverride, p *field.Path, key, rootMsg string) field.ErrorList {
	var errs field.ErrorList
	if len(o.namespaces) == 0 && len(o.images) == 0 {
		errs = append(errs, field.Required(p, "an override needs namespaces or images: one that covers everything is the rule's own "+key))
	}
	if o.ids == nil {
		errs = append(errs, field.Required(p.Child(key), "the IDs allowed in this scope"))
	}
	errs = append(errs, validateIDList(o.ids, p.Child(key), rootMsg, "")...)
	for j, g := range o.namespaces {
		if g == "" {
			errs = append(errs, field.Invalid(p.Child("namespaces").Index(j), g, "an empty glob matches nothing"))
		}
	}
	for j, g := range o.images {
		if g == "" {
			errs = append(errs, field.Invalid(p.Child("images").Index(j), g, "an empty glob matches nothing"))
		}
	}
	return errs
}

// overridesNote completes a rule summary when overrides exist.
func overridesNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d %s by namespace or image)", n, map[bool]string{true: "override", false: "overrides"}[n == 1])
}
