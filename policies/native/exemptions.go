package native

import (
	"fmt"
	"strings"
	"time"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/exemption"
)

// exportedExemption is an exemption valid at export time.
type exportedExemption struct {
	*exemption.Exemption
}

// exportedExemptions keeps the exemptions valid now. CEL has no clock, so
// one with an expiry is exported as if permanent: the notes say until when
// the export is right, and which exemptions were left out as expired.
func exportedExemptions(p *v1alpha1.Policy, now time.Time) ([]exportedExemption, []string, error) {
	compiled, err := exemption.Compile(p.Exemptions)
	if err != nil {
		return nil, nil, err
	}
	var out []exportedExemption
	var notes []string
	for _, e := range compiled {
		if !e.Until.IsZero() {
			if e.Expired(now) {
				notes = append(notes, fmt.Sprintf("exemption %d (%s) expired at %s: not exported", e.Index, e.Reason, e.Until.Format(time.RFC3339)))
				continue
			}
			notes = append(notes, fmt.Sprintf("exemption %d (%s) expires at %s, but CEL has no clock: it is exported without its expiry; export again before then", e.Index, e.Reason, e.Expires))
		}
		out = append(out, exportedExemption{e})
	}
	return out, notes, nil
}

func (e exportedExemption) covers(rule string) bool { return e.Covers(rule) }

func (e exportedExemption) containerScoped() bool { return e.ContainerScoped() }

// liftedExpr is CEL for "an exemption lifts the rule from the whole request".
func liftedExpr(rule string, ex []exportedExemption) string {
	var parts []string
	for _, e := range ex {
		if e.covers(rule) && !e.containerScoped() {
			parts = append(parts, "("+e.RequestCEL()+")")
		}
	}
	if len(parts) == 0 {
		return "false"
	}
	return strings.Join(parts, " || ")
}

func hasLifted(rule string, ex []exportedExemption) bool { return liftedExpr(rule, ex) != "false" }

// liftedVar and exemptVar name the variables holding liftedExpr and
// exemptContainersExpr, by the exemptions they combine: rules with the
// same exemptions (the default ones cover every rule) share one variable,
// evaluated once per request.
func liftedVar(rule string, ex []exportedExemption) string {
	return "lifted" + exemptionSet(rule, ex, false)
}

func exemptVar(rule string, ex []exportedExemption) string {
	return "exemptContainers" + exemptionSet(rule, ex, true)
}

func exemptionSet(rule string, ex []exportedExemption, containerScoped bool) string {
	var b strings.Builder
	for _, e := range ex {
		if e.covers(rule) && e.containerScoped() == containerScoped {
			fmt.Fprintf(&b, "_%d", e.Index)
		}
	}
	return b.String()
}

// exemptContainersExpr is CEL for the names of the containers an exemption
// lifts the rule from, or "" when none can be.
func exemptContainersExpr(rule string, ex []exportedExemption) string {
	var parts []string
	for _, e := range ex {
		if e.covers(rule) && e.containerScoped() {
			parts = append(parts, fmt.Sprintf("(%s && %s)", e.RequestCEL(), e.ContainerCEL("c")))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("variables.containers.filter(c, %s).map(c, c.name)", strings.Join(parts, " || "))
}
