package rules

// runAsGroup: every container's primary group is an allowed GID (default
// exactly 1000), and the pod's fsGroup and supplementalGroups are never 0.
// Fields: spec.securityContext.runAsGroup / fsGroup / supplementalGroups and
// spec.*containers[*].securityContext.runAsGroup. Unset runAsGroup means the
// image's group (often root's, 0), so it is Required. Fix: set the pod's
// runAsGroup to the first allowed GID and, when unset, fsGroup to the same
// (with fsGroupChangePolicy OnRootMismatch) so volumes are writable by the
// group; a pod whose runAsGroup is set gets nothing. Windows pods: as runAsUser, nothing required or injected.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "securityContext.runAsGroup", "securityContext.fsGroup", "securityContext.fsGroupChangePolicy", "securityContext.supplementalGroups", "*containers.securityContext.runAsGroup"},
		ID:    "runAsGroup", Order: 20, Action: v1alpha1.ActionEnforce, Mutate: true,
		Checklist: ItemNonRoot,
		Doc: `Containers run as one of these primary GIDs (IDs or ranges); the first
is injected as runAsGroup, and as fsGroup (with fsGroupChangePolicy:
OnRootMismatch) when unset. fsGroup and supplementalGroups must never be
0. overrides give some images or namespaces their own list.`,
		CIS:    []string{"5.7.3"},
		Params: func() v1alpha1.RuleParams { return &RunAsGroupParams{} },
		New:    newRunAsGroup,
		Native: nativeRunAsGroup,
	})
}

// runAsGroupShape is the rule's one pod-default shape, for Check, Fix and
// CEL alike.
func runAsGroupShape(p *v1alpha1.Policy) (podDefault[int64], idList) {
	ps := params[*RunAsGroupParams](p, "runAsGroup")
	var os []idOverride
	for _, o := range ps.Overrides {
		os = append(os, o.generic())
	}
	return idDefault("runAsGroup", ps.AllowedGIDs, os,
		func(sc *corev1.PodSecurityContext) *int64 { return sc.RunAsGroup },
		func(sc *corev1.SecurityContext) *int64 { return sc.RunAsGroup }), ps.AllowedGIDs
}

func newRunAsGroup(p *v1alpha1.Policy) Rule {
	s, allowed := runAsGroupShape(p)
	return Rule{
		ID:      "runAsGroup",
		Summary: fmt.Sprintf("containers run as GID %s; fsGroup and supplementalGroups are never 0", allowed) + overridesNote(len(s.overrides)),
		Check: func(t *podspec.Target) []Finding {
			out := s.check(t)
			sc := t.Spec.SecurityContext
			if sc == nil || t.ContainersOnly {
				return out
			}
			scPath := t.PodSecurityContextPath
			if sc.FSGroup != nil && *sc.FSGroup == 0 {
				out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: scPath().Child("fsGroup").String(),
					Message: "fsGroup is 0, root's group: volumes would be owned by root",
					Fix:     fmt.Sprintf("set %s: %d", scPath().Child("fsGroup"), allowed.First())})
			}
			for i, g := range sc.SupplementalGroups {
				if g == 0 {
					p := scPath().Child("supplementalGroups").Index(i)
					out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(),
						Message: "supplementalGroups contains 0, root's group",
						Fix:     fmt.Sprintf("remove 0 from %s", scPath().Child("supplementalGroups"))})
				}
			}
			return out
		},
		Fix: func(t *podspec.Target) []change.Change {
			out := s.fix(t)
			// fsGroup comes with the injected runAsGroup, so the pod's volumes
			// are writable by the group it now runs as. A pod whose runAsGroup
			// is set passes the check and is left alone: a fix never changes
			// what the check accepts. Containers given different GIDs (by
			// overrides) get theirs each, and no fsGroup: none fits all.
			if len(out) != 1 || t.ContainersOnly || t.Windows() || out[0].Path.String() != s.podPath(t).String() {
				return out
			}
			sc := t.Spec.SecurityContext
			if sc == nil || sc.FSGroup == nil {
				out = append(out, change.Change{Op: change.Set, Path: t.PodSecurityContextPath().Child("fsGroup"), Value: out[0].Value})
				if sc == nil || sc.FSGroupChangePolicy == nil {
					out = append(out, change.Change{Op: change.Set, Path: t.PodSecurityContextPath().Child("fsGroupChangePolicy"), Value: corev1.FSGroupChangeOnRootMismatch})
				}
			}
			return out
		},
	}
}

