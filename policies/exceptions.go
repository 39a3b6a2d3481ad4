package policies

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/api/validation"
	"podguard.dev/podguard/policies/exemption"
)

// Exception states.
const (
	// ExceptionActive: valid and not expired; it applies.
	ExceptionActive = "active"
	// ExceptionExpired: valid, past its expiry; it no longer applies.
	ExceptionExpired = "expired"
	// ExceptionIgnored: the policy does not allow it (a rule that may not
	// be excepted, an expiry too far away...); it never applies.
	ExceptionIgnored = "ignored"
)

// ExceptionState is what the engine made of one PodGuardException.
type ExceptionState struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Rules     []string `json:"rules"`
	Reason    string   `json:"reason"`
	Expires   string   `json:"expires"`
	// State is active, expired or ignored.
	State string `json:"state"`
	// Problem says why an ignored exception is ignored.
	Problem string `json:"problem,omitempty"`
	// Until is when it expires.
	Until time.Time `json:"-"`
}

// NewWithExceptions builds an Enforcer from a policy and the
// PodGuardExceptions of a cluster (or of files, offline): each exception
// the policy allows becomes an exemption of its own namespace, after the
// policy's own; the others are ignored, with why. now decides which have
// expired (for the states; requests check expiry at their own time).
func NewWithExceptions(p *v1alpha1.Policy, xs []v1alpha1.PodGuardException, now time.Time) (*Enforcer, []ExceptionState, error) {
	e, err := New(p)
	if err != nil {
		return nil, nil, err
	}
	states := make([]ExceptionState, 0, len(xs))
	for i := range xs {
		x := &xs[i]
		st := ExceptionState{Namespace: x.Namespace, Name: x.Name, Rules: x.Spec.Rules, Reason: x.Spec.Reason, Expires: x.Spec.Expires}
		if errs := validation.ValidateException(p, x, now); len(errs) > 0 {
			st.State, st.Problem = ExceptionIgnored, errs.ToAggregate().Error()
			states = append(states, st)
			continue
		}
		ex, err := exemption.FromException(x)
		if err != nil {
			st.State, st.Problem = ExceptionIgnored, err.Error()
			states = append(states, st)
			continue
		}
		st.Until, st.State = ex.Until, ExceptionActive
		if ex.Expired(now) {
			st.State = ExceptionExpired
		}
		e.exemptions = append(e.exemptions, ex)
		states = append(states, st)
	}
	slices.SortFunc(states, func(a, b ExceptionState) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	e.exceptions = states
	return e, states, nil
}

// Exceptions are the PodGuardExceptions the Enforcer was built with, and
// what it made of each.
func (e *Enforcer) Exceptions() []ExceptionState { return e.exceptions }

// ValidateException checks a PodGuardException against the Enforcer's
// policy at time now, as admission does: what the policy does not allow,
// and an expiry already past.
func (e *Enforcer) ValidateException(x *v1alpha1.PodGuardException, now time.Time) []string {
	var out []string
	for _, err := range validation.ValidateException(e.policy, x, now) {
		out = append(out, err.Error())
	}
	if until, err := v1alpha1.ParseExpiry(x.Spec.Expires); err == nil && !until.After(now) {
		out = append(out, fmt.Sprintf("spec.expires: %s is already past", x.Spec.Expires))
	}
	return out
}

// WithExceptions returns a copy of the policy whose exemptions include the
// exceptions the policy allows (active or expired), each as an exemption
// of its own namespace: for outputs that carry exemptions, not an
// Enforcer (the native export). Ignored exceptions are left out.
func WithExceptions(p *v1alpha1.Policy, xs []v1alpha1.PodGuardException, now time.Time) *v1alpha1.Policy {
	out := *p
	out.Exemptions = slices.Clone(p.Exemptions)
	for i := range xs {
		x := &xs[i]
		if len(validation.ValidateException(p, x, now)) > 0 {
			continue
		}
		ex := exemption.PolicyExemption(x)
		ex.Reason = fmt.Sprintf("PodGuardException %s/%s: %s", x.Namespace, x.Name, x.Spec.Reason)
		out.Exemptions = append(out.Exemptions, ex)
	}
	return &out
}
