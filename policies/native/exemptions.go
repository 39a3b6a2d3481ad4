package native

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/api/validation"
)

// exportedExemption is an exemption valid at export time.
type exportedExemption struct {
	index int
	v1alpha1.Exemption
}

// exportedExemptions keeps the exemptions valid now. CEL has no clock, so
// one with an expiry is exported as if permanent: the notes say until when
// the export is right, and which exemptions were left out as expired.
func exportedExemptions(p *v1alpha1.Policy, now time.Time) ([]exportedExemption, []string) {
	var out []exportedExemption
	var notes []string
	for i, e := range p.Exemptions {
		if e.Expires != "" {
			t, err := validation.ParseExpiry(e.Expires)
			if err == nil && !now.Before(t) {
				notes = append(notes, fmt.Sprintf("exemption %d (%s) expired at %s: not exported", i, e.Reason, t.Format(time.RFC3339)))
				continue
			}
			notes = append(notes, fmt.Sprintf("exemption %d (%s) expires at %s, but CEL has no clock: it is exported without its expiry; export again before then", i, e.Reason, e.Expires))
		}
		out = append(out, exportedExemption{index: i, Exemption: e})
	}
	return out, notes
}

func (e exportedExemption) covers(rule string) bool {
	return len(e.Rules) == 0 || slices.Contains(e.Rules, rule)
}

func (e exportedExemption) containerScoped() bool {
	return len(e.Images)+len(e.ContainerNames) > 0
}

// requestMatch is CEL for "the request is in this exemption's scope".
func (e exportedExemption) requestMatch() string {
	var parts []string
	if len(e.Namespaces) > 0 {
		parts = append(parts, globMatch("request.namespace", e.Namespaces))
	}
	if len(e.Users) > 0 {
		parts = append(parts, fmt.Sprintf("request.userInfo.username in %s", strList(e.Users)))
	}
	if len(e.Groups) > 0 {
		parts = append(parts, fmt.Sprintf("request.userInfo.?groups.orValue([]).exists(g, g in %s)", strList(e.Groups)))
	}
	if len(parts) == 0 {
		return "true"
	}
	return strings.Join(parts, " && ")
}

// containerMatch is CEL over c for "this container is in the exemption's scope".
func (e exportedExemption) containerMatch() string {
	var parts []string
	if len(e.Images) > 0 {
		parts = append(parts, globMatch("c.?image.orValue('')", e.Images))
	}
	if len(e.ContainerNames) > 0 {
		parts = append(parts, fmt.Sprintf("c.name in %s", strList(e.ContainerNames)))
	}
	return strings.Join(parts, " && ")
}

// liftedExpr is CEL for "an exemption lifts the rule from the whole request".
func liftedExpr(rule string, ex []exportedExemption) string {
	var parts []string
	for _, e := range ex {
		if e.covers(rule) && !e.containerScoped() {
			parts = append(parts, "("+e.requestMatch()+")")
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
			fmt.Fprintf(&b, "_%d", e.index)
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
			parts = append(parts, fmt.Sprintf("(%s && %s)", e.requestMatch(), e.containerMatch()))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("variables.containers.filter(c, %s).map(c, c.name)", strings.Join(parts, " || "))
}

// globMatch is CEL for "x matches one of the globs": a list lookup for
// plain names (the common case, and cheaper), a regular expression for
// the rest.
func globMatch(x string, globs []string) string {
	var plain, patterns []string
	for _, g := range globs {
		if strings.ContainsAny(g, "*?") {
			patterns = append(patterns, g)
		} else {
			plain = append(plain, g)
		}
	}
	var parts []string
	if len(plain) > 0 {
		parts = append(parts, fmt.Sprintf("%s in %s", x, strList(plain)))
	}
	if len(patterns) > 0 {
		parts = append(parts, fmt.Sprintf("%s.matches(%s)", x, strconv.Quote(globsRegexp(patterns))))
	}
	return "(" + strings.Join(parts, " || ") + ")"
}

// globsRegexp turns podguard's globs (* any run, ? one character) into one
// anchored RE2 expression.
func globsRegexp(globs []string) string {
	alts := make([]string, len(globs))
	for i, g := range globs {
		var b strings.Builder
		for _, r := range g {
			switch r {
			case '*':
				b.WriteString(".*")
			case '?':
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		alts[i] = b.String()
	}
	return "^(?:" + strings.Join(alts, "|") + ")$"
}

func strList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = strconv.Quote(it)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
