package rules

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/exemption"
	"podguard.dev/podguard/policies/podspec"
)

// podDefault is the shape of a securityContext field that a pod sets for
// all its containers and a container may override: runAsUser, runAsGroup,
// runAsNonRoot, seccompProfile. Check and Fix share the getters and the
// wanted value, so they cannot drift apart.
type podDefault[T any] struct {
	id string
	// field is the path below pod and container securityContext.
	field []string
	// reportField is where a bad value is reported, below field (e.g. "type").
	reportField []string
	pod         func(*corev1.PodSecurityContext) *T
	container   func(*corev1.SecurityContext) *T
	ok          func(T) bool
	show        func(T) string
	// want describes the allowed values, e.g. "1000" or "RuntimeDefault or Localhost".
	want   string
	inject T
	// linuxOnly fields are rejected by the API on Windows pods: nothing is
	// required or injected there, but an explicit bad value is still reported.
	linuxOnly bool
	// overrides replace ok, want and inject for the containers in their
	// scope (the first that matches decides): UID and GID lists per
	// namespace or image.
	overrides []override[T]
	// celOf writes an injected value as CEL (for the native export).
	celOf func(T) string
	// hint, when set, completes the fix of a container's explicit value
	// that is not allowed: how a platform team allows it instead.
	hint func(c podspec.Container, v T) string
}

// override is what a container in scope may hold instead of the rule's own.
type override[T any] struct {
	scope  *exemption.Exemption
	ok     func(T) bool
	want   string
	inject T
	// cel is ok as CEL over a value expression x.
	cel func(x string) string
}

// choice is what a container may hold: its override (by index), or the
// rule's own (-1).
func (s podDefault[T]) choice(t *podspec.Target, c podspec.Container) (int, func(T) bool, string, T) {
	for i, o := range s.overrides {
		if o.scope.MatchesRequest(exemption.Request{Namespace: t.Namespace}, exemption.Object{}) && o.scope.MatchesContainer(c.Name, c.Image) {
			return i, o.ok, o.want, o.inject
		}
	}
	return -1, s.ok, s.want, s.inject
}

// idDefault is the podDefault of a numeric ID (runAsUser, runAsGroup):
// one of the allowed IDs, the first injected, per namespace or image as
// the overrides say.
func idDefault(id string, allowed idList, overrides []idOverride, pod func(*corev1.PodSecurityContext) *int64, container func(*corev1.SecurityContext) *int64) podDefault[int64] {
	s := podDefault[int64]{
		id:        id,
		field:     []string{id},
		pod:       pod,
		container: container,
		ok:        allowed.Contains,
		show:      func(v int64) string { return strconv.FormatInt(v, 10) },
		want:      allowed.String(),
		inject:    allowed.First(),
		linuxOnly: true,
		celOf:     func(v int64) string { return strconv.FormatInt(v, 10) },
		hint: func(c podspec.Container, v int64) string {
			return fmt.Sprintf("; if image %q is built to run as %d, a platform team can allow it for that image or namespace (rules.%s.overrides) or grant an exception", c.Image, v, id)
		},
	}
	for _, o := range overrides {
		s.overrides = append(s.overrides, override[int64]{scope: o.scope(), ok: o.ids.Contains, want: o.ids.String(), inject: o.ids.First(), cel: o.ids.CEL})
	}
	return s
}

func (s podDefault[T]) podPath(t *podspec.Target) podspec.Path {
	return t.PodSecurityContextPath().Child(s.field...)
}

// podValueFails says whether the pod's value is not allowed: for every
// container that inherits it, by that container's choice; by the rule's
// own when none inherits. It returns what is allowed and the value to set.
func (s podDefault[T]) podValueFails(t *podspec.Target, v T) (bool, string, T) {
	inherits := false
	for _, c := range t.Containers {
		if c.SecurityContext != nil && s.container(c.SecurityContext) != nil {
			continue
		}
		inherits = true
		if _, ok, want, inject := s.choice(t, c); !ok(v) {
			if len(s.overrides) > 0 {
				want += fmt.Sprintf(" (for container %q)", c.Name)
			}
			return true, want, inject
		}
	}
	if !inherits && !s.ok(v) {
		return true, s.want, s.inject
	}
	return false, "", s.inject
}

