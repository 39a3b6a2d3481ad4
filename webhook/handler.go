// Package webhook is podguard's admission server: thin controller-runtime
// adapters from AdmissionReviews to the policies engine, and the wiring of
// the webhook server, certificates, policy reload, metrics and health.
package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook/imageverify"
)

// Endpoint paths, a contract with the webhook configurations.
const (
	MutatePath   = "/mutate"
	ValidatePath = "/validate"
)

// Bounds on what one answer may hold, whatever the request: a pod with
// thousands of containers gets a complete decision and an answer of bounded
// size, never one that grows with every field of every container.
const (
	// maxWarningLength keeps each warning under the API server's limit of
	// 256 characters (longer ones are cut by it, possibly mid-word).
	maxWarningLength = 250
	// maxInjectedWarningLength bounds the one warning that lists what
	// mutation injects into a workload's pods.
	maxInjectedWarningLength = 600
	// maxWarnings is how many findings get a warning line of their own; one
	// more line counts the rest. With the line of what mutation injects, the
	// warnings stay under the 4096 characters beyond which the API server
	// cuts every warning to 256: 600 + 12 × 250 + 100.
	maxWarnings = 12
	// maxFindings is how many findings of each kind (violations, warnings,
	// audits) a request keeps; the rest are counted.
	maxFindings = 100
	// maxCauses is how many violations a denial lists as causes; one more
	// cause then counts the rest and points to podguard validate.
	maxCauses = 50
	// maxFindingText caps a finding's message and fix, which can quote
	// values from the object (capability names, images).
	maxFindingText = 300
	// maxAnnotation caps each audit annotation's value.
	maxAnnotation = 2048
	// maxLogValue caps each request value written to a log line.
	maxLogValue = 256
)

// Handler serves one endpoint: mutation or validation.
type Handler struct {
	Store   *PolicyStore
	Log     logr.Logger
	Metrics *Metrics
	// Events, when set, records Kubernetes Events for denials and for
	// injections into Pods.
	Events *Events
	// Digests, when set, resolves image references for imageDigest's fix
	// (mutating endpoint), each admission within DigestBudget.
	Digests      *DigestResolver
	DigestBudget time.Duration
	// Images, when set, verifies the signatures imageSignatures requires
	// (validating endpoint), each admission within ImageBudget; tags are
	// resolved with Digests, from this endpoint's own lookups: nothing the
	// mutating webhook wrote is taken on trust.
	Images      *imageverify.Verifier
	ImageBudget time.Duration
	// PullSecrets, when set, presents the pod's own imagePullSecrets to
	// registries for Digests and Images.
	PullSecrets *PullSecrets
	// Mutating selects the mutating endpoint's behaviour.
	Mutating bool
	// Decisions selects which decisions are logged: LogDecisionsAll (the
	// zero value), LogDecisionsDenied or LogDecisionsNone.
	Decisions string
}

// Which decisions are logged (--log-decisions).
const (
	// LogDecisionsAll logs every decision.
	LogDecisionsAll = "all"
	// LogDecisionsDenied logs denials and refused requests only.
	LogDecisionsDenied = "denied"
	// LogDecisionsNone logs no decision.
	LogDecisionsNone = "none"
)

var _ admission.Handler = &Handler{}

// decision is what one request came to, for the log line and the metrics.
type decision struct {
	result  string // allowed, denied, mutated, error
	reason  string
	refusal string // a refusal reason label, for errors of form
	res     *policies.Result
	changes []change.Change // what a mutation injected
	// meta is the object's metadata, once decoded.
	meta metav1.Object
}

// Handle implements admission.Handler. It never panics on bad input: every
// failure becomes an error response (the webhook also recovers panics).
func (h *Handler) Handle(_ context.Context, req admission.Request) admission.Response {
	return h.handle(req, nil)
}

// handle decides one request; obj is the request's object when it was
// already decoded, or nil to decode it from req.Object.Raw.
func (h *Handler) handle(req admission.Request, obj runtime.Object) admission.Response {
	start := time.Now()
	resp, d := h.decide(req, obj)
	h.record(req, d, time.Since(start))
	h.Events.emit(req, d, h.Mutating)
	return resp
}

