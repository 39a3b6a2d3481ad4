// Package policies is podguard's engine: an Enforcer built from one policy
// judges (Validate) and fixes (Mutate) the pod spec of any supported object.
// It is pure Go over typed API objects: no HTTP, no client, no I/O, so the
// webhook and the offline CLI share it and can never disagree.
package policies

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/api/validation"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/exemption"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/rules"
)

// ErrUnsupported is returned for objects that carry no pod spec podguard knows.
var ErrUnsupported = errors.New("object kind carries no pod spec podguard judges")

// Attributes describe the request an object comes with.
type Attributes struct {
	// Namespace is the object's namespace (the request's, when the object
	// does not name one).
	Namespace string
	// User and Groups are the requesting user; empty offline.
	User   string
	Groups []string
	// Now is the time exemptions expire against; zero means time.Now().
	Now time.Time
	// EphemeralContainers, when not nil, limits judging and fixing to these
	// ephemeral containers (by name) and to container-level fields: the rest
	// of a running pod can no longer change.
	EphemeralContainers []string
	// Digests maps image references to the digests they resolve to, looked
	// up by the caller (the webhook asks the registries); imageDigest's fix
	// pins references with them. Nil offline: nothing is pinned.
	Digests map[string]string
	// ImageVerdicts are the verdicts of the caller's verification of the
	// images imageSignatures covers (see imagetrust); nil offline.
	ImageVerdicts imagetrust.Verdicts
	// ImageScans are the verdicts of the caller's verification of the scan
	// attestations imageVulnerabilities requires; nil offline.
	ImageScans imagetrust.Verdicts
	// ImageConfigs are what the images' configs declare, read by the
	// caller for runAsUser's imageUser check; nil offline.
	ImageConfigs map[string]imagetrust.ImageConfig
	// Rules, when not nil, limits judging to these rule IDs.
	Rules []string
	// MaxFindings, when above 0, keeps at most this many findings in each
	// list of the Result and counts the rest in Result.Omitted: a webhook
	// answering a pod of thousands of containers must bound its memory
	// and its response, not list every field.
	MaxFindings int
}

type compiledRule struct {
	rules.Rule
	action v1alpha1.Action
	mutate bool
}

// Enforcer applies one policy. It is safe for concurrent use.
type Enforcer struct {
	policy     *v1alpha1.Policy
	rules      []compiledRule
	exemptions []*exemption.Exemption
	exceptions []ExceptionState
}

// New builds an Enforcer from a defaulted, validated policy (see
// policies/api/load). It validates again, so a hand-built policy cannot
// slip through.
func New(p *v1alpha1.Policy) (*Enforcer, error) {
	if errs := validation.ValidatePolicy(p); len(errs) > 0 {
		return nil, fmt.Errorf("invalid policy: %w", errs.ToAggregate())
	}
	e := &Enforcer{policy: p}
	for _, r := range rules.Build(p) {
		s := p.Rules[r.ID]
		if s == nil {
			return nil, fmt.Errorf("the policy has no entry for rule %s (was it defaulted?)", r.ID)
		}
		e.rules = append(e.rules, compiledRule{Rule: r, action: rules.EffectiveAction(p, r.ID), mutate: rules.FixInForce(p, r.ID)})
	}
	ex, err := exemption.Compile(p.Exemptions)
	if err != nil {
		return nil, err
	}
	e.exemptions = ex
	return e, nil
}

// Policy returns the policy the Enforcer applies.
func (e *Enforcer) Policy() *v1alpha1.Policy { return e.policy }

// ActionOf returns a rule's action under the policy's mode ("" for an
// unknown rule): what a finding of it does.
func (e *Enforcer) ActionOf(rule string) v1alpha1.Action {
	for i := range e.rules {
		if e.rules[i].ID == rule {
			return e.rules[i].action
		}
	}
	if rule == "exemptions" {
		return v1alpha1.ActionWarn
	}
	return ""
}

// MutatesTemplates reports whether the policy asks the webhook to mutate
// workload pod templates, not only Pods.
func (e *Enforcer) MutatesTemplates() bool { return v1alpha1.Bool(e.policy.Mutation.Templates) }

// Validate judges an object as given.
func (e *Enforcer) Validate(obj runtime.Object, a Attributes) (*Result, error) {
	t, ok := podspec.Find(obj)
	if !ok {
		return nil, ErrUnsupported
	}
	return e.ValidateTarget(t, a), nil
}