func (s podDefault[T]) check(t *podspec.Target) []Finding {
	var out []Finding
	var podVal *T
	if t.Spec.SecurityContext != nil {
		podVal = s.pod(t.Spec.SecurityContext)
	}
	if podVal != nil && !t.ContainersOnly {
		if fails, want, inject := s.podValueFails(t, *podVal); fails {
			out = append(out, Finding{
				Type:    field.ErrorTypeInvalid,
				Field:   s.podPath(t).Child(s.reportField...).String(),
				Message: fmt.Sprintf("%s is %s; allowed: %s", strings.Join(s.field, "."), s.show(*podVal), want),
				Fix:     fmt.Sprintf("set %s: %s", s.podPath(t), s.show(inject)),
			})
		}
	}
	skipMissing := s.linuxOnly && t.Windows()
	_, shared := s.sharedChoice(t, s.missing(t))
	for _, c := range t.Containers {
		var cv *T
		if c.SecurityContext != nil {
			cv = s.container(c.SecurityContext)
		}
		_, ok, want, inject := s.choice(t, c)
		injectText := s.show(inject)
		switch {
		case cv != nil && !ok(*cv):
			cpath := c.SecurityContextPath().Child(s.field...)
			out = append(out, Finding{
				Type:    field.ErrorTypeInvalid,
				Field:   cpath.Child(s.reportField...).String(),
				Message: fmt.Sprintf("container %q sets %s to %s; allowed: %s", c.Name, strings.Join(s.field, "."), s.show(*cv), want),
				Fix:     fmt.Sprintf("set %s: %s, or remove it to inherit %s", cpath, injectText, s.podPath(t)) + s.hintFor(c, *cv),
			})
		case cv == nil && podVal == nil && !skipMissing:
			cpath := c.SecurityContextPath().Child(s.field...)
			fix := fmt.Sprintf("set %s: %s", s.podPath(t), injectText)
			if t.ContainersOnly || !shared {
				fix = fmt.Sprintf("set %s: %s", cpath, injectText)
			}
			out = append(out, Finding{
				Type:    field.ErrorTypeRequired,
				Field:   cpath.String(),
				Message: fmt.Sprintf("container %q has no %s and the pod sets none; allowed: %s", c.Name, strings.Join(s.field, "."), want),
				Fix:     fix,
			})
		}
	}
	return out
}

func (s podDefault[T]) hintFor(c podspec.Container, v T) string {
	if s.hint == nil {
		return ""
	}
	return s.hint(c, v)
}

// sharedChoice reports whether the containers all fall under one choice,
// with its value to inject: then one pod-level value serves them all.
func (s podDefault[T]) sharedChoice(t *podspec.Target, cs []podspec.Container) (T, bool) {
	first, inject := -2, s.inject
	for _, c := range cs {
		i, _, _, v := s.choice(t, c)
		switch first {
		case -2:
			first, inject = i, v
		case i:
		default:
			return s.inject, false
		}
	}
	return inject, true
}

// missing lists the containers that neither set the field nor inherit it.
func (s podDefault[T]) missing(t *podspec.Target) []podspec.Container {
	if s.linuxOnly && t.Windows() {
		return nil
	}
	if t.Spec.SecurityContext != nil && s.pod(t.Spec.SecurityContext) != nil {
		return nil
	}
	var out []podspec.Container
	for _, c := range t.Containers {
		if c.SecurityContext == nil || s.container(c.SecurityContext) == nil {
			out = append(out, c)
		}
	}
	return out
}

// fix sets the pod's value where containers lack one or, when they fall
// under different overrides, each such container's own.
func (s podDefault[T]) fix(t *podspec.Target) []change.Change {
	need := s.missing(t)
	if len(need) == 0 {
		return nil
	}
	if v, shared := s.sharedChoice(t, need); shared && !t.ContainersOnly {
		return []change.Change{{Op: change.Set, Path: s.podPath(t), Value: v}}
	}
	out := make([]change.Change, 0, len(need))
	for _, c := range need {
		_, _, _, v := s.choice(t, c)
		out = append(out, change.Change{Op: change.Set, Path: c.SecurityContextPath().Child(s.field...), Value: v})
	}
	return out
}

// containerField is the shape of a per-container securityContext field
// that must hold a wanted value (allowPrivilegeEscalation,
// readOnlyRootFilesystem): Required when unset, Invalid when wrong.
type containerField struct {
	field     string
	get       func(*corev1.SecurityContext) *bool
	want      bool
	linuxOnly bool
	// kinds limits the containers looked at; nil means all.
	skip func(c podspec.Container) bool
}

