package rules

// resources: every init and regular container has a cpu and a memory
// limit (Docker's --cpus and --memory), its own or the pod's: limits set at
// the pod level (spec.resources.limits, Kubernetes' pod-level resources,
// on by default since 1.34) are shared by the containers that set none of
// their own, as the kubelet runs them. Requests never exceed limits, at the
// pod and the container level; limits never exceed the policy's maxLimits
// when set, at either level. Ephemeral containers cannot have resources and
// are not looked at. Fields: spec.resources.{limits,requests},
// spec.{initContainers,containers}[*].resources.{limits,requests}.
// Fix, per resource: nothing when the pod sets that limit at the pod level
// (its containers share it); otherwise a container's missing limit gets the
// policy's default (cpu 500m, memory 512Mi), raised to the container's own
// request when that is higher, and where the request is missing too it gets
// the default request (cpu 100m, memory 128Mi), lowered to the limit. A
// pod that sets a pod-level request but no pod-level limit for a resource
// gets no injection for it: a container limit would default its request to
// the limit, and the API server refuses containers whose requests add up
// to more than the pod's; podguard reports it and says to set the pod-level
// limit. A request alone is never injected beside an explicit limit: the
// API server defaults it to the limit.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads:        podspec.Fields{"initContainers.resources", "initContainers.restartPolicy", "containers.resources", "resources"},
		Subresources: []string{"resize"},
		ID:           "resources", Order: 70, Action: v1alpha1.ActionEnforce, Mutate: true,
		Checklist: ItemLimits,
		Doc: `Init and regular containers have cpu and memory limits, their own or
the pod's (spec.resources.limits: pod-level resources, shared by the
containers that set none); requests never exceed limits; limits never
exceed maxLimits when set, at either level (e.g. maxLimits: {cpu: "4",
memory: 8Gi}; none by default). Missing limits get defaultLimits (never
below the container's own request), except where the pod sets the limit
at pod level; where the request is missing too, it gets defaultRequests
(never above the limit).`,
		Params: func() v1alpha1.RuleParams { return &ResourcesParams{} },
		New:    newResources,
		Native: nativeResources,
	})
}

var limitedResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

