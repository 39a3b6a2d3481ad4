// Package native turns a policy into Kubernetes' own admission objects:
// ValidatingAdmissionPolicies (CEL, evaluated inside kube-apiserver) with
// their bindings, and a MutatingAdmissionPolicy that injects what the
// policy's fixes inject. Each rule writes its own CEL (policies/rules);
// this package adds the variables, the exemptions, the messages and the
// objects. It is pure: a policy in, objects out, deterministic.
package native

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/api/validation"
	"podguard.dev/podguard/policies/rules"
)

// StaticSuffix ends the name of every object of a static manifest set
// (KEP-5793): kube-apiserver loads them from files, and the API refuses
// such names, so they cannot collide with API objects.
const StaticSuffix = ".static.k8s.io"

// Options shape an export.
type Options struct {
	// NamePrefix starts every object's name (default "podguard").
	NamePrefix string
	// Static names objects for a static manifest directory.
	Static bool
	// Now is when exemptions' expiry is judged; zero means time.Now().
	Now time.Time
	// ExcludeNamespaces are left out by the bindings' namespaceSelector,
	// as the webhook configurations leave them out (kube-system and
	// podguard's own namespace by default).
	ExcludeNamespaces []string
	// OptOutLabel, when set, leaves out namespaces labelled with it set to "true".
	OptOutLabel string
}

// Export is the result of an export.
type Export struct {
	ValidatingPolicies []admissionregistrationv1.ValidatingAdmissionPolicy
	ValidatingBindings []admissionregistrationv1.ValidatingAdmissionPolicyBinding
	MutatingPolicies   []admissionregistrationv1.MutatingAdmissionPolicy
	MutatingBindings   []admissionregistrationv1.MutatingAdmissionPolicyBinding
	// WebhookOnly lists what only the webhook does, with why: rules without
	// a CEL form, fixes not exported, requests the native objects do not see.
	WebhookOnly []WebhookOnly
	// Notes are what the exporter must tell the user (exemptions exported
	// only until they expire, or left out because they have).
	Notes []string
}

// WebhookOnly is a part of the policy only the webhook enforces.
type WebhookOnly struct {
	// Rule is the rule ID, or "" for a kind of request.
	Rule   string
	Reason string
}

// shape is a kind of object whose pod spec sits at one path.
type shape struct {
	name      string
	resources []admissionregistrationv1.NamedRuleWithOperations
	spec      string // CEL for the pod spec
	meta      string // CEL for the pod's metadata
	specPath  string
	jobPod    string
	changed   string // CEL: an UPDATE changes what is judged
	mode      rules.NativeMode
}

func ruleFor(group, version string, resources ...string) admissionregistrationv1.NamedRuleWithOperations {
	return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{version}, Resources: resources},
	}}
}

var shapes = []shape{
	{name: "pods", resources: []admissionregistrationv1.NamedRuleWithOperations{ruleFor("", "v1", "pods")},
		spec: "object.spec", meta: "object.metadata", specPath: "spec",
		jobPod:  "object.metadata.?ownerReferences.orValue([]).exists(r, r.kind == 'Job' && (r.apiVersion == 'batch/v1' || r.apiVersion == 'batch/v1beta1'))",
		changed: "object.spec != oldObject.spec || object.metadata.?annotations != oldObject.metadata.?annotations", mode: rules.AsSubmitted},
	{name: "workloads", resources: []admissionregistrationv1.NamedRuleWithOperations{
		ruleFor("apps", "v1", "deployments", "replicasets", "statefulsets", "daemonsets"), ruleFor("batch", "v1", "jobs"), ruleFor("", "v1", "replicationcontrollers")},
		spec: "object.spec.template.spec", meta: "object.spec.template.metadata", specPath: "spec.template.spec", jobPod: "object.kind == 'Job'",
		changed: "object.spec.template != oldObject.spec.template", mode: rules.AsAdmitted},
	{name: "cronjobs", resources: []admissionregistrationv1.NamedRuleWithOperations{ruleFor("batch", "v1", "cronjobs")},
		spec: "object.spec.jobTemplate.spec.template.spec", meta: "object.spec.jobTemplate.spec.template.metadata", specPath: "spec.jobTemplate.spec.template.spec",
		jobPod: "true", changed: "object.spec.jobTemplate.spec.template != oldObject.spec.jobTemplate.spec.template", mode: rules.AsAdmitted},
	{name: "podtemplates", resources: []admissionregistrationv1.NamedRuleWithOperations{ruleFor("", "v1", "podtemplates")},
		spec: "object.template.spec", meta: "object.template.metadata", specPath: "template.spec", jobPod: "false",
		changed: "object.template != oldObject.template", mode: rules.AsAdmitted},
}