func (s containerField) check(t *podspec.Target) []Finding {
	var out []Finding
	for _, c := range t.Containers {
		if s.skip != nil && s.skip(c) {
			continue
		}
		var v *bool
		if c.SecurityContext != nil {
			v = s.get(c.SecurityContext)
		}
		switch {
		case v == nil && !(s.linuxOnly && t.Windows()):
			p := c.SecurityContextPath().Child(s.field)
			out = append(out, Finding{Type: field.ErrorTypeRequired, Field: p.String(),
				Message: fmt.Sprintf("container %q does not set %s", c.Name, s.field),
				Fix:     fmt.Sprintf("set %s: %t", p, s.want)})
		case v != nil && *v != s.want:
			p := c.SecurityContextPath().Child(s.field)
			out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(),
				Message: fmt.Sprintf("container %q sets %s to %t", c.Name, s.field, *v),
				Fix:     fmt.Sprintf("set %s: %t", p, s.want)})
		}
	}
	return out
}

// unset lists the containers that do not set the field at all.
func (s containerField) unset(t *podspec.Target) []podspec.Container {
	if s.linuxOnly && t.Windows() {
		return nil
	}
	var out []podspec.Container
	for _, c := range t.Containers {
		if s.skip != nil && s.skip(c) {
			continue
		}
		if c.SecurityContext == nil || s.get(c.SecurityContext) == nil {
			out = append(out, c)
		}
	}
	return out
}

func forbidden(p podspec.Path, msg, fix string) Finding {
	return Finding{Type: field.ErrorTypeForbidden, Field: p.String(), Message: msg, Fix: fix}
}

// joinNames writes names for people: "NET_BIND_SERVICE, SYS_TIME".
func joinNames[T ~string](items []T) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = string(it)
	}
	return strings.Join(q, ", ")
}

// native renders a podDefault rule as CEL. ok(x) is a CEL boolean over a
// value expression x; show(x) a CEL string showing it; inject the fields
// the fix adds to the pod's securityContext.
func (s podDefault[T]) native(p *v1alpha1.Policy, mode NativeMode, ok, show func(x string) string, inject func(value string) []Injection) Native {
	f := strings.Join(s.field, ".")
	podOpt := "variables.spec.?securityContext.?" + f
	cOpt := "c.?securityContext.?" + f
	missingOK := "false"
	if s.linuxOnly {
		missingOK = "variables.windows"
	}
	fix := FixInForce(p, s.id)
	injectText := s.show(s.inject)
	// okC is ok for container c, as its override says.
	okC := func(c, x string) string {
		return s.celChoice(c, func(i int) string { return ok(x) }, func(o override[T]) string { return o.cel(x) })
	}
	want := s.want
	if len(s.overrides) > 0 {
		want += ", or as the overrides say for the container's namespace or image"
	}
	pod := fmt.Sprintf("!%s.hasValue() || %s", podOpt, ok(podOpt+".value()"))
	if len(s.overrides) > 0 {
		// As the check: the pod's value serves the containers that inherit
		// it, each by its own choice; the rule's own when none does.
		pod = fmt.Sprintf("!%s.hasValue() || (variables.containers.exists(c, !$exempt(c) && !%s.hasValue()) ? variables.containers.all(c, $exempt(c) || %s.hasValue() || %s) : %s)",
			podOpt, cOpt, cOpt, okC("c", podOpt+".value()"), ok(podOpt+".value()"))
	}
	n := Native{
		Pod: pod,
		PodMessage: fmt.Sprintf("%s + %s + %s + %s + %s", celString(f+" is "), show(podOpt+".value()"),
			celString(fmt.Sprintf("; allowed: %s (", want)), specField("securityContext."+f),
			celString(fmt.Sprintf("); fix: set it to %s", injectText))),
		Container: fmt.Sprintf("%s.hasValue() ? %s : (%s.hasValue() || %s)", cOpt, okC("c", cOpt+".value()"), podOpt, missingOK),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString(fmt.Sprintf("run without an allowed %s (allowed: %s); fix: set ", f, want)),
			specField("securityContext."+f), celString(": "+injectText+", or remove the containers' own values that differ")),
	}
	if mode == AsAdmitted && fix {
		// Pod mutation sets the pod's value where it is missing.
		n.Container = fmt.Sprintf("!%s.hasValue() || %s", cOpt, okC("c", cOpt+".value()"))
	}
	if mode != AsSubmitted || !fix {
		return n
	}
	missing := fmt.Sprintf("variables.containers.filter(c, !$exempt(c) && !%s.hasValue())", cOpt)
	cond := fmt.Sprintf("!%s.hasValue() && %s.size() > 0", podOpt, missing)
	if s.linuxOnly {
		cond = "!variables.windows && " + cond
	}
	when := func(in Injection, cond string) Injection {
		if in.When == "" {
			in.When = cond
		} else {
			in.When = cond + " && " + in.When
		}
		return in
	}
	if len(s.overrides) == 0 {
		v := ""
		if s.celOf != nil {
			v = s.celOf(s.inject)
		}
		for _, in := range inject(v) {
			n.Inject = append(n.Inject, when(in, cond))
		}
		return n
	}
	// One pod-level value when the containers missing it share a choice
	// (as fix), else each container's own. Each field is injected once,
	// its value chosen by the condition that holds (the native patch adds
	// a field once).
	var shared, podConds, cConds, values []string
	for k := -1; k < len(s.overrides); k++ {
		all := fmt.Sprintf("%s.all(c, %s)", missing, s.celIs("c", k))
		shared = append(shared, all)
		v := s.celOf(s.inject)
		if k >= 0 {
			v = s.celOf(s.overrides[k].inject)
		}
		values = append(values, v)
		podConds = append(podConds, cond+" && "+all)
	}
	for k := -1; k < len(s.overrides); k++ {
		cConds = append(cConds, fmt.Sprintf("%s && !(%s) && !$exempt(c) && %s", cond, strings.Join(shared, " || "), s.celIs("c", k)))
	}
	perChoice := make([][]Injection, len(values))
	for k, v := range values {
		perChoice[k] = inject(v)
	}
	for i := range perChoice[0] {
		var conds, vals []string
		for k := range perChoice {
			in := perChoice[k][i]
			c := podConds[k]
			if in.When != "" {
				c += " && " + in.When
			}
			conds, vals = append(conds, "("+c+")"), append(vals, in.Value)
		}
		in := perChoice[0][i]
		in.When, in.Value = strings.Join(conds, " || "), celPick(conds, vals)
		n.Inject = append(n.Inject, in)
	}
	var cc []string
	for _, c := range cConds {
		cc = append(cc, "("+c+")")
	}
	n.Inject = append(n.Inject, Injection{Container: true, Path: append([]string{"securityContext"}, s.field...),
		When: strings.Join(cc, " || "), Value: celPick(cc, values)})
	return n
}