// decide does what both endpoints share (kind, operation, object), then
// the endpoint's own work.
func (h *Handler) decide(req admission.Request, obj runtime.Object) (admission.Response, decision) {
	gk := groupKind(req)
	if gk == exceptionKind {
		return h.exception(req)
	}
	if err := checkKind(gk); err != nil {
		return errored(http.StatusBadRequest, err)
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allowed("operation not judged")
	}
	obj, err := objectOf(gk, req, obj)
	if err != nil {
		resp, d := errored(http.StatusBadRequest, err)
		if _, ok := err.(*kindMismatch); ok {
			d.refusal = refusedKindMismatch
		}
		return resp, d
	}
	// The pod-spec view of the object, found once and handed on: every
	// step of the request reads it (what to fix, what to judge, whether an
	// update changed it, the name for the denial).
	t, ok := podspec.Find(obj)
	if !ok {
		return errored(http.StatusBadRequest, fmt.Errorf("the %s carries no pod spec podguard can read", gk.Kind))
	}
	var resp admission.Response
	var d decision
	if h.Mutating {
		resp, d = h.mutate(req, gk, t)
	} else {
		resp, d = h.validate(req, gk, t)
	}
	d.meta = t.ObjectMeta
	return resp, d
}

func (h *Handler) endpoint() string {
	if h.Mutating {
		return "mutate"
	}
	return "validate"
}

func errored(code int32, err error) (admission.Response, decision) {
	return admission.Errored(code, err), decision{result: "error", reason: err.Error()}
}

func allowed(reason string) (admission.Response, decision) {
	return admission.Allowed(""), decision{result: "allowed", reason: reason}
}

// objectOf returns the request's object (the one already decoded, if any)
// after checking that it is of the kind the request names: a privileged Pod
// sent as a Deployment would otherwise be read as an empty Deployment.
func objectOf(gk schema.GroupKind, req admission.Request, decoded runtime.Object) (runtime.Object, error) {
	obj := decoded
	if obj == nil {
		var err error
		if obj, err = decode(gk, req.Object.Raw); err != nil {
			return nil, err
		}
	}
	got := obj.GetObjectKind().GroupVersionKind()
	if got.Kind != gk.Kind || got.Group != gk.Group {
		return nil, &kindMismatch{fmt.Errorf("the object is %s %q, the request says %s %s: refusing to judge one kind as another",
			truncate(got.GroupVersion().String(), maxLogValue), truncate(got.Kind, maxLogValue), req.Kind.Group+"/"+req.Kind.Version, req.Kind.Kind)}
	}
	return obj, nil
}

// kindMismatch is an object whose apiVersion and kind differ from the request's.
type kindMismatch struct{ error }

func groupKind(req admission.Request) schema.GroupKind {
	return schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
}

func attributes(req admission.Request) policies.Attributes {
	return policies.Attributes{Namespace: req.Namespace, User: req.UserInfo.Username, Groups: req.UserInfo.Groups, MaxFindings: maxFindings}
}

// newEphemeralContainers names the ephemeral containers the update adds:
// existing ones cannot change, so only new ones are judged and fixed.
func newEphemeralContainers(req admission.Request, pod *corev1.Pod) ([]string, error) {
	old := &corev1.Pod{}
	if len(req.OldObject.Raw) > 0 {
		// Through decode, like every object of a request: its errors
		// never quote the input, which may hold an env value.
		o, err := decode(schema.GroupKind{Kind: "Pod"}, req.OldObject.Raw)
		if err != nil {
			return nil, fmt.Errorf("old object: %w", err)
		}
		old = o.(*corev1.Pod)
	}
	names := []string{}
	for _, ec := range pod.Spec.EphemeralContainers {
		if !slices.ContainsFunc(old.Spec.EphemeralContainers, func(o corev1.EphemeralContainer) bool { return o.Name == ec.Name }) {
			names = append(names, ec.Name)
		}
	}
	return names, nil
}

// templateUnchanged reports whether an UPDATE leaves the pod spec (and the
// pod metadata's annotations, where AppArmor profiles live) as it was.
func templateUnchanged(gk schema.GroupKind, req admission.Request, nt *podspec.Target) (bool, error) {
	old, err := decode(gk, req.OldObject.Raw)
	if err != nil {
		return false, fmt.Errorf("old object: %w", err)
	}
	ot, ok := podspec.Find(old)
	if !ok {
		return false, nil
	}
	return equality.Semantic.DeepEqual(ot.Spec, nt.Spec) && equality.Semantic.DeepEqual(ot.PodMeta.Annotations, nt.PodMeta.Annotations), nil
}