// Build exports a defaulted, validated policy.
func Build(p *v1alpha1.Policy, o Options) (*Export, error) {
	if errs := validation.ValidatePolicy(p); len(errs) > 0 {
		return nil, fmt.Errorf("invalid policy: %w", errs.ToAggregate())
	}
	if o.NamePrefix == "" {
		o.NamePrefix = "podguard"
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	out := &Export{}
	exemptions, notes, err := exportedExemptions(p, now)
	if err != nil {
		return nil, err
	}
	out.Notes = notes
	injections := map[string][]rules.Injection{}
	var order []string
	mutatedRules := map[string]bool{}
	for _, d := range rules.Definitions() {
		n := d.Native(p, rules.AsSubmitted)
		action := rules.EffectiveAction(p, d.ID)
		if n.WebhookOnly != "" && action != v1alpha1.ActionOff {
			out.WebhookOnly = append(out.WebhookOnly, WebhookOnly{Rule: d.ID, Reason: n.WebhookOnly})
		}
		if n.MutationWebhookOnly != "" {
			out.WebhookOnly = append(out.WebhookOnly, WebhookOnly{Rule: d.ID, Reason: "its fix is on, but " + n.MutationWebhookOnly})
		}
		if len(n.Inject) > 0 {
			injections[d.ID] = n.Inject
			order = append(order, d.ID)
			mutatedRules[d.ID] = true
		}
	}
	mutation, needed, err := mutationExpression(injections, order, exemptions)
	if err != nil {
		return nil, err
	}
	out.WebhookOnly = append(out.WebhookOnly,
		WebhookOnly{Reason: "new ephemeral containers (pods/ephemeralcontainers) and resizes (pods/resize): subresource requests are judged and filled in by the webhook only"},
		WebhookOnly{Reason: "warnings name every field and fix; a native denial names the first failing rule only"})
	if v1alpha1.Bool(p.Exceptions.Enabled) {
		out.WebhookOnly = append(out.WebhookOnly, WebhookOnly{Reason: "PodGuardExceptions created in the cluster apply through the webhook only; podguard export --exceptions PATH writes a given set into the exported policies"})
	}

	for _, sh := range shapes {
		for _, action := range []v1alpha1.Action{v1alpha1.ActionEnforce, v1alpha1.ActionWarn, v1alpha1.ActionAudit} {
			vap := policyFor(p, sh, action, exemptions, o)
			if vap == nil {
				continue
			}
			out.ValidatingPolicies = append(out.ValidatingPolicies, *vap)
			out.ValidatingBindings = append(out.ValidatingBindings, bindingFor(vap.Name, action, o))
		}
		// What the Pod mutation will fix in a template is a warning now.
		if sh.mode == rules.AsAdmitted {
			if vap := injectedWarnings(p, sh, exemptions, mutatedRules, o); vap != nil {
				out.ValidatingPolicies = append(out.ValidatingPolicies, *vap)
				out.ValidatingBindings = append(out.ValidatingBindings, bindingFor(vap.Name, v1alpha1.ActionWarn, o))
			}
		}
	}
	if mutation != "" {
		name := o.name("mutate-pods")
		mapVars := variables(shapes[0], exemptions, slices.Sorted(maps.Keys(mutatedRules))...)
		out.MutatingPolicies = append(out.MutatingPolicies, admissionregistrationv1.MutatingAdmissionPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels()},
			Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
					}}}},
				// Skipped, at almost no cost, for a Pod that needs nothing:
				// a mutation costs kube-apiserver a conversion of the object.
				MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "something-to-fill-in",
					Expression: inline(needed, mapVars)}},
				Variables: mapVars,
				Mutations: []admissionregistrationv1.Mutation{{PatchType: admissionregistrationv1.PatchTypeJSONPatch,
					JSONPatch: &admissionregistrationv1.JSONPatch{Expression: mutation}}},
				FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
				ReinvocationPolicy: admissionregistrationv1.IfNeededReinvocationPolicy,
			},
		})
		out.MutatingBindings = append(out.MutatingBindings, admissionregistrationv1.MutatingAdmissionPolicyBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels()},
			Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: name, MatchResources: o.matchResources()},
		})
	}
	return out, nil
}