// celPick is CEL for the value whose condition holds, the last by default.
func celPick(conds, values []string) string {
	out := values[len(values)-1]
	for k := len(values) - 2; k >= 0; k-- {
		out = fmt.Sprintf("(%s ? %s : %s)", conds[k], values[k], out)
	}
	return out
}

// celScope is CEL for override k's scope over container c.
func (s podDefault[T]) celScope(c string, k int) string {
	sc := s.overrides[k].scope
	return "(" + sc.RequestCEL() + " && " + sc.ContainerCEL(c) + ")"
}

// celIs is CEL for "container c falls under choice k" (-1: the rule's own).
func (s podDefault[T]) celIs(c string, k int) string {
	var parts []string
	for j := 0; j < len(s.overrides) && (k < 0 || j < k); j++ {
		parts = append(parts, "!"+s.celScope(c, j))
	}
	if k >= 0 {
		parts = append(parts, s.celScope(c, k))
	}
	if len(parts) == 0 {
		return "true"
	}
	return "(" + strings.Join(parts, " && ") + ")"
}

// celChoice is a CEL conditional over container c: the first override
// whose scope matches gives its expression, else the rule's own.
func (s podDefault[T]) celChoice(c string, own func(int) string, over func(override[T]) string) string {
	out := own(-1)
	for k := len(s.overrides) - 1; k >= 0; k-- {
		out = fmt.Sprintf("(%s ? %s : %s)", s.celScope(c, k), over(s.overrides[k]), out)
	}
	return out
}

// native renders a containerField rule's check as CEL; admittedOK is the
// container predicate for a template whose fix is in force.
func (s containerField) native(p *v1alpha1.Policy, id string, mode NativeMode, admittedOK string) Native {
	opt := "c.?securityContext.?" + s.field
	missingOK := "false"
	if s.linuxOnly {
		missingOK = "variables.windows"
	}
	n := Native{
		Container: fmt.Sprintf("%s.hasValue() ? %s.value() == %t : %s", opt, opt, s.want, missingOK),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString(fmt.Sprintf("do not set %s: %t; fix: set ", s.field, s.want)),
			specField("containers[*].securityContext."+s.field), celString(fmt.Sprintf(": %t", s.want))),
	}
	if mode == AsAdmitted && FixInForce(p, id) {
		n.Container = admittedOK
	}
	return n
}