// checkKind refuses requests for kinds podguard does not judge: only a
// misconfigured webhook configuration or a hand-made request sends them.
func checkKind(gk schema.GroupKind) error {
	if gk.Kind == "" {
		return fmt.Errorf("the request names no kind")
	}
	if _, ok := podspec.NewObject(gk); !ok {
		return fmt.Errorf("kind %s is not one podguard judges; check the webhook configuration's rules", gk)
	}
	return nil
}

// unchangedUpdate answers an UPDATE that leaves the pod spec (or template)
// as it was: allowed, so objects from before podguard stay manageable.
func unchangedUpdate(gk schema.GroupKind, req admission.Request, t *podspec.Target) (admission.Response, decision, bool) {
	if req.Operation != admissionv1.Update {
		return admission.Response{}, decision{}, false
	}
	same, err := templateUnchanged(gk, req, t)
	if err != nil {
		resp, d := errored(http.StatusBadRequest, err)
		return resp, d, true
	}
	if same {
		resp, d := allowed("pod spec unchanged")
		return resp, d, true
	}
	return admission.Response{}, decision{}, false
}

func (h *Handler) mutate(req admission.Request, gk schema.GroupKind, t *podspec.Target) (admission.Response, decision) {
	var err error
	enf := h.Store.Enforcer()
	attrs := attributes(req)
	if gk.Kind == "Pod" && gk.Group == "" {
		switch {
		case req.SubResource == "ephemeralcontainers":
			if attrs.EphemeralContainers, err = newEphemeralContainers(req, t.Object.(*corev1.Pod)); err != nil {
				return errored(http.StatusBadRequest, err)
			}
			if len(attrs.EphemeralContainers) == 0 {
				return allowed("no new ephemeral container")
			}
		case req.SubResource != "" || req.Operation != admissionv1.Create:
			return allowed("pods are mutated on create only")
		}
	} else {
		if !enf.MutatesTemplates() {
			return allowed("templates are not mutated (policy mutation.templates: false)")
		}
		if resp, d, done := unchangedUpdate(gk, req, t); done {
			return resp, d
		}
	}
	if h.Digests != nil && rules.FixInForce(enf.Policy(), "imageDigest") {
		if refs := UnpinnedImages(t, attrs.EphemeralContainers); len(refs) > 0 {
			// The registry's answer, within a budget well inside the
			// webhook's timeout; what it cannot answer stays unpinned.
			ctx, cancel := context.WithTimeout(context.Background(), h.DigestBudget)
			ctx = h.PullSecrets.With(ctx, attrs.Namespace, t.Spec)
			attrs.Digests = h.Digests.Resolve(ctx, refs)
			cancel()
		}
	}
	changes, err := enf.MutateTarget(t, attrs)
	if err != nil {
		return errored(http.StatusInternalServerError, err)
	}
	if len(changes) == 0 {
		return allowed("nothing to inject")
	}
	patch, err := change.JSONPatch(changes)
	if err != nil {
		return errored(http.StatusInternalServerError, err)
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp := admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt}}
	return resp, decision{result: "mutated", changes: changes}
}

func (h *Handler) validate(req admission.Request, gk schema.GroupKind, t *podspec.Target) (admission.Response, decision) {
	var err error
	enf := h.Store.Enforcer()
	attrs := attributes(req)
	var res *policies.Result
	var changes []change.Change
	if gk.Kind == "Pod" && gk.Group == "" {
		switch req.SubResource {
		case "":
			if resp, d, done := unchangedUpdate(gk, req, t); done {
				return resp, d
			}
		case "ephemeralcontainers":
			if attrs.EphemeralContainers, err = newEphemeralContainers(req, t.Object.(*corev1.Pod)); err != nil {
				return errored(http.StatusBadRequest, err)
			}
			if len(attrs.EphemeralContainers) == 0 {
				return allowed("no new ephemeral container")
			}
		default:
			// Other subresources carry what some rules judge (pods/resize:
			// resources): those rules, as their definitions say.
			if attrs.Rules = rules.ForSubresource(req.SubResource); len(attrs.Rules) == 0 {
				return allowed("subresource not validated")
			}
		}
		h.verifyImages(enf, t, &attrs)
		res = enf.ValidateTarget(t, attrs)
	} else {
		if resp, d, done := unchangedUpdate(gk, req, t); done {
			return resp, d
		}
		h.verifyImages(enf, t, &attrs)
		// Workloads are judged as admitted: what Pod mutation will fix is a
		// warning now; what nothing can fix is denied now, not in ReplicaSet events.
		res, changes, err = enf.AdmitTarget(t, attrs)
	}
	if err != nil {
		return errored(http.StatusInternalServerError, err)
	}
	return respond(gk, req.Name, t, res, changes, enf.Policy().HelpURL), decision{result: map[bool]string{true: "allowed", false: "denied"}[res.Allowed], res: res}
}