func labels() map[string]string {
	return map[string]string{"app.kubernetes.io/managed-by": "podguard-export"}
}

func (o Options) name(s string) string {
	n := o.NamePrefix + "-" + s
	if o.Static {
		n += StaticSuffix
	}
	return n
}

func (o Options) matchResources() *admissionregistrationv1.MatchResources {
	var exprs []metav1.LabelSelectorRequirement
	if len(o.ExcludeNamespaces) > 0 {
		exprs = append(exprs, metav1.LabelSelectorRequirement{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: slices.Sorted(slices.Values(o.ExcludeNamespaces))})
	}
	if o.OptOutLabel != "" {
		exprs = append(exprs, metav1.LabelSelectorRequirement{Key: o.OptOutLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"true"}})
	}
	if len(exprs) == 0 {
		return nil
	}
	return &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: exprs}}
}

func bindingFor(policy string, action v1alpha1.Action, o Options) admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	va := map[v1alpha1.Action]admissionregistrationv1.ValidationAction{
		v1alpha1.ActionEnforce: admissionregistrationv1.Deny, v1alpha1.ActionWarn: admissionregistrationv1.Warn, v1alpha1.ActionAudit: admissionregistrationv1.Audit,
	}[action]
	return admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: policy, Labels: labels()},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: policy, ValidationActions: []admissionregistrationv1.ValidationAction{va}, MatchResources: o.matchResources(),
		},
	}
}

// policyFor is the ValidatingAdmissionPolicy of one shape and one action:
// every rule with that action and a CEL form.
func policyFor(p *v1alpha1.Policy, sh shape, action v1alpha1.Action, ex []exportedExemption, o Options) *admissionregistrationv1.ValidatingAdmissionPolicy {
	var validations []admissionregistrationv1.Validation
	var ruleIDs []string
	natives := map[string]rules.Native{}
	for _, d := range rules.Definitions() {
		if rules.EffectiveAction(p, d.ID) != action {
			continue
		}
		n := d.Native(p, sh.mode)
		if n.WebhookOnly != "" {
			continue
		}
		validations = append(validations, validationOf(d.ID, n, ex, ""))
		ruleIDs = append(ruleIDs, d.ID)
		natives[d.ID] = n
	}
	if len(validations) == 0 {
		return nil
	}
	if action == v1alpha1.ActionEnforce {
		v := combine(validations)
		v.Expression = fused(ruleIDs, natives, ex)
		validations = []admissionregistrationv1.Validation{v}
	}
	return vap(o.name(fmt.Sprintf("%s-%s", sh.name, action)), sh, validations, variables(sh, ex, ruleIDs...), fmt.Sprintf("%s: rules %s", action, strings.Join(ruleIDs, ", ")))
}