func newResources(p *v1alpha1.Policy) Rule {
	cfg := params[*ResourcesParams](p, "resources")
	defLimit := func(name corev1.ResourceName, c podspec.Container) resource.Quantity {
		l := cfg.DefaultLimits[name].DeepCopy()
		if req, ok := c.Resources.Requests[name]; ok && req.Cmp(l) > 0 {
			l = req.DeepCopy()
		}
		return l
	}
	maxNames := sortedNames(cfg.MaxLimits)
	return Rule{
		ID:      "resources",
		Summary: "containers have cpu and memory limits, their own or the pod's; requests do not exceed limits",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			podLimits, podRequests := podResources(t)
			if !t.ContainersOnly {
				out = append(out, checkPodResources(t, podLimits, podRequests, cfg, maxNames)...)
			}
			for _, c := range t.Containers {
				if c.Kind == podspec.EphemeralContainer {
					continue
				}
				rp := func() podspec.Path { return c.Path().Child("resources") }
				for _, name := range limitedResources {
					if _, ok := c.Resources.Limits[name]; ok {
						continue
					}
					if _, ok := podLimits[name]; ok {
						continue // shared: the pod's limit holds
					}
					p := rp().Child("limits", string(name))
					podPath := t.SpecPath.Child("resources", "limits", string(name))
					l := defLimit(name, c)
					fix := fmt.Sprintf("set %s: %s, or %s for the whole pod", p, l.String(), podPath)
					if _, ok := podRequests[name]; ok {
						fix = fmt.Sprintf("set %s, as the pod sets its %s request at pod level", podPath, name)
					}
					out = append(out, Finding{Type: field.ErrorTypeRequired, Field: p.String(),
						Message: fmt.Sprintf("container %q has no %s limit and the pod sets none", c.Name, name),
						Fix:     fix})
				}
				out = append(out, requestsAboveLimits(c.Resources.Requests, c.Resources.Limits, rp, fmt.Sprintf("container %q", c.Name))...)
				for _, name := range maxNames {
					max := cfg.MaxLimits[name]
					if lim, ok := c.Resources.Limits[name]; ok && lim.Cmp(max) > 0 {
						p := rp().Child("limits", string(name))
						out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(),
							Message: fmt.Sprintf("container %q has a %s limit of %s, above the policy's maximum %s", c.Name, name, lim.String(), max.String()),
							Fix:     fmt.Sprintf("set %s to at most %s", p, max.String())})
					}
				}
			}
			return out
		},
		Fix: func(t *podspec.Target) []change.Change {
			var out []change.Change
			podLimits, podRequests := podResources(t)
			for _, c := range t.Containers {
				if c.Kind == podspec.EphemeralContainer {
					continue
				}
				for _, name := range limitedResources {
					if _, ok := c.Resources.Limits[name]; ok {
						continue
					}
					if _, ok := podLimits[name]; ok {
						continue
					}
					if _, ok := podRequests[name]; ok {
						continue // see the rule's comment: the pod-level limit is for people to set
					}
					rp := c.Path().Child("resources")
					l := defLimit(name, c)
					out = append(out, change.Change{Op: change.Set, Path: rp.Child("limits", string(name)), Value: l})
					if _, ok := c.Resources.Requests[name]; ok {
						continue
					}
					r, ok := cfg.DefaultRequests[name]
					if !ok {
						continue
					}
					r = r.DeepCopy()
					if r.Cmp(l) > 0 {
						r = l.DeepCopy()
					}
					out = append(out, change.Change{Op: change.Set, Path: rp.Child("requests", string(name)), Value: r})
				}
			}
			return out
		},
	}
}

// podResources returns the pod-level limits and requests (nil when unset).
func podResources(t *podspec.Target) (limits, requests corev1.ResourceList) {
	if r := t.Spec.Resources; r != nil {
		return r.Limits, r.Requests
	}
	return nil, nil
}

// checkPodResources judges the pod-level resources: requests within
// limits, limits within the policy's maximum.
func checkPodResources(t *podspec.Target, limits, requests corev1.ResourceList, cfg *ResourcesParams, maxNames []corev1.ResourceName) []Finding {
	if len(limits)+len(requests) == 0 {
		return nil
	}
	rp := func() podspec.Path { return t.SpecPath.Child("resources") }
	out := requestsAboveLimits(requests, limits, rp, "the pod")
	for _, name := range maxNames {
		max := cfg.MaxLimits[name]
		if lim, ok := limits[name]; ok && lim.Cmp(max) > 0 {
			p := rp().Child("limits", string(name))
			out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(),
				Message: fmt.Sprintf("the pod has a pod-level %s limit of %s, above the policy's maximum %s", name, lim.String(), max.String()),
				Fix:     fmt.Sprintf("set %s to at most %s", p, max.String())})
		}
	}
	return out
}

// requestsAboveLimits reports each request above its limit, of a
// container or the pod (who), at path rp().requests.<name>.
func requestsAboveLimits(requests, limits corev1.ResourceList, rp func() podspec.Path, who string) []Finding {
	// cpu and memory by lookup; a range over the map (random start, every
	// key) only when other resources are requested. Sorting, for a stable
	// report, only once something is wrong.
	over, known := false, 0
	for _, name := range limitedResources {
		req, ok := requests[name]
		if !ok {
			continue
		}
		known++
		if lim, ok := limits[name]; ok && req.Cmp(lim) > 0 {
			over = true
		}
	}
	if !over && len(requests) > known {
		for name, req := range requests {
			if lim, ok := limits[name]; ok && req.Cmp(lim) > 0 {
				over = true
				break
			}
		}
	}
	if !over {
		return nil
	}
	var out []Finding
	for _, name := range sortedNames(requests) {
		req := requests[name]
		if lim, ok := limits[name]; ok && req.Cmp(lim) > 0 {
			p := rp().Child("requests", string(name))
			out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(),
				Message: fmt.Sprintf("%s requests %s %s, above its limit %s", who, name, req.String(), lim.String()),
				Fix:     fmt.Sprintf("set %s to at most %s", p, lim.String())})
		}
	}
	return out
}

