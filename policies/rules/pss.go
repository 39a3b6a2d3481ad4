package rules

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
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
		switch {
		case c.Action == v1alpha1.ActionOff:
			out = append(out, Weakening{Field: "rules." + d.ID + ".action", Control: control, Detail: "off: not checked at all"})
		case c.Action != v1alpha1.ActionEnforce:
			out = append(out, Weakening{Field: "rules." + d.ID + ".action", Control: control, Detail: fmt.Sprintf("%s: violations are admitted", c.Action)})
		case p.Mode != v1alpha1.ActionEnforce:
			out = append(out, Weakening{Field: "mode", Control: control, Detail: fmt.Sprintf("%s: violations of %s are admitted", p.Mode, d.ID)})
		}
		if b, ok := c.Params.(belowRestricted); ok {
			out = append(out, b.belowRestricted(field.NewPath("rules", d.ID))...)
		}
	}
	return out
}
