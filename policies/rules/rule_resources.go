package rules

// resources: every init and regular container sets limits.cpu and
// limits.memory (Docker's --cpus and --memory); requests never exceed
// limits; limits never exceed the policy's maxLimits when set. Ephemeral
// containers cannot have resources and are not looked at. Fields:
// spec.{initContainers,containers}[*].resources.{limits,requests}.
// Fix: a missing limit gets the policy's default (cpu 500m, memory 512Mi),
// raised to the container's own request when that is higher; where the
// request is missing too it gets the default request (cpu 100m, memory
// 128Mi), lowered to the limit when that is lower. A request alone is never
// injected beside an explicit limit: the API server defaults it to the limit.

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
		Doc: `Init and regular containers set cpu and memory limits; requests never
exceed limits; limits never exceed maxLimits when set (e.g. maxLimits:
{cpu: "4", memory: 8Gi}; none by default). Missing limits get
defaultLimits (never below the container's own request); where the
request is missing too, it gets defaultRequests (never above the limit).`,
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
		Summary: "containers set cpu and memory limits; requests do not exceed limits",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				if c.Kind == podspec.EphemeralContainer {
					continue
				}
				rp := func() podspec.Path { return c.Path().Child("resources") }
				for _, name := range limitedResources {
					if _, ok := c.Resources.Limits[name]; !ok {
						l := defLimit(name, c)
						p := rp().Child("limits", string(name))
						out = append(out, Finding{Type: field.ErrorTypeRequired, Field: p.String(),
							Message: fmt.Sprintf("container %q has no %s limit", c.Name, name),
							Fix:     fmt.Sprintf("set %s: %s", p, l.String())})
					}
				}
				// cpu and memory by lookup; a range over the map (random
				// start, every key) only when other resources are requested.
				// Sorting, for a stable report, only once something is wrong.
				over, known := false, 0
				for _, name := range limitedResources {
					req, ok := c.Resources.Requests[name]
					if !ok {
						continue
					}
					known++
					if lim, ok := c.Resources.Limits[name]; ok && req.Cmp(lim) > 0 {
						over = true
					}
				}
				if !over && len(c.Resources.Requests) > known {
					for name, req := range c.Resources.Requests {
						if lim, ok := c.Resources.Limits[name]; ok && req.Cmp(lim) > 0 {
							over = true
							break
						}
					}
				}
				for _, name := range sortedNames(c.Resources.Requests) {
					if !over {
						break
					}
					req := c.Resources.Requests[name]
					if lim, ok := c.Resources.Limits[name]; ok && req.Cmp(lim) > 0 {
						p := rp().Child("requests", string(name))
						out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(),
							Message: fmt.Sprintf("container %q requests %s %s, above its limit %s", c.Name, name, req.String(), lim.String()),
							Fix:     fmt.Sprintf("set %s to at most %s", p, lim.String())})
					}
				}
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
			for _, c := range t.Containers {
				if c.Kind == podspec.EphemeralContainer {
					continue
				}
				for _, name := range limitedResources {
					if _, ok := c.Resources.Limits[name]; ok {
						continue
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
	q := func(m, k string) string { return fmt.Sprintf("quantity(string(%s[%s]))", m, celString(k)) }
	// effLimit is the limit a container has after the fix.
	effLimit := func(name corev1.ResourceName) string {
		def := cfg.DefaultLimits[name]
		return fmt.Sprintf("(%[1]s in %[2]s ? %[3]s : (%[1]s in %[4]s && %[5]s.isGreaterThan(quantity(%[6]s)) ? %[5]s : quantity(%[6]s)))",
			celString(string(name)), L, q(L, string(name)), R, q(R, string(name)), celString(def.String()))
	}
	requestsOK := fmt.Sprintf("%s.all(k, !(k in %s) || quantity(string(%s[k])).compareTo(quantity(string(%s[k]))) <= 0)", R, L, R, L)
	fix := FixInForce(p, "resources")
	var submitted, admitted []string
	for _, name := range limitedResources {
		submitted = append(submitted, fmt.Sprintf("%s in %s", celString(string(name)), L))
	}
	submitted = append(submitted, requestsOK)
	admitted = append(admitted, requestsOK)
	for _, name := range sortedNames(cfg.MaxLimits) {
		max := cfg.MaxLimits[name]
		limit := fmt.Sprintf("(!(%s in %s) || %s.compareTo(quantity(%s)) <= 0)", celString(string(name)), L, q(L, string(name)), celString(max.String()))
		submitted = append(submitted, limit)
		if slices.Contains(limitedResources, name) {
			limit = fmt.Sprintf("%s.compareTo(quantity(%s)) <= 0", effLimit(name), celString(max.String()))
		}
		admitted = append(admitted, limit)
	}
	n := Native{
		Container: strings.Join(submitted, " && "),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("lack a cpu or memory limit, request more than their limit, or exceed the policy's maximum; fix: set "),
			specField("containers[*].resources.limits"), celString(fmt.Sprintf(" (default cpu %s, memory %s), with requests at most the limits",
				quantityText(cfg.DefaultLimits, corev1.ResourceCPU), quantityText(cfg.DefaultLimits, corev1.ResourceMemory)))),
	}
	if mode == AsAdmitted && fix {
		n.Container = strings.Join(admitted, " && ")
	}
	if mode == AsSubmitted && fix {
		for _, name := range limitedResources {
			k := celString(string(name))
			def := cfg.DefaultLimits[name]
			n.Inject = append(n.Inject, Injection{Container: true, Path: []string{"resources", "limits", string(name)}, When: "!$exempt(c)",
				Value: fmt.Sprintf("(%[1]s in %[2]s && %[3]s.isGreaterThan(quantity(%[4]s)) ? string(%[2]s[%[1]s]) : %[4]s)", k, R, q(R, string(name)), celString(def.String()))})
			if req, ok := cfg.DefaultRequests[name]; ok {
				n.Inject = append(n.Inject, Injection{Container: true, Path: []string{"resources", "requests", string(name)},
					When: fmt.Sprintf("!$exempt(c) && !(%s in %s)", k, L), Value: celString(req.String())})
			}
		}
	}
	return n
}

func quantityText(l corev1.ResourceList, name corev1.ResourceName) string {
	q := l[name]
	return q.String()
}