func sortedNames(rl corev1.ResourceList) []corev1.ResourceName {
	return slices.Sorted(maps.Keys(rl))
}

// ResourcesParams are the resources rule's parameters.
type ResourcesParams struct {
	// DefaultLimits are injected where a container has no limit.
	// Default cpu 500m, memory 512Mi.
	DefaultLimits corev1.ResourceList `json:"defaultLimits,omitempty"`
	// DefaultRequests are injected where a container has neither a request
	// nor a limit. Default cpu 100m, memory 128Mi.
	DefaultRequests corev1.ResourceList `json:"defaultRequests,omitempty"`
	// MaxLimits, when set, caps the limits a container may ask for.
	MaxLimits corev1.ResourceList `json:"maxLimits,omitempty"`
}

// Default sets the default limits and requests when left out.
func (r *ResourcesParams) Default() {
	if r.DefaultLimits == nil {
		r.DefaultLimits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")}
	}
	if r.DefaultRequests == nil {
		r.DefaultRequests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}
	}
}

// Validate checks that limits exist for cpu and memory and that requests
// and limits are consistent with each other and with maxLimits.
func (r *ResourcesParams) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateResourceList(r.DefaultLimits, path.Child("defaultLimits"))...)
	errs = append(errs, validateResourceList(r.DefaultRequests, path.Child("defaultRequests"))...)
	errs = append(errs, validateResourceList(r.MaxLimits, path.Child("maxLimits"))...)
	for _, name := range limitedResources {
		lim, hasLim := r.DefaultLimits[name]
		if !hasLim {
			errs = append(errs, field.Required(path.Child("defaultLimits").Key(string(name)), "the resources rule injects a limit for cpu and memory"))
		}
		req, hasReq := r.DefaultRequests[name]
		if hasLim && hasReq && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(path.Child("defaultRequests").Key(string(name)), req.String(), fmt.Sprintf("must not exceed defaultLimits.%s (%s)", name, lim.String())))
		}
		if max, ok := r.MaxLimits[name]; ok && hasLim && lim.Cmp(max) > 0 {
			errs = append(errs, field.Invalid(path.Child("defaultLimits").Key(string(name)), lim.String(), fmt.Sprintf("must not exceed maxLimits.%s (%s)", name, max.String())))
		}
	}
	return errs
}

func validateResourceList(rl corev1.ResourceList, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedNames(rl) {
		q := rl[name]
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		default:
			errs = append(errs, field.NotSupported(path.Key(string(name)), name, []string{"cpu", "memory", "ephemeral-storage"}))
			continue
		}
		if q.Sign() <= 0 {
			errs = append(errs, field.Invalid(path.Key(string(name)), q.String(), "must be greater than zero"))
		}
	}
	return errs
}

