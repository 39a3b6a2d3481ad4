package validation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/exemption"
	"podguard.dev/podguard/policies/rules"
)

func validateExceptionSettings(s *v1alpha1.ExceptionSettings, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, id := range s.Rules {
		if _, ok := rules.Lookup(id); !ok {
			errs = append(errs, field.NotSupported(path.Child("rules").Index(i), id, rules.IDs()))
		}
	}
	if _, err := v1alpha1.ParseDuration(s.MaxDuration); err != nil {
		errs = append(errs, field.Invalid(path.Child("maxDuration"), s.MaxDuration, err.Error()))
	}
	for i, g := range s.Namespaces {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, field.Invalid(path.Child("namespaces").Index(i), g, "must not be empty"))
		}
	}
	return errs
}

// ValidateException checks a PodGuardException against a defaulted policy
// at time now: what its schema cannot know (which rules the policy lets
// be excepted, in which namespaces, for how long). The errors' paths
// start at the object (spec.rules[0]). An exception with errors is
// refused at admission and ignored by the engine.
func ValidateException(p *v1alpha1.Policy, x *v1alpha1.PodGuardException, now time.Time) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	s := p.Exceptions
	if !v1alpha1.Bool(s.Enabled) {
		return append(errs, field.Forbidden(spec, "the policy does not allow PodGuardExceptions (exceptions.enabled: false)"))
	}
	if len(s.Namespaces) > 0 && !exemption.MatchesAny(s.Namespaces, x.Namespace) {
		errs = append(errs, field.Forbidden(field.NewPath("metadata", "namespace"),
			fmt.Sprintf("the policy allows PodGuardExceptions only in namespaces matching %s", strings.Join(s.Namespaces, ", "))))
	}
	if len(x.Spec.Rules) == 0 {
		errs = append(errs, field.Required(spec.Child("rules"), "name the rules to lift, each by its ID"))
	}
	for i, id := range x.Spec.Rules {
		rp := spec.Child("rules").Index(i)
		switch _, known := rules.Lookup(id); {
		case !known:
			errs = append(errs, field.NotSupported(rp, id, rules.IDs()))
		case !slices.Contains(s.Rules, id):
			errs = append(errs, field.Forbidden(rp, fmt.Sprintf("the policy does not let rule %s be excepted (exceptions.rules: %s); ask the platform team", id, strings.Join(s.Rules, ", "))))
		}
	}
	if len(x.Spec.Workloads) == 0 && x.Spec.Selector == nil {
		errs = append(errs, field.Required(spec, "name the workloads (kind and name) or give a label selector: an exception never covers a whole namespace"))
	}
	if strings.TrimSpace(x.Spec.Reason) == "" {
		errs = append(errs, field.Required(spec.Child("reason"), "say why; it is reported wherever the exception applies"))
	}
	as := v1alpha1.Exemption{Reason: "x", Workloads: x.Spec.Workloads, Selector: x.Spec.Selector, Images: x.Spec.Images, ContainerNames: x.Spec.ContainerNames}
	for _, e := range ValidateExemption(&as, spec) {
		if e.Type != field.ErrorTypeRequired || e.Field != spec.String() {
			errs = append(errs, e)
		}
	}
	ep := spec.Child("expires")
	until, err := v1alpha1.ParseExpiry(x.Spec.Expires)
	if err != nil {
		return append(errs, field.Invalid(ep, x.Spec.Expires, err.Error()))
	}
	max, _ := v1alpha1.ParseDuration(s.MaxDuration)
	from := now
	if !x.CreationTimestamp.IsZero() {
		from = x.CreationTimestamp.Time
	}
	if !x.CreationTimestamp.IsZero() && !until.After(from) {
		errs = append(errs, field.Invalid(ep, x.Spec.Expires, fmt.Sprintf("not after the exception was created (%s): it would never apply", from.UTC().Format(time.RFC3339))))
	}
	if limit := from.Add(max); until.After(limit) {
		errs = append(errs, field.Invalid(ep, x.Spec.Expires, fmt.Sprintf("more than %s after the exception was created (%s): the policy allows at most %s (exceptions.maxDuration)",
			s.MaxDuration, from.UTC().Format(time.RFC3339), s.MaxDuration)))
	}
	return errs
}