// RunAsGroupParams are the runAsGroup rule's parameters.
type RunAsGroupParams struct {
	// AllowedGIDs are the primary group IDs containers may run as: IDs and
	// ranges ({min: 10000, max: 65535}); the first is injected as
	// runAsGroup and fsGroup. Default [1000]; an empty list is an error.
	// 0 is never allowed.
	AllowedGIDs []v1alpha1.IDRange `json:"allowedGIDs,omitempty"`
	// Overrides give the containers of some namespaces or images their
	// own allowed GIDs instead; the first that matches a container decides.
	Overrides []GIDOverride `json:"overrides,omitempty"`
}

// GIDOverride is one entry of runAsGroup's overrides.
type GIDOverride struct {
	// Namespaces are globs over the namespace; empty means any.
	Namespaces []string `json:"namespaces,omitempty"`
	// Images are globs over the container's image; empty means any.
	Images []string `json:"images,omitempty"`
	// AllowedGIDs replace the rule's for the containers in scope.
	AllowedGIDs []v1alpha1.IDRange `json:"allowedGIDs"`
}

func (o GIDOverride) generic() idOverride {
	return idOverride{namespaces: o.Namespaces, images: o.Images, ids: o.AllowedGIDs}
}

const gidRootMsg = "GID 0 is root's group; choose a non-root group"

// Default sets AllowedGIDs to [1000] when left out.
func (r *RunAsGroupParams) Default() {
	if r.AllowedGIDs == nil {
		r.AllowedGIDs = []v1alpha1.IDRange{v1alpha1.ID(v1alpha1.DefaultGID)}
	}
}

// Validate refuses an empty list, root's group, and out-of-range or duplicate IDs.
func (r *RunAsGroupParams) Validate(path *field.Path) field.ErrorList {
	errs := validateIDList(r.AllowedGIDs, path.Child("allowedGIDs"), gidRootMsg, fmt.Sprintf("[%d]", v1alpha1.DefaultGID))
	for i, o := range r.Overrides {
		errs = append(errs, validateOverride(o.generic(), path.Child("overrides").Index(i), "allowedGIDs", gidRootMsg)...)
	}
	return errs
}

func nativeRunAsGroup(p *v1alpha1.Policy, mode NativeMode) Native {
	s, allowed := runAsGroupShape(p)
	// fsGroup comes with the injected runAsGroup, and its change policy
	// with fsGroup, each only where unset.
	inject := func(gid string) []Injection {
		return []Injection{{Path: []string{"securityContext", "runAsGroup"}, Value: gid},
			{Path: []string{"securityContext", "fsGroup"}, Value: gid},
			{Path: []string{"securityContext", "fsGroupChangePolicy"}, Value: "'OnRootMismatch'", When: "!object.spec.?securityContext.?fsGroup.hasValue()"}}
	}
	n := s.native(p, mode, allowed.CEL,
		func(x string) string { return "string(" + x + ")" }, inject)
	n.Pod = fmt.Sprintf("(%s) && variables.spec.?securityContext.?fsGroup.orValue(1) != 0 && variables.spec.?securityContext.?supplementalGroups.orValue([]).all(g, g != 0)", n.Pod)
	n.PodMessage = fmt.Sprintf("variables.spec.?securityContext.?fsGroup.orValue(1) == 0 ? %s + %s + %s : variables.spec.?securityContext.?supplementalGroups.orValue([]).exists(g, g == 0) ? %s + %s : %s",
		celString("fsGroup is 0, root's group ("), specField("securityContext.fsGroup"), celString(fmt.Sprintf("); fix: set it to %d", allowed.First())),
		celString("supplementalGroups contains 0, root's group; fix: remove 0 from "), specField("securityContext.supplementalGroups"), n.PodMessage)
	return n
}