// combine makes one validation of several: kube-apiserver reports only the
// first failing validation of a denying policy anyway, and one expression
// evaluates in about a third of the time of the same checks as separate
// validations. The message names the first failing rule, in rule order.
func combine(vs []admissionregistrationv1.Validation) admissionregistrationv1.Validation {
	exprs := make([]string, len(vs))
	msg := "''"
	for i := len(vs) - 1; i >= 0; i-- {
		exprs[i] = "(" + vs[i].Expression + ")"
		msg = fmt.Sprintf("!%s ? %s : %s", exprs[i], vs[i].MessageExpression, msg)
	}
	return admissionregistrationv1.Validation{Expression: strings.Join(exprs, " && "), MessageExpression: msg, Reason: vs[0].Reason}
}

// fused is the expression of several rules' validations with one walk over
// the containers instead of one per rule: kube-apiserver's CEL evaluation
// costs per node visited and per list walked, and it is most of what a
// native policy costs it. Rules under the same request-level exemptions
// share one test of them. lifted || (pod && all(c, x)) holds exactly when
// (lifted || pod) && all(c, lifted || x) does, so the decision is that of
// the rules' own expressions (validationOf), which the message still uses.
func fused(ids []string, natives map[string]rules.Native, ex []exportedExemption) string {
	type group struct {
		lifted             string
		pods, all, regular []string
	}
	var groups []*group
	byLifted := map[string]*group{}
	for _, id := range ids {
		n := natives[id]
		key := ""
		if hasLifted(id, ex) {
			key = liftedVar(id, ex)
		}
		g := byLifted[key]
		if g == nil {
			g = &group{lifted: key}
			byLifted[key] = g
			groups = append(groups, g)
		}
		if n.Pod != "" {
			g.pods = append(g.pods, "("+subst(n.Pod, id, ex)+")")
		}
		if n.Container != "" {
			term := "(" + n.Container + ")"
			if exemptContainersExpr(id, ex) != "" {
				term = "(" + subst(fmt.Sprintf("$exempt(c) || (%s)", n.Container), id, ex) + ")"
			}
			if n.Regular {
				g.regular = append(g.regular, term)
			} else {
				g.all = append(g.all, term)
			}
		}
	}
	var out []string
	for _, g := range groups {
		parts := append([]string(nil), g.pods...)
		if len(g.all) > 0 {
			parts = append(parts, fmt.Sprintf("variables.containers.all(c, %s)", strings.Join(g.all, " && ")))
		}
		if len(g.regular) > 0 {
			parts = append(parts, fmt.Sprintf("variables.spec.containers.all(c, %s)", strings.Join(g.regular, " && ")))
		}
		expr := strings.Join(parts, " && ")
		if g.lifted != "" {
			expr = fmt.Sprintf("variables.%s || (%s)", g.lifted, expr)
		}
		out = append(out, "("+expr+")")
	}
	return strings.Join(out, " && ")
}

// injectedWarnings warns, on a template, about what the Pod mutation will
// fix, as the webhook does ("podguard injects the fix into the pods").
func injectedWarnings(p *v1alpha1.Policy, sh shape, ex []exportedExemption, mutated map[string]bool, o Options) *admissionregistrationv1.ValidatingAdmissionPolicy {
	var validations []admissionregistrationv1.Validation
	var ids []string
	for _, d := range rules.Definitions() {
		if !mutated[d.ID] || rules.EffectiveAction(p, d.ID) == v1alpha1.ActionOff {
			continue
		}
		validations = append(validations, validationOf(d.ID, d.Native(p, rules.AsSubmitted), ex, "; podguard injects the fix into the pods at admission"))
		ids = append(ids, d.ID)
	}
	if len(validations) == 0 {
		return nil
	}
	return vap(o.name(sh.name+"-injected"), sh, validations, variables(sh, ex, ids...), "warnings: what Pod mutation will fill in")
}

