package rules

// What the image rules (imageSignatures, imageVulnerabilities) share: the
// settings of the verifier's cache and the validation and matching of an
// entry's images and authorities.

import (
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/exemption"
)

// VerdictCache are the verifier's cache settings of an image rule.
type VerdictCache struct {
	// StaleIfError is how long after its last verification a digest is
	// still admitted while its registry cannot be reached (a warning says
	// so). Days (1d) or a Go duration (24h); default 24h; 0s turns it off.
	StaleIfError string `json:"staleIfError,omitempty"`
	// VerdictTTL is how long a verdict is reused before the registry is
	// read again (a revoked signature or key takes effect within it).
	// Default 10m.
	VerdictTTL string `json:"verdictTTL,omitempty"`
}

func (c *VerdictCache) defaultCache() {
	if c.StaleIfError == "" {
		c.StaleIfError = "24h"
	}
	if c.VerdictTTL == "" {
		c.VerdictTTL = "10m"
	}
}

func (c VerdictCache) validateCache(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, d := range []struct{ name, v string }{{"staleIfError", c.StaleIfError}, {"verdictTTL", c.VerdictTTL}} {
		if v, err := v1alpha1.ParseDuration(d.v); err != nil || v < 0 {
			errs = append(errs, field.Invalid(path.Child(d.name), d.v, "a duration: days (1d) or a Go duration (24h, 10m)"))
		}
	}
	return errs
}

// Durations returns staleIfError and verdictTTL of defaulted, validated
// parameters.
func (c VerdictCache) Durations() (staleIfError, verdictTTL time.Duration) {
	staleIfError, _ = v1alpha1.ParseDuration(c.StaleIfError)
	verdictTTL, _ = v1alpha1.ParseDuration(c.VerdictTTL)
	return staleIfError, verdictTTL
}

// validateEntry checks an entry's image globs and its authorities;
// authoritiesFor says what they sign, for the message of a missing list.
func validateEntry(p *field.Path, images []string, authorities []Authority, authoritiesFor string) field.ErrorList {
	var errs field.ErrorList
	if len(images) == 0 {
		errs = append(errs, field.Required(p.Child("images"), "the image globs this entry covers"))
	}
	for j, g := range images {
		if g == "" {
			errs = append(errs, field.Invalid(p.Child("images").Index(j), g, "an empty glob matches nothing"))
		}
	}
	if len(authorities) == 0 {
		errs = append(errs, field.Required(p.Child("authorities"), "who may sign "+authoritiesFor))
	}
	names := sets.New[string]()
	for j, a := range authorities {
		errs = append(errs, a.validate(p.Child("authorities").Index(j), names)...)
	}
	return errs
}

// covering returns the indexes of the entries whose image globs match ref.
func covering[E any](entries []E, images func(E) []string, ref string) []int {
	var out []int
	for i, e := range entries {
		if exemption.MatchesAny(images(e), ref) {
			out = append(out, i)
		}
	}
	return out
}