// ValidateTarget judges the pod spec of an object already found: callers
// that judge one object several ways (the webhook) find it once.
func (e *Enforcer) ValidateTarget(t *podspec.Target, a Attributes) *Result {
	return e.validate(t, &a)
}

// Mutate fills the missing fields of obj in place and returns what it
// injected, in order. It never overwrites a set value.
func (e *Enforcer) Mutate(obj runtime.Object, a Attributes) ([]change.Change, error) {
	t, ok := podspec.Find(obj)
	if !ok {
		return nil, ErrUnsupported
	}
	return e.MutateTarget(t, a)
}

// MutateTarget is Mutate of a pod spec already found; t.Object is changed
// in place.
func (e *Enforcer) MutateTarget(t *podspec.Target, a Attributes) ([]change.Change, error) {
	res := &Result{}
	scope := e.newScope(t, &a, res)
	var out []change.Change
	for i := range e.rules {
		r := &e.rules[i]
		if !r.mutate || r.action == v1alpha1.ActionOff || !a.ruleSelected(r.ID) {
			continue
		}
		rt := scope.forRule(r.ID, res)
		if rt == nil {
			continue
		}
		for _, c := range r.Fix(rt) {
			c.Rule = r.ID
			if err := c.Apply(t.Object); err != nil {
				return out, fmt.Errorf("rule %s: %w", r.ID, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Admit judges an object as the cluster admits it. Pods are mutated, then
// judged. Workloads are judged on a mutated copy of their template: what
// mutation cannot fix is a violation; what it fixes becomes a warning
// saying what their pods will get. obj itself is never changed.
func (e *Enforcer) Admit(obj runtime.Object, a Attributes) (*Result, []change.Change, error) {
	t, ok := podspec.Find(obj)
	if !ok {
		return nil, nil, ErrUnsupported
	}
	return e.AdmitTarget(t, a)
}

// AdmitTarget is Admit of a pod spec already found. The object is copied
// once, for the mutation, and the copy found once.
func (e *Enforcer) AdmitTarget(t *podspec.Target, a Attributes) (*Result, []change.Change, error) {
	mutated := t.Object.DeepCopyObject()
	mt, _ := podspec.Find(mutated)
	changes, err := e.MutateTarget(mt, a)
	if err != nil {
		return nil, nil, err
	}
	after := e.validate(mt, &a)
	if !t.Template {
		return after, changes, nil
	}
	before := e.validate(t, &a)
	remaining := make(map[string]bool, len(after.Violations))
	for _, f := range after.Violations {
		remaining[f.Rule+"\x00"+f.Field] = true
	}
	var fixed []Finding
	for _, f := range before.Violations {
		if remaining[f.Rule+"\x00"+f.Field] {
			continue
		}
		f.Message += "; podguard injects the fix into the pods at admission"
		f.Injected = true
		fixed = append(fixed, f)
	}
	after.Warnings = append(fixed, after.Warnings...)
	return after, changes, nil
}

func (a *Attributes) ruleSelected(id string) bool {
	return a.Rules == nil || slices.Contains(a.Rules, id)
}

func (e *Enforcer) validate(t *podspec.Target, a *Attributes) *Result {
	res := &Result{}
	scope := e.newScope(t, a, res)
	for i := range e.rules {
		r := &e.rules[i]
		if r.action == v1alpha1.ActionOff || !a.ruleSelected(r.ID) {
			continue
		}
		rt := scope.forRule(r.ID, res)
		if rt == nil {
			continue
		}
		for _, f := range r.Check(rt) {
			list, omitted := &res.Violations, &res.Omitted.Violations
			switch {
			case r.action == v1alpha1.ActionAudit:
				list, omitted = &res.Audits, &res.Omitted.Audits
			case f.Advisory || r.action == v1alpha1.ActionWarn:
				list, omitted = &res.Warnings, &res.Omitted.Warnings
			}
			if a.MaxFindings > 0 && len(*list) >= a.MaxFindings {
				count(omitted, r.ID)
				continue
			}
			f.Rule = r.ID
			*list = append(*list, f)
		}
	}
	res.Allowed = len(res.Violations) == 0 && len(res.Omitted.Violations) == 0
	return res
}

// requestScope is what every rule of one call shares: the containers in
// scope and the exemptions that match this request, computed once.
type requestScope struct {
	t          *podspec.Target
	containers []podspec.Container
	ephemeral  bool
	active     []activeExemption
}

type activeExemption struct {
	*exemption.Exemption
	// matched lists the indexes (in containers) a container-scoped
	// exemption covers; nil for an exemption of the whole object.
	matched []int
}

// newScope finds the containers in scope and the exemptions that apply,
// and records expired exemptions in res.
func (e *Enforcer) newScope(t *podspec.Target, a *Attributes, res *Result) *requestScope {
	t.Namespace, t.Digests, t.ImageVerdicts, t.ImageScans, t.ImageConfigs = a.Namespace, a.Digests, a.ImageVerdicts, a.ImageScans, a.ImageConfigs
	if t.Now = a.Now; t.Now.IsZero() {
		t.Now = time.Now()
	}
	s := &requestScope{t: t, containers: t.Containers, ephemeral: a.EphemeralContainers != nil}
	if s.ephemeral {
		s.containers = nil
		for _, c := range t.Containers {
			if c.Kind == podspec.EphemeralContainer && slices.Contains(a.EphemeralContainers, c.Name) {
				s.containers = append(s.containers, c)
			}
		}
	}
	if len(e.exemptions) == 0 {
		return s
	}
	req := exemption.Request{Namespace: a.Namespace, User: a.User, Groups: a.Groups}
	obj := exemption.Object{Kind: t.Kind, PodLabels: t.PodMeta.Labels}
	if t.ObjectMeta != nil {
		obj.Name, obj.Owners = t.ObjectMeta.Name, t.ObjectMeta.OwnerReferences
	}
	var now time.Time
	for _, ex := range e.exemptions {
		if !ex.MatchesRequest(req, obj) {
			continue
		}
		ae := activeExemption{Exemption: ex}
		if ex.ContainerScoped() {
			for j, c := range s.containers {
				if ex.MatchesContainer(c.Name, c.Image) {
					ae.matched = append(ae.matched, j)
				}
			}
			if ae.matched == nil {
				continue
			}
		}
		if !ex.Until.IsZero() {
			if now.IsZero() {
				now = a.Now
				if now.IsZero() {
					now = time.Now()
				}
			}
			if ex.Expired(now) {
				res.noteExpired(ex)
				continue
			}
		}
		s.active = append(s.active, ae)
	}
	return s
}

// forRule returns the target one rule sees: nil when an exemption lifts the
// rule from the whole object, otherwise with exempt containers removed. It
// records the exemptions that applied in res.
func (s *requestScope) forRule(rule string, res *Result) *podspec.Target {
	if len(s.active) == 0 && !s.ephemeral {
		return s.t
	}
	containers := s.containers
	var drop []bool
	for i := range s.active {
		ex := &s.active[i]
		if !ex.Covers(rule) {
			continue
		}
		res.noteExempted(ex.Exemption, rule)
		if ex.matched == nil {
			return nil
		}
		if drop == nil {
			drop = make([]bool, len(containers))
		}
		for _, j := range ex.matched {
			drop[j] = true
		}
	}
	if drop != nil {
		kept := make([]podspec.Container, 0, len(containers))
		for j, c := range containers {
			if !drop[j] {
				kept = append(kept, c)
			}
		}
		containers = kept
	}
	if drop == nil && !s.ephemeral {
		return s.t
	}
	rt := *s.t
	rt.Containers = containers
	rt.ContainersOnly = s.ephemeral
	return &rt
}

func (r *Result) noteExempted(ex *exemption.Exemption, rule string) {
	id := rule
	if len(ex.Rules) == 0 {
		id = "*"
	}
	for _, x := range r.Exempted {
		if x.Rule == id && x.Reason == ex.Reason && x.Exception == ex.Exception {
			return
		}
	}
	r.Exempted = append(r.Exempted, Exempted{Rule: id, Reason: ex.Reason, Expires: ex.Expires, Exception: ex.Exception})
}

func (r *Result) noteExpired(ex *exemption.Exemption) {
	msg := fmt.Sprintf("%s (%s) expired at %s and no longer applies", ex.Source(), ex.Reason, ex.Until.Format(time.RFC3339))
	for _, w := range r.Warnings {
		if w.Message == msg {
			return
		}
	}
	f := Finding{Rule: "exemptions", Field: fmt.Sprintf("exemptions[%d].expires", ex.Index), Message: msg,
		Fix: "renew the exemption's expires in the policy, or make the object comply"}
	if ex.Exception != "" {
		f.Field, f.Fix = "spec.expires", "ask for the PodGuardException to be renewed (a new expires), or make the object comply"
	}
	r.Warnings = append(r.Warnings, f)
}
