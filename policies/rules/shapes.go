package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
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
}

// idDefault is the podDefault of a numeric ID (runAsUser, runAsGroup):
// one of the allowed IDs, the first injected.
func idDefault(id string, allowed []int64, pod func(*corev1.PodSecurityContext) *int64, container func(*corev1.SecurityContext) *int64) podDefault[int64] {
	return podDefault[int64]{
		id:        id,
		field:     []string{id},
		pod:       pod,
		container: container,
		ok:        func(v int64) bool { return slices.Contains(allowed, v) },
		show:      func(v int64) string { return strconv.FormatInt(v, 10) },
		want:      joinInts(allowed),
		inject:    allowed[0],
		linuxOnly: true,
	}
}

// joinInts writes IDs for people: "1000, 1001".
func joinInts(v []int64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(parts, ", ")
}

func (s podDefault[T]) podPath(t *podspec.Target) podspec.Path {
	return t.PodSecurityContextPath().Child(s.field...)
}

func (s podDefault[T]) check(t *podspec.Target) []Finding {
	var out []Finding
	var podVal *T
	if t.Spec.SecurityContext != nil {
		podVal = s.pod(t.Spec.SecurityContext)
	}
	injectText := s.show(s.inject)
	if podVal != nil && !s.ok(*podVal) && !t.ContainersOnly {
		out = append(out, Finding{
			Type:    field.ErrorTypeInvalid,
			Field:   s.podPath(t).Child(s.reportField...).String(),
			Message: fmt.Sprintf("%s is %s; allowed: %s", strings.Join(s.field, "."), s.show(*podVal), s.want),
			Fix:     fmt.Sprintf("set %s: %s", s.podPath(t), injectText),
		})
	}
	skipMissing := s.linuxOnly && t.Windows()
	for _, c := range t.Containers {
		var cv *T
		if c.SecurityContext != nil {
			cv = s.container(c.SecurityContext)
		}
		switch {
		case cv != nil && !s.ok(*cv):
			cpath := c.SecurityContextPath().Child(s.field...)
			out = append(out, Finding{
				Type:    field.ErrorTypeInvalid,
				Field:   cpath.Child(s.reportField...).String(),
				Message: fmt.Sprintf("container %q sets %s to %s; allowed: %s", c.Name, strings.Join(s.field, "."), s.show(*cv), s.want),
				Fix:     fmt.Sprintf("set %s: %s, or remove it to inherit %s", cpath, injectText, s.podPath(t)),
			})
		case cv == nil && podVal == nil && !skipMissing:
			cpath := c.SecurityContextPath().Child(s.field...)
			fix := fmt.Sprintf("set %s: %s", s.podPath(t), injectText)
			if t.ContainersOnly {
				fix = fmt.Sprintf("set %s: %s", cpath, injectText)
			}
			out = append(out, Finding{
				Type:    field.ErrorTypeRequired,
				Field:   cpath.String(),
				Message: fmt.Sprintf("container %q has no %s and the pod sets none; allowed: %s", c.Name, strings.Join(s.field, "."), s.want),
				Fix:     fix,
			})
		}
	}
	return out
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

func (s podDefault[T]) fix(t *podspec.Target) []change.Change {
	need := s.missing(t)
	if len(need) == 0 {
		return nil
	}
	if !t.ContainersOnly {
		return []change.Change{{Op: change.Set, Path: s.podPath(t), Value: s.inject}}
	}
	out := make([]change.Change, 0, len(need))
	for _, c := range need {
		out = append(out, change.Change{Op: change.Set, Path: c.SecurityContextPath().Child(s.field...), Value: s.inject})
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

// validateIDs checks a list of UIDs or GIDs: never 0, in range, no duplicates.
func validateIDs(ids []int64, path *field.Path, rootMsg string) field.ErrorList {
	var errs field.ErrorList
	seen := map[int64]bool{}
	for i, id := range ids {
		switch {
		case id == 0:
			errs = append(errs, field.Invalid(path.Index(i), id, rootMsg))
		case id < 0 || id > 2147483647:
			errs = append(errs, field.Invalid(path.Index(i), id, "must be between 1 and 2147483647"))
		case seen[id]:
			errs = append(errs, field.Duplicate(path.Index(i), id))
		}
		seen[id] = true
	}
	return errs
}

// native renders a podDefault rule as CEL. ok(x) is a CEL boolean over a
// value expression x; show(x) a CEL string showing it; inject the fields
// the fix adds to the pod's securityContext.
func (s podDefault[T]) native(p *v1alpha1.Policy, mode NativeMode, ok, show func(x string) string, inject []Injection) Native {
	f := strings.Join(s.field, ".")
	podOpt := "variables.spec.?securityContext.?" + f
	cOpt := "c.?securityContext.?" + f
	missingOK := "false"
	if s.linuxOnly {
		missingOK = "variables.windows"
	}
	fix := FixInForce(p, s.id)
	injectText := s.show(s.inject)
	n := Native{
		Pod: fmt.Sprintf("!%s.hasValue() || %s", podOpt, ok(podOpt+".value()")),
		PodMessage: fmt.Sprintf("%s + %s + %s + %s + %s", celString(f+" is "), show(podOpt+".value()"),
			celString(fmt.Sprintf("; allowed: %s (", s.want)), specField("securityContext."+f),
			celString(fmt.Sprintf("); fix: set it to %s", injectText))),
		Container: fmt.Sprintf("%s.hasValue() ? %s : (%s.hasValue() || %s)", cOpt, ok(cOpt+".value()"), podOpt, missingOK),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString(fmt.Sprintf("run without an allowed %s (allowed: %s); fix: set ", f, s.want)),
			specField("securityContext."+f), celString(": "+injectText+", or remove the containers' own values that differ")),
	}
	if mode == AsAdmitted && fix {
		// Pod mutation sets the pod's value where it is missing.
		n.Container = fmt.Sprintf("!%s.hasValue() || %s", cOpt, ok(cOpt+".value()"))
	}
	if mode == AsSubmitted && fix {
		cond := fmt.Sprintf("!%s.hasValue() && variables.containers.exists(c, !$exempt(c) && !%s.hasValue())", podOpt, cOpt)
		if s.linuxOnly {
			cond = "!variables.windows && " + cond
		}
		for _, in := range inject {
			if in.When == "" {
				in.When = cond
			} else {
				in.When = cond + " && " + in.When
			}
			n.Inject = append(n.Inject, in)
		}
	}
	return n
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