// verifyImages verifies, within ImageBudget, what VerifyImages does, and
// hands the verdicts to the engine.
func (h *Handler) verifyImages(enf *policies.Enforcer, t *podspec.Target, attrs *policies.Attributes) {
	if h.Images == nil || (attrs.Rules != nil && !slices.ContainsFunc(attrs.Rules, func(r string) bool {
		return r == "imageSignatures" || r == "imageVulnerabilities" || r == "runAsUser"
	})) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.ImageBudget)
	defer cancel()
	ctx = h.PullSecrets.With(ctx, attrs.Namespace, t.Spec)
	VerifyImages(ctx, h.Digests, h.Images, enf.Policy(), t, attrs.EphemeralContainers).Apply(attrs)
}

// respond turns a result into an admission response: every violation as a
// cause of an Invalid status, warnings as messages.go writes them (changes
// are what mutation injects into a workload's pods), audits as audit
// annotations.
func respond(gk schema.GroupKind, name string, t *podspec.Target, res *policies.Result, changes []change.Change, helpURL string) admission.Response {
	var resp admission.Response
	omittedWarnings := 0
	for _, n := range res.Omitted.Warnings {
		omittedWarnings += n
	}
	if res.Allowed {
		resp = admission.Allowed("")
		resp.Warnings = warnings(res.Warnings, changes, omittedWarnings, helpURL)
	} else {
		if name == "" {
			name = t.ObjectMeta.Name
			if name == "" {
				name = t.ObjectMeta.GenerateName
			}
		}
		omitted := 0
		for _, n := range res.Omitted.Violations {
			omitted += n
		}
		st := invalid(gk, truncate(name, maxLogValue), res.Violations, omitted, res.Warnings, omittedWarnings, helpURL)
		resp = admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: st}}
	}
	if len(res.Audits) > 0 || len(res.Exempted) > 0 {
		resp.AuditAnnotations = map[string]string{}
		for rule, fs := range byRule(res.Audits) {
			var parts []string
			for _, f := range fs {
				parts = append(parts, f.Field+": "+f.Message)
			}
			if n := res.Omitted.Audits[rule]; n > 0 {
				parts = append(parts, fmt.Sprintf("and %d more", n))
			}
			resp.AuditAnnotations[rule] = truncate(strings.Join(parts, "; "), maxAnnotation)
		}
		var ex []string
		for _, x := range res.Exempted {
			ex = append(ex, x.Rule+": "+x.Reason)
		}
		if len(ex) > 0 {
			resp.AuditAnnotations["exempted"] = truncate(strings.Join(ex, "; "), maxAnnotation)
		}
	}
	return resp
}

func byRule(fs []policies.Finding) map[string][]policies.Finding {
	out := map[string][]policies.Finding{}
	for _, f := range fs {
		out[f.Rule] = append(out[f.Rule], f)
	}
	return out
}

// record writes the decision's metrics and its log line.
func (h *Handler) record(req admission.Request, d decision, took time.Duration) {
	h.recordMetrics(req, d, took)
	switch {
	case h.Decisions == LogDecisionsNone:
	case d.result == "error":
		h.Log.Info("request refused", h.logValues(req, d, took)...)
	case h.Decisions == LogDecisionsDenied && d.result != "denied":
	default:
		h.Log.Info("admission decision", h.logValues(req, d, took)...)
	}
}