func nativeResources(p *v1alpha1.Policy, mode NativeMode) Native {
	cfg := params[*ResourcesParams](p, "resources")
	const L, R = "c.?resources.?limits.orValue({})", "c.?resources.?requests.orValue({})"
	const PL, PR = "variables.spec.?resources.?limits.orValue({})", "variables.spec.?resources.?requests.orValue({})"
	q := func(m, k string) string { return fmt.Sprintf("quantity(string(%s[%s]))", m, celString(k)) }
	// effLimit is the limit a container has after the fix.
	effLimit := func(name corev1.ResourceName) string {
		def := cfg.DefaultLimits[name]
		return fmt.Sprintf("(%[1]s in %[2]s ? %[3]s : (%[1]s in %[4]s && %[5]s.isGreaterThan(quantity(%[6]s)) ? %[5]s : quantity(%[6]s)))",
			celString(string(name)), L, q(L, string(name)), R, q(R, string(name)), celString(def.String()))
	}
	within := func(req, lim string) string {
		return fmt.Sprintf("%s.all(k, !(k in %s) || quantity(string(%s[k])).compareTo(quantity(string(%s[k]))) <= 0)", req, lim, req, lim)
	}
	fix := FixInForce(p, "resources")
	var submitted, admitted []string
	for _, name := range limitedResources {
		k := celString(string(name))
		has := fmt.Sprintf("(%s in %s || %s in %s)", k, L, k, PL)
		submitted = append(submitted, has)
		// As admitted, the fix gives the limit, unless the pod sets the
		// request at pod level without the limit.
		admitted = append(admitted, fmt.Sprintf("(%s || !(%s in %s))", has, k, PR))
	}
	submitted = append(submitted, within(R, L))
	admitted = append(admitted, within(R, L))
	pod := []string{within(PR, PL)}
	for _, name := range sortedNames(cfg.MaxLimits) {
		max := cfg.MaxLimits[name]
		k := celString(string(name))
		limit := fmt.Sprintf("(!(%s in %s) || %s.compareTo(quantity(%s)) <= 0)", k, L, q(L, string(name)), celString(max.String()))
		submitted = append(submitted, limit)
		if slices.Contains(limitedResources, name) {
			limit = fmt.Sprintf("(%s in %s || %s.compareTo(quantity(%s)) <= 0)", k, PL, effLimit(name), celString(max.String()))
		}
		admitted = append(admitted, limit)
		pod = append(pod, fmt.Sprintf("(!(%s in %s) || %s.compareTo(quantity(%s)) <= 0)", k, PL, q(PL, string(name)), celString(max.String())))
	}
	n := Native{
		Pod: strings.Join(pod, " && "),
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("the pod's pod-level resources request more than their limit or exceed the policy's maximum; fix: correct "),
			specField("resources"), celString("")),
		Container: strings.Join(submitted, " && "),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("lack a cpu or memory limit (their own or the pod's), request more than their limit, or exceed the policy's maximum; fix: set "),
			specField("containers[*].resources.limits"), celString(fmt.Sprintf(" (default cpu %s, memory %s) or the pod's spec.resources.limits, with requests at most the limits",
				quantityText(cfg.DefaultLimits, corev1.ResourceCPU), quantityText(cfg.DefaultLimits, corev1.ResourceMemory)))),
	}
	if mode == AsAdmitted && fix {
		n.Container = strings.Join(admitted, " && ")
	}
	if mode == AsSubmitted && fix {
		for _, name := range limitedResources {
			k := celString(string(name))
			def := cfg.DefaultLimits[name]
			// Not where the pod sets this resource at pod level.
			podLevel := fmt.Sprintf("!(%s in object.spec.?resources.?limits.orValue({})) && !(%s in object.spec.?resources.?requests.orValue({}))", k, k)
			n.Inject = append(n.Inject, Injection{Container: true, Path: []string{"resources", "limits", string(name)}, When: "!$exempt(c) && " + podLevel,
				Value: fmt.Sprintf("(%[1]s in %[2]s && %[3]s.isGreaterThan(quantity(%[4]s)) ? string(%[2]s[%[1]s]) : %[4]s)", k, R, q(R, string(name)), celString(def.String()))})
			if req, ok := cfg.DefaultRequests[name]; ok {
				n.Inject = append(n.Inject, Injection{Container: true, Path: []string{"resources", "requests", string(name)},
					When: fmt.Sprintf("!$exempt(c) && %s && !(%s in %s)", podLevel, k, L), Value: celString(req.String())})
			}
		}
	}
	return n
}

func quantityText(l corev1.ResourceList, name corev1.ResourceName) string {
	q := l[name]
	return q.String()
}
