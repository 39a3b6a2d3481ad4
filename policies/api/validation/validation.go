// Package validation checks a defaulted policy for semantic errors, the way
// Kubernetes validates component configs: every problem, with its field path.
package validation

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
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
	errs = append(errs, validateHelpURL(p.HelpURL, field.NewPath("helpURL"))...)
	errs = append(errs, validateRules(p.Rules, field.NewPath("rules"))...)
	errs = append(errs, validateExceptionSettings(&p.Exceptions, field.NewPath("exceptions"))...)
	ep := field.NewPath("exemptions")
	for i := range p.Exemptions {
		errs = append(errs, ValidateExemption(&p.Exemptions[i], ep.Index(i))...)
	}
	return errs
}

// validateHelpURL accepts an absolute http(s) URL of printable ASCII: it
// reaches kubectl's terminal in every denial.
func validateHelpURL(raw string, path *field.Path) field.ErrorList {
	if raw == "" {
		return nil
	}
	if len(raw) > v1alpha1.MaxHelpURLLength {
		return field.ErrorList{field.TooLong(path, "", v1alpha1.MaxHelpURLLength)}
	}
	for _, r := range raw {
		if r <= ' ' || r > '~' {
			return field.ErrorList{field.Invalid(path, raw, "only printable ASCII without spaces (percent-encode the rest)")}
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return field.ErrorList{field.Invalid(path, raw, "an absolute http or https URL, e.g. https://wiki.example.com/podguard")}
	}
	return nil
}

func validateRules(r v1alpha1.Rules, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, d := range rules.Definitions() {
		if c, ok := r[d.ID]; !ok || c == nil || (d.Params != nil && c.Params == nil) {
			errs = append(errs, field.Required(path.Child(d.ID), "every rule has an entry once the policy is defaulted"))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(r)) {
		p := path.Child(id)
		t, ok := rules.Lookup(id)
		if !ok {
			errs = append(errs, field.NotSupported(p, id, rules.IDs()))
			continue
		}
		c := r[id]
		if c == nil {
			continue
		}
		if !slices.Contains(actions, string(c.Action)) {
			errs = append(errs, field.NotSupported(p.Child("action"), c.Action, actions))
		}
		if c.Mutate != nil && *c.Mutate && !t.Fixable() {
			errs = append(errs, field.Forbidden(p.Child("mutate"), fmt.Sprintf("rule %s has no fix to inject; remove mutate", id)))
		}
		if c.Params != nil {
			errs = append(errs, c.Params.Validate(p)...)
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
	if len(e.Namespaces)+len(e.Users)+len(e.Groups)+len(e.Images)+len(e.ContainerNames)+len(e.Workloads) == 0 && e.Selector == nil {
		errs = append(errs, field.Required(path, "an exemption needs at least one of namespaces, users, groups, images, containerNames, workloads or selector"))
	}
	for i, w := range e.Workloads {
		wp := path.Child("workloads").Index(i)
		if !slices.Contains(workloadKinds, w.Kind) {
			errs = append(errs, field.NotSupported(wp.Child("kind"), w.Kind, workloadKinds))
		}
		for _, msg := range k8svalidation.IsDNS1123Subdomain(w.Name) {
			errs = append(errs, field.Invalid(wp.Child("name"), w.Name, msg+" (an exact object name; globs are not allowed here)"))
		}
	}
	if e.Selector != nil {
		sp := path.Child("selector")
		if len(e.Selector.MatchLabels)+len(e.Selector.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(sp, "{}", "an empty selector matches every pod: name at least one label"))
		}
		errs = append(errs, metav1validation.ValidateLabelSelector(e.Selector, metav1validation.LabelSelectorValidationOptions{}, sp)...)
	}
	for i, id := range e.Rules {
		if _, ok := rules.Lookup(id); !ok {
			errs = append(errs, field.NotSupported(path.Child("rules").Index(i), id, rules.IDs()))
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
		if _, err := v1alpha1.ParseExpiry(e.Expires); err != nil {
			errs = append(errs, field.Invalid(path.Child("expires"), e.Expires, err.Error()))
		}
	}
	return errs
}

// workloadKinds are the kinds an exemption's workloads may name: every
// kind podguard judges.
var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "Pod", "PodTemplate"}