// recordMetrics counts the request and each finding and injection, by
// labels from fixed sets, in the current metrics and in the deprecated
// podguard_decisions_total (kept for one release).
func (h *Handler) recordMetrics(req admission.Request, d decision, took time.Duration) {
	kind := label(labelKinds, req.Kind.Kind)
	op := label(labelOperations, string(req.Operation))
	sub := label(labelSubresources, req.SubResource)
	legacyOp := op
	if sub != "" {
		legacyOp += "/" + sub
	}
	ep := h.endpoint()
	h.Metrics.Latency.WithLabelValues(ep, kind).Observe(took.Seconds())
	h.Metrics.Requests.WithLabelValues(ep, kind, op, sub, d.result).Inc()
	h.Metrics.Decisions.WithLabelValues(ep, "", "", kind, legacyOp, d.result).Inc()
	if d.refusal != "" {
		h.Metrics.RequestsRefused.WithLabelValues(d.refusal).Inc()
	}
	finding := func(rule, action, legacyResult string, n int) {
		h.Metrics.Findings.WithLabelValues(ep, rule, action, kind).Add(float64(n))
		h.Metrics.Decisions.WithLabelValues(ep, rule, action, kind, legacyOp, legacyResult).Add(float64(n))
	}
	for _, c := range d.changes {
		finding(c.Rule, "mutate", "injected", 1)
	}
	r := d.res
	if r == nil {
		return
	}
	for _, l := range []struct {
		fs             []policies.Finding
		omitted        map[string]int
		action, result string
	}{{r.Violations, r.Omitted.Violations, "enforce", "denied"}, {r.Warnings, r.Omitted.Warnings, "warn", "warned"}, {r.Audits, r.Omitted.Audits, "audit", "audited"}} {
		for _, f := range l.fs {
			finding(f.Rule, l.action, l.result, 1)
		}
		for rule, n := range l.omitted {
			finding(rule, l.action, l.result, n)
		}
	}
}

// logValues are the decision's log line: rule IDs, field paths,
// exemption reasons and counts, never a message, so never an env value or
// anything else taken from the object's data; request values truncated.
func (h *Handler) logValues(req admission.Request, d decision, took time.Duration) []any {
	name := req.Name
	if name == "" && d.meta != nil {
		name = d.meta.GetName()
	}
	kv := []any{"uid", truncate(string(req.UID), maxLogValue), "endpoint", h.endpoint(), "kind", truncate(req.Kind.Kind, maxLogValue),
		"namespace", truncate(req.Namespace, maxLogValue), "name", truncate(name, maxLogValue)}
	if name == "" && d.meta != nil && d.meta.GetGenerateName() != "" {
		kv = append(kv, "generateName", truncate(d.meta.GetGenerateName(), maxLogValue))
	}
	if d.meta != nil {
		// The controller that made it, so a ReplicaSet's Pod leads to its
		// Deployment's ReplicaSet (and the ReplicaSet's own line to the Deployment).
		if ref := metav1.GetControllerOfNoCopy(d.meta); ref != nil {
			kv = append(kv, "owner", truncate(ref.Kind+"/"+ref.Name, maxLogValue))
		} else if refs := d.meta.GetOwnerReferences(); len(refs) > 0 {
			kv = append(kv, "owner", truncate(refs[0].Kind+"/"+refs[0].Name, maxLogValue))
		}
	}
	kv = append(kv, "operation", truncate(string(req.Operation), maxLogValue), "subresource", truncate(req.SubResource, maxLogValue),
		"user", truncate(req.UserInfo.Username, maxLogValue), "decision", d.result, "durationMicroseconds", took.Microseconds())
	if req.DryRun != nil && *req.DryRun {
		kv = append(kv, "dryRun", true)
	}
	if d.reason != "" {
		kv = append(kv, "reason", d.reason)
	}
	if len(d.changes) > 0 {
		var injected []string
		for _, c := range d.changes {
			if !slices.Contains(injected, c.Rule) {
				injected = append(injected, c.Rule)
			}
		}
		kv = append(kv, "injected", injected, "patchOps", len(d.changes))
	}
	r := d.res
	if r == nil {
		return kv
	}
	if len(r.Violations) > 0 {
		kv = append(kv, "violations", fieldsByRule(r.Violations))
	}
	if w := rulesOf(r.Warnings); len(w) > 0 {
		kv = append(kv, "warnings", w)
	}
	if a := rulesOf(r.Audits); len(a) > 0 {
		kv = append(kv, "audits", a)
	}
	if n := r.Omitted.Total(); n > 0 {
		kv = append(kv, "omittedFindings", n)
	}
	for _, x := range r.Exempted {
		kv = append(kv, "exempted", x.Rule, "exemptionReason", x.Reason)
	}
	return kv
}

// rulesOf lists the rules of findings, each once, in order.
func rulesOf(fs []policies.Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.Rule) {
			out = append(out, f.Rule)
		}
	}
	return out
}

// fieldsByRule groups the fields of findings by rule: {"<rule>":
// ["spec.securityContext.runAsUser"], ...}.
func fieldsByRule(fs []policies.Finding) map[string][]string {
	out := map[string][]string{}
	for _, f := range fs {
		out[f.Rule] = append(out[f.Rule], f.Field)
	}
	return out
}
