package rules

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/exemption"
)

// Weakening is a policy setting that gives up part of Pod Security
// Standard restricted, which the default policy contains whole.
type Weakening struct {
	// Field is the setting's path in the policy.
	Field string
	// Control names the PSS check(s) given up.
	Control string
	// Detail says what the setting now lets through.
	Detail string
}

func (w Weakening) String() string {
	return fmt.Sprintf("%s gives up %s: %s", w.Field, w.Control, w.Detail)
}

// belowRestricted is implemented by rule parameters that can allow what
// PSS restricted forbids.
type belowRestricted interface {
	belowRestricted(path *field.Path) []Weakening
}

// PSSWeakenings lists the settings of a defaulted policy that give up a
// Pod Security Standards (restricted or baseline) control: a rule that
// implements one set to warn, audit or off (or the whole policy in mode
// warn or audit), and parameters that allow more than restricted does.
// Exemptions are not listed: they are scoped by design and reported where
// they apply.
func PSSWeakenings(p *v1alpha1.Policy) []Weakening {
	var out []Weakening
	for _, d := range Definitions() {
		c := p.Rules[d.ID]
		if c == nil || len(d.PSS) == 0 {
			continue
		}
		var checks []string
		for _, ch := range d.PSS {
			checks = append(checks, fmt.Sprintf("%s %s", ch.Level, ch.ID))
		}
		control := "PSS " + strings.Join(checks, ", ")
		switch effective := EffectiveAction(p, d.ID); {
		case c.Action == v1alpha1.ActionOff:
			out = append(out, Weakening{Field: "rules." + d.ID + ".action", Control: control, Detail: "off: not checked at all"})
		case c.Action != v1alpha1.ActionEnforce:
			out = append(out, Weakening{Field: "rules." + d.ID + ".action", Control: control, Detail: fmt.Sprintf("%s: violations are admitted", c.Action)})
		case effective != v1alpha1.ActionEnforce:
			out = append(out, Weakening{Field: "mode", Control: control, Detail: fmt.Sprintf("%s: violations of %s are admitted", effective, d.ID)})
		}
		if b, ok := c.Params.(belowRestricted); ok {
			out = append(out, b.belowRestricted(field.NewPath("rules", d.ID))...)
		}
	}
	return out
}

// ExemptionBreadth judges how far each exemption of a defaulted policy
// reaches. pss lists the exemptions that lift a Pod Security Standards
// rule from every image or from every namespace (with nothing else
// narrowing them: no user, group, workload, selector or container name):
// `policy check --strict` fails on them, as it does on a PSS rule set to
// warn. wide lists every exemption broader than one namespace, for people
// to look at.
func ExemptionBreadth(p *v1alpha1.Policy) (pss []Weakening, wide []string) {
	for i, e := range p.Exemptions {
		path := fmt.Sprintf("exemptions[%d]", i)
		oneNamespace := len(e.Namespaces) == 1 && !exemption.IsGlob(e.Namespaces[0])
		if !oneNamespace {
			scope := "every namespace"
			if len(e.Namespaces) > 0 {
				scope = "namespaces " + strings.Join(e.Namespaces, ", ")
			}
			wide = append(wide, fmt.Sprintf("%s (%s) reaches %s", path, e.Reason, scope))
		}
		everyImage := slices.ContainsFunc(e.Images, matchesEverything)
		everyNamespace := len(e.Namespaces) == 0 || slices.ContainsFunc(e.Namespaces, matchesEverything)
		narrowed := len(e.Users)+len(e.Groups)+len(e.Workloads)+len(e.ContainerNames) > 0 || e.Selector != nil ||
			(len(e.Images) > 0 && !everyImage)
		var what string
		switch {
		case everyImage:
			what = "every image"
		case everyNamespace && !narrowed:
			what = "every pod in every namespace"
		default:
			continue
		}
		for _, d := range Definitions() {
			if len(d.PSS) == 0 || (len(e.Rules) > 0 && !slices.Contains(e.Rules, d.ID)) {
				continue
			}
			var checks []string
			for _, ch := range d.PSS {
				checks = append(checks, fmt.Sprintf("%s %s", ch.Level, ch.ID))
			}
			pss = append(pss, Weakening{Field: path, Control: "PSS " + strings.Join(checks, ", "),
				Detail: fmt.Sprintf("it lifts %s from %s (%s)", d.ID, what, e.Reason)})
		}
	}
	return pss, wide
}

// matchesEverything reports whether a glob matches every non-empty
// string: only * and at most one ?.
func matchesEverything(glob string) bool {
	stars := strings.Count(glob, "*")
	return stars > 0 && stars+strings.Count(glob, "?") == len(glob) && strings.Count(glob, "?") <= 1
}