func vap(name string, sh shape, validations []admissionregistrationv1.Validation, vars []admissionregistrationv1.Variable, what string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels(), Annotations: map[string]string{"podguard.dev/rules": what}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: sh.resources},
			// UPDATEs that leave what is judged as it was are allowed, so
			// objects from before the policy stay manageable.
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "judged-content-changed", Expression: "request.operation == 'CREATE' || " + sh.changed}},
			Variables:       vars,
			Validations:     validations,
		},
	}
}

// variables are the shared variables of a shape, then each rule's
// exemption variables.
func variables(sh shape, ex []exportedExemption, ruleIDs ...string) []admissionregistrationv1.Variable {
	vars := []admissionregistrationv1.Variable{
		{Name: "spec", Expression: sh.spec},
		{Name: "meta", Expression: sh.meta},
		{Name: "specPath", Expression: fmt.Sprintf("%q", sh.specPath)},
		{Name: "containers", Expression: "variables.spec.?initContainers.orValue([]) + variables.spec.containers"},
		{Name: "windows", Expression: "variables.spec.?os.?name.orValue('') == 'windows'"},
		{Name: "jobPod", Expression: sh.jobPod},
	}
	seen := map[string]bool{}
	for _, id := range ruleIDs {
		if l := liftedExpr(id, ex); l != "false" && !seen[liftedVar(id, ex)] {
			seen[liftedVar(id, ex)] = true
			vars = append(vars, admissionregistrationv1.Variable{Name: liftedVar(id, ex), Expression: l})
		}
		if c := exemptContainersExpr(id, ex); c != "" && !seen[exemptVar(id, ex)] {
			seen[exemptVar(id, ex)] = true
			vars = append(vars, admissionregistrationv1.Variable{Name: exemptVar(id, ex), Expression: c})
		}
	}
	return vars
}

// validationOf wraps a rule's CEL with its exemptions and its message.
func validationOf(id string, n rules.Native, ex []exportedExemption, suffix string) admissionregistrationv1.Validation {
	pod, container := subst(n.Pod, id, ex), n.Container
	if pod == "" {
		pod = "true"
	}
	list := "variables.containers"
	if n.Regular {
		list = "variables.spec.containers"
	}
	var parts []string
	if n.Pod != "" {
		parts = append(parts, "("+pod+")")
	}
	failing := ""
	if container != "" {
		ok := subst(fmt.Sprintf("$exempt(c) || (%s)", container), id, ex)
		parts = append(parts, fmt.Sprintf("%s.all(c, %s)", list, ok))
		failing = fmt.Sprintf("%s.filter(c, !(%s)).map(c, c.name).join(', ')", list, ok)
	}
	expr := strings.Join(parts, " && ")
	if hasLifted(id, ex) {
		expr = fmt.Sprintf("variables.%s || (%s)", liftedVar(id, ex), expr)
	}
	msg := fmt.Sprintf("'podguard %s: ' + ", id)
	switch {
	case n.Pod != "" && container != "":
		msg += fmt.Sprintf("(!(%s) ? (%s) : 'containers ' + %s + ' ' + (%s))", pod, n.PodMessage, failing, n.ContainerMessage)
	case n.Pod != "":
		msg += "(" + n.PodMessage + ")"
	default:
		msg += fmt.Sprintf("'containers ' + %s + ' ' + (%s)", failing, n.ContainerMessage)
	}
	if suffix != "" {
		msg += " + " + fmt.Sprintf("%q", suffix)
	}
	return admissionregistrationv1.Validation{Expression: expr, MessageExpression: msg, Reason: ptr.To(metav1.StatusReasonInvalid)}
}

var exemptRE = regexp.MustCompile(`\$exempt\((\w+)\)`)

// subst replaces $exempt(x) with the rule's container exemption test.
func subst(expr, id string, ex []exportedExemption) string {
	if exemptContainersExpr(id, ex) == "" {
		return exemptRE.ReplaceAllString(expr, "false")
	}
	return exemptRE.ReplaceAllString(expr, fmt.Sprintf("($1.name in variables.%s)", exemptVar(id, ex)))
}
