// Package validation checks a defaulted policy for semantic errors, the way
// Kubernetes validates component configs: every problem, with its field path.
package validation

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
)

var actions = []string{string(v1alpha1.ActionEnforce), string(v1alpha1.ActionWarn), string(v1alpha1.ActionAudit), string(v1alpha1.ActionOff)}

// ValidatePolicy returns every semantic error of a defaulted policy.
func ValidatePolicy(p *v1alpha1.Policy) field.ErrorList {
	var errs field.ErrorList
	if p.APIVersion != v1alpha1.APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), p.APIVersion, []string{v1alpha1.APIVersion}))
	}
	if p.Kind != v1alpha1.PolicyKind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), p.Kind, []string{v1alpha1.PolicyKind}))
	}
	switch p.Mode {
	case v1alpha1.ActionEnforce, v1alpha1.ActionWarn, v1alpha1.ActionAudit:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("mode"), p.Mode, actions[:3]))
	}
	errs = append(errs, validateRules(&p.Rules, field.NewPath("rules"))...)
	ep := field.NewPath("exemptions")
	for i := range p.Exemptions {
		errs = append(errs, ValidateExemption(&p.Exemptions[i], ep.Index(i))...)
	}
	return errs
}

func validateRules(r *v1alpha1.Rules, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	settings := r.Settings()
	ids := make([]string, 0, len(settings))
	for id := range settings {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s := settings[id]
		p := path.Child(id)
		if !sets.New(actions...).Has(string(s.Action)) {
			errs = append(errs, field.NotSupported(p.Child("action"), s.Action, actions))
		}
		if s.Mutate != nil && *s.Mutate && !v1alpha1.RuleDefaults[id].Fixable {
			errs = append(errs, field.Forbidden(p.Child("mutate"), fmt.Sprintf("rule %s has no fix to inject; remove mutate", id)))
		}
	}
	errs = append(errs, validateIDs(r.RunAsUser.AllowedUIDs, path.Child("runAsUser", "allowedUIDs"), "UID 0 is root; the policy requires a non-root user")...)
	errs = append(errs, validateIDs(r.RunAsGroup.AllowedGIDs, path.Child("runAsGroup", "allowedGIDs"), "GID 0 is root's group; choose a non-root group")...)
	cp := path.Child("capabilities", "allowedAdd")
	for i, c := range r.Capabilities.AllowedAdd {
		switch {
		case c == "ALL":
			errs = append(errs, field.Invalid(cp.Index(i), c, "adding ALL capabilities cannot be allowed"))
		case strings.HasPrefix(string(c), "CAP_") || strings.ToUpper(string(c)) != string(c) || c == "":
			errs = append(errs, field.Invalid(cp.Index(i), c, "write capabilities as Kubernetes does: upper case without the CAP_ prefix, e.g. NET_BIND_SERVICE"))
		}
	}
	rp := path.Child("resources")
	errs = append(errs, validateResourceList(r.Resources.DefaultLimits, rp.Child("defaultLimits"))...)
	errs = append(errs, validateResourceList(r.Resources.DefaultRequests, rp.Child("defaultRequests"))...)
	errs = append(errs, validateResourceList(r.Resources.MaxLimits, rp.Child("maxLimits"))...)
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := r.Resources.DefaultLimits[name]; !ok {
			errs = append(errs, field.Required(rp.Child("defaultLimits").Key(string(name)), "the resources rule injects a limit for cpu and memory"))
		}
		lim, hasLim := r.Resources.DefaultLimits[name]
		req, hasReq := r.Resources.DefaultRequests[name]
		if hasLim && hasReq && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(rp.Child("defaultRequests").Key(string(name)), req.String(), fmt.Sprintf("must not exceed defaultLimits.%s (%s)", name, lim.String())))
		}
		if max, ok := r.Resources.MaxLimits[name]; ok && hasLim && lim.Cmp(max) > 0 {
			errs = append(errs, field.Invalid(rp.Child("defaultLimits").Key(string(name)), lim.String(), fmt.Sprintf("must not exceed maxLimits.%s (%s)", name, max.String())))
		}
	}
	sp := path.Child("secretsInEnv", "namePatterns")
	for i, pat := range r.SecretsInEnv.NamePatterns {
		if _, err := regexp.Compile(pat); err != nil {
			errs = append(errs, field.Invalid(sp.Index(i), pat, "not a valid regular expression: "+err.Error()))
		}
	}
	return errs
}

func validateIDs(ids []int64, path *field.Path, rootMsg string) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[int64]()
	for i, id := range ids {
		switch {
		case id == 0:
			errs = append(errs, field.Invalid(path.Index(i), id, rootMsg))
		case id < 0 || id > 2147483647:
			errs = append(errs, field.Invalid(path.Index(i), id, "must be between 1 and 2147483647"))
		case seen.Has(id):
			errs = append(errs, field.Duplicate(path.Index(i), id))
		}
		seen.Insert(id)
	}
	return errs
}

func validateResourceList(rl corev1.ResourceList, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for name, q := range rl {
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

// ValidateExemption checks one exemption.
func ValidateExemption(e *v1alpha1.Exemption, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if strings.TrimSpace(e.Reason) == "" {
		errs = append(errs, field.Required(path.Child("reason"), "say why the exemption exists; it is logged whenever it applies"))
	}
	if len(e.Namespaces)+len(e.Users)+len(e.Groups)+len(e.Images)+len(e.ContainerNames) == 0 {
		errs = append(errs, field.Required(path, "an exemption needs at least one of namespaces, users, groups, images or containerNames"))
	}
	for i, id := range e.Rules {
		if _, ok := v1alpha1.RuleDefaults[id]; !ok {
			errs = append(errs, field.NotSupported(path.Child("rules").Index(i), id, RuleIDs()))
		}
	}
	for _, l := range []struct {
		name string
		vals []string
	}{{"namespaces", e.Namespaces}, {"users", e.Users}, {"groups", e.Groups}, {"images", e.Images}, {"containerNames", e.ContainerNames}} {
		for i, v := range l.vals {
			if strings.TrimSpace(v) == "" {
				errs = append(errs, field.Invalid(path.Child(l.name).Index(i), v, "must not be empty"))
			}
		}
	}
	if e.Expires != "" {
		if _, err := ParseExpiry(e.Expires); err != nil {
			errs = append(errs, field.Invalid(path.Child("expires"), e.Expires, err.Error()))
		}
	}
	return errs
}

// ParseExpiry parses an exemption's expires: an RFC 3339 timestamp, or a
// date meaning 00:00 UTC that day.
func ParseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("must be an RFC 3339 timestamp (2027-01-31T00:00:00Z) or a date (2027-01-31)")
}

// RuleIDs returns every rule ID, sorted.
func RuleIDs() []string {
	ids := make([]string, 0, len(v1alpha1.RuleDefaults))
	for id := range v1alpha1.RuleDefaults {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
