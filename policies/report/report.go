// Package report judges what already runs in a cluster and writes the
// evidence: subjects (workloads, with the Pods they own collapsed into
// them, and bare Pods), each judged by the same engine as the webhook; the
// hardening checklist per namespace with each item's Pod Security Standards
// and CIS controls; and renderers for people (text, HTML) and tools (JSON,
// YAML, OpenReports and wgpolicyk8s.io report objects). It is pure: the
// objects come in, the report goes out; listing them is the caller's job.
package report

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/finding"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/rules"
)

// Results of a subject, and of the report as a whole.
const (
	// Fail: the policy denies it (as admitted, for a workload).
	Fail = "fail"
	// Warn: admitted with warnings.
	Warn = "warn"
	// Pass: nothing to report.
	Pass = "pass"
	// Skip: not judged; Reason says why.
	Skip = "skip"
)

// Finding is one problem at one field (the engine's finding.Finding,
// whose fields it shares in JSON), with the action and the controls of
// its rule.
type Finding struct {
	finding.Finding
	// Action is what the policy does with it: enforce, warn or audit.
	Action string `json:"action"`
	// PSS names the Pod Security Standards checks ("restricted
	// runAsNonRoot"), or is empty for a rule beyond them.
	PSS []string `json:"pss"`
	// CIS names the CIS Kubernetes Benchmark recommendations.
	CIS []string `json:"cis"`
	// FixedAtAdmission marks a warning about a workload's template that
	// podguard's mutation fixes in every Pod it creates: the Pods comply,
	// so it does not fail the checklist.
	FixedAtAdmission bool `json:"fixedAtAdmission,omitempty"`
}

// PodsSummary is what the Pods a workload owns are doing now.
type PodsSummary struct {
	// Total Pods collapsed into the workload.
	Total int `json:"total"`
	// OutOfPolicy Pods would be denied as they run (created before the
	// policy, or under an exemption since expired).
	OutOfPolicy int `json:"outOfPolicy"`
	// Rules the out-of-policy Pods break.
	Rules []string `json:"rules"`
}

// Subject is one judged object: a workload with the Pods (and ReplicaSets
// or Jobs) it owns collapsed into it, or a Pod no judged object owns.
type Subject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	// Result is fail, warn, pass or skip.
	Result     string                  `json:"result"`
	Reason     string                  `json:"reason,omitempty"`
	Violations []Finding               `json:"violations"`
	Warnings   []Finding               `json:"warnings"`
	Audits     []Finding               `json:"audits"`
	Exempted   []Exempted              `json:"exempted"`
	Pods       *PodsSummary            `json:"pods,omitempty"`
	Isolated   *bool                   `json:"networkIsolated,omitempty"`
	labels     map[string]bool         // checklist items this subject fails
	images     []ImageSubject          // what the image rules made of its images
	imageAt    map[string]ImageSubject // its own images by field path, for report results
	podLabels  labels.Set
	uid        types.UID
	// containers are the subject's containers' names by field path
	// (spec.template.spec.containers[0]), for a baseline.
	containers map[string]string
}

// Exempted is an exemption that applied, with its expiry.
type Exempted = finding.Exempted

// ChecklistItem is one line of the hardening checklist in a namespace.
type ChecklistItem struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Rules are the rules that prove it.
	Rules []string `json:"rules"`
	// Controls are the PSS checks and CIS recommendations it maps to.
	Controls []string `json:"controls"`
	// OK is true when no subject breaks it.
	OK bool `json:"ok"`
	// Subjects are "Kind/name" of the subjects behind a failure.
	Subjects []string `json:"subjects"`
}

// Namespace is the report of one namespace.
type Namespace struct {
	Name      string          `json:"name"`
	Summary   Summary         `json:"summary"`
	Checklist []ChecklistItem `json:"checklist"`
	Subjects  []Subject       `json:"subjects"`
	// Images are the images the image rules judged here, by digest
	// (with audit --verify-images and in the background audit).
	Images []ImageSubject `json:"images"`
	// Exemptions are the exemptions that applied here.
	Exemptions []Exempted `json:"exemptions"`
}

// Summary counts subjects by result.
type Summary struct {
	Subjects int `json:"subjects"`
	Fail     int `json:"fail"`
	Warn     int `json:"warn"`
	Pass     int `json:"pass"`
	Skip     int `json:"skip"`
	// Pods counts the Pods judged, collapsed or not.
	Pods int `json:"pods"`
}

func (s *Summary) add(o Summary) {
	s.Subjects += o.Subjects
	s.Fail += o.Fail
	s.Warn += o.Warn
	s.Pass += o.Pass
	s.Skip += o.Skip
	s.Pods += o.Pods
}

// Report is a whole audit.
type Report struct {
	// APIVersion and Kind make the JSON and YAML outputs self-describing:
	// podguard.dev/v1alpha1 AuditReport, a contract like validate -o json.
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Generated is when the audit ran.
	Generated time.Time `json:"generated"`
	// Cluster names what was audited (the kubeconfig context), if known.
	Cluster string `json:"cluster"`
	// PolicyMode is the policy's mode.
	PolicyMode string `json:"policyMode"`
	// CISBenchmark names the CIS version the control IDs cite.
	CISBenchmark string          `json:"cisBenchmark"`
	Summary      Summary         `json:"summary"`
	Checklist    []ChecklistItem `json:"checklist"`
	Namespaces   []Namespace     `json:"namespaces"`
	// Skipped are the subjects that could not be judged, with why (they
	// are also in their namespace's subjects and counted in the summaries).
	Skipped []Subject `json:"skipped"`
	// OptedOut are the namespaces podguard's webhooks never see (Input's
	// OptedOut): shown, never judged, counted or baselined.
	OptedOut []OptedOut `json:"optedOut"`
	// Exceptions are the PodGuardExceptions found, active, expired or
	// ignored, each with the subjects it applied to.
	Exceptions []Exception `json:"exceptions"`
}

// Input is what an audit judges.
type Input struct {
	// Objects are the Pods and pod-bearing workloads, typed (podspec.NewObject types).
	Objects []runtime.Object
	// NetworkPolicies of the namespaces audited.
	NetworkPolicies []networkingv1.NetworkPolicy
	// Skipped are objects the caller could not read (Kind, Namespace,
	// Name and Reason set); they are counted, never dropped.
	Skipped []Subject
	// Selector, when set, keeps only subjects whose labels or whose Pods'
	// labels match it.
	Selector labels.Selector
	// Cluster names what was audited.
	Cluster string
	// Now is when the audit runs (exemption expiry); zero means time.Now().
	Now time.Time
	// ImageFacts, when set, hands the engine what the registries say of a
	// subject's images (signature and scan verdicts, image users), as the
	// webhook does at admission; the caller does the I/O. Unset, the image
	// rules note covered images as not verified.
	ImageFacts func(p *v1alpha1.Policy, t *podspec.Target, a *policies.Attributes)
	// OptedOut are namespaces left out, with why (OptOut.Reason): the
	// audited namespaces podguard's webhooks never see. Their objects are
	// counted, not judged.
	OptedOut map[string]string
}

// networkChecklistItem is the audit's own item: no admission rule can see
// NetworkPolicies, so no rule proves it; the audit does.
var networkChecklistItem = rules.ChecklistItem{ID: networkItem, Title: "Network isolation: NetworkPolicies select every workload", Order: 1000}

const networkItem = "networkIsolation"

// judged finds the pod spec of an object podguard judges.
func judged(obj runtime.Object) (*podspec.Target, bool) { return podspec.Find(obj) }

// Build judges the input with the engine: workloads as admitted (what
// their next rollout would get), Pods as they run. Pods owned by a judged
// workload are collapsed into it (through ReplicaSets and Jobs), as are
// ReplicaSets owned by Deployments and Jobs owned by CronJobs.
func Build(e *policies.Enforcer, in Input) *Report {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := &Report{APIVersion: "podguard.dev/v1alpha1", Kind: "AuditReport", Generated: now.UTC().Truncate(time.Second),
		Cluster: in.Cluster, PolicyMode: string(e.Policy().Mode), CISBenchmark: rules.CISBenchmark, Skipped: []Subject{}}
	r.OptedOut = optedOut(&in)
	subjects, order, pods := collapse(e, in, now)
	for _, p := range pods {
		judgeOwnedPod(e, subjects[p.owner], p.obj, now, in.ImageFacts)
	}
	for i := range in.Skipped {
		x := in.Skipped[i]
		x.Result = Skip
		if x.Namespace == "" {
			r.Skipped = append(r.Skipped, x)
			r.Summary.Skip++
			r.Summary.Subjects++
			continue
		}
		order = append(order, &x)
	}
	r.addNamespaces(order, in.NetworkPolicies)
	r.Exceptions = exceptionsOf(e, r.Namespaces)
	return r
}

// ownedPod is a Pod collapsed into the workload that owns it.
type ownedPod struct {
	owner types.UID
	obj   runtime.Object
}

// collapse judges every object that is its own subject (a workload with
// no judged owner, a bare Pod) and returns the subjects by UID, in input
// order, and the Pods owned by one of them. ReplicaSets of Deployments and
// Jobs of CronJobs are collapsed into their owners without a judging of
// their own.
func collapse(e *policies.Enforcer, in Input, now time.Time) (map[types.UID]*Subject, []*Subject, []ownedPod) {
	// The judged objects by UID, to walk owner references.
	byUID := map[types.UID]runtime.Object{}
	for _, o := range in.Objects {
		if t, ok := judged(o); ok {
			byUID[t.ObjectMeta.UID] = o
		}
	}
	// top returns the judged object an object collapses into (itself if none).
	var top func(o runtime.Object, depth int) runtime.Object
	top = func(o runtime.Object, depth int) runtime.Object {
		t, _ := judged(o)
		if depth > 4 {
			return o
		}
		for _, ref := range t.ObjectMeta.OwnerReferences {
			if ref.Controller != nil && *ref.Controller {
				if owner, ok := byUID[ref.UID]; ok {
					return top(owner, depth+1)
				}
			}
		}
		return o
	}
	subjects := map[types.UID]*Subject{}
	var order []*Subject
	var pods []ownedPod
	for _, o := range in.Objects {
		t, ok := judged(o)
		if !ok {
			continue
		}
		root := top(o, 0)
		rt, _ := judged(root)
		if root != o {
			if t.Kind.Kind == "Pod" {
				pods = append(pods, ownedPod{rt.ObjectMeta.UID, o})
			}
			continue // a ReplicaSet of a Deployment, a Job of a CronJob
		}
		if ref := missingOwner(t.ObjectMeta); ref != nil {
			// Its owner was deleted between the lists (or is being
			// garbage-collected): judging it alone would report a
			// workload's Pod as a bare Pod.
			s := newSubject(o, t)
			s.Result, s.Reason = Skip, fmt.Sprintf("its owner %s/%s was not found: deleted during the audit, or being garbage-collected", ref.Kind, ref.Name)
			subjects[t.ObjectMeta.UID] = s
			order = append(order, s)
			continue
		}
		if in.Selector != nil && !in.Selector.Matches(labels.Set(t.ObjectMeta.Labels)) && !in.Selector.Matches(labels.Set(t.PodMeta.Labels)) {
			continue
		}
		s := judge(e, o, t, now, in.ImageFacts)
		subjects[t.ObjectMeta.UID] = s
		order = append(order, s)
	}
	return subjects, order, pods
}

// judgeOwnedPod counts a Pod into its workload's subject s (nil when the
// workload is not selected) and judges it as it runs: a Pod out of policy
// fails its checklist item even when the workload's next rollout would pass.
func judgeOwnedPod(e *policies.Enforcer, s *Subject, pod runtime.Object, now time.Time, facts func(*v1alpha1.Policy, *podspec.Target, *policies.Attributes)) {
	if s == nil {
		return
	}
	if s.Pods == nil {
		s.Pods = &PodsSummary{Rules: []string{}}
	}
	s.Pods.Total++
	if s.Result == Skip {
		return
	}
	t, _ := judged(pod)
	attrs := policies.Attributes{Namespace: t.ObjectMeta.Namespace, Now: now}
	if facts != nil {
		facts(e.Policy(), t, &attrs)
	}
	res, _ := e.Validate(pod, attrs)
	// A Pod of an older revision may run another digest than the
	// template: its images are the workload's too.
	s.addImages(t, &attrs, res)
	if !res.Allowed {
		s.Pods.OutOfPolicy++
		for _, f := range res.Violations {
			if !slices.Contains(s.Pods.Rules, f.Rule) {
				s.Pods.Rules = append(s.Pods.Rules, f.Rule)
			}
			if d, ok := rules.Lookup(f.Rule); ok {
				s.labels[d.Checklist.ID] = true
			}
		}
		sort.Strings(s.Pods.Rules)
	}
	if s.podLabels == nil {
		s.podLabels = labels.Set(t.PodMeta.Labels)
	}
}

// addNamespaces groups the subjects by namespace, finishes each
// namespace's summary and checklist (with its NetworkPolicies), and the
// cluster's.
func (r *Report) addNamespaces(order []*Subject, networkPolicies []networkingv1.NetworkPolicy) {
	byNS := map[string]*Namespace{}
	subjectsOf := map[string][]*Subject{}
	for _, s := range order {
		ns := byNS[s.Namespace]
		if ns == nil {
			ns = &Namespace{Name: s.Namespace}
			byNS[s.Namespace] = ns
		}
		ns.Subjects = append(ns.Subjects, *s)
		subjectsOf[s.Namespace] = append(subjectsOf[s.Namespace], s)
	}
	for n, ns := range byNS {
		ns.Images = namespaceImages(subjectsOf[n])
	}
	netpols := map[string][]networkingv1.NetworkPolicy{}
	for _, np := range networkPolicies {
		netpols[np.Namespace] = append(netpols[np.Namespace], np)
	}
	clusterFailed := map[string][]string{}
	for _, n := range slices.Sorted(maps.Keys(byNS)) {
		ns := byNS[n]
		finishNamespace(ns, netpols[n])
		r.Summary.add(ns.Summary)
		for _, sub := range ns.Subjects {
			if sub.Result == Skip {
				r.Skipped = append(r.Skipped, sub)
			}
		}
		for _, it := range ns.Checklist {
			for _, s := range it.Subjects {
				clusterFailed[it.ID] = append(clusterFailed[it.ID], n+"/"+s)
			}
		}
		r.Namespaces = append(r.Namespaces, *ns)
	}
	if r.Namespaces == nil {
		r.Namespaces = []Namespace{}
	}
	r.Checklist = checklist(clusterFailed)
}

// judge judges one top-level subject.
func judge(e *policies.Enforcer, o runtime.Object, t *podspec.Target, now time.Time, facts func(*v1alpha1.Policy, *podspec.Target, *policies.Attributes)) *Subject {
	s := newSubject(o, t)
	s.containers = map[string]string{}
	for _, c := range t.Containers {
		s.containers[c.Path().String()] = c.Name
	}
	attrs := policies.Attributes{Namespace: s.Namespace, Now: now}
	if facts != nil {
		facts(e.Policy(), t, &attrs)
	}
	var res *policies.Result
	if t.Kind.Kind == "Pod" && t.Kind.Group == "" {
		res, _ = e.Validate(o, attrs)
	} else {
		var err error
		if res, _, err = e.Admit(o, attrs); err != nil {
			s.Result, s.Reason = Skip, err.Error()
			return s
		}
	}
	conv := func(fs []policies.Finding) []Finding {
		out := make([]Finding, 0, len(fs))
		for _, f := range fs {
			c := withControls(f, string(e.ActionOf(f.Rule)))
			c.FixedAtAdmission = f.Injected
			out = append(out, c)
		}
		return out
	}
	s.Violations, s.Warnings, s.Audits = conv(res.Violations), conv(res.Warnings), conv(res.Audits)
	s.Exempted = make([]Exempted, 0, len(res.Exempted))
	for _, x := range res.Exempted {
		s.Exempted = append(s.Exempted, x)
	}
	s.addImages(t, &attrs, res)
	for _, is := range s.images {
		if s.imageAt == nil {
			s.imageAt = map[string]ImageSubject{}
		}
		s.imageAt[is.field] = is
	}
	switch {
	case !res.Allowed:
		s.Result = Fail
	case len(res.Warnings) > 0:
		s.Result = Warn
	default:
		s.Result = Pass
	}
	for _, f := range append(append(slices.Clone(s.Violations), s.Warnings...), s.Audits...) {
		if d, ok := rules.Lookup(f.Rule); ok && !f.FixedAtAdmission {
			s.labels[d.Checklist.ID] = true
		}
	}
	return s
}

func newSubject(o runtime.Object, t *podspec.Target) *Subject {
	gvk := o.GetObjectKind().GroupVersionKind()
	s := &Subject{APIVersion: gvk.GroupVersion().String(), Kind: t.Kind.Kind, Namespace: t.ObjectMeta.Namespace, Name: t.ObjectMeta.Name,
		uid: t.ObjectMeta.UID, podLabels: labels.Set(t.PodMeta.Labels), labels: map[string]bool{},
		Violations: []Finding{}, Warnings: []Finding{}, Audits: []Finding{}, Exempted: []Exempted{}}
	if s.APIVersion == "" || s.APIVersion == "/" {
		s.APIVersion = apiVersionOf(t.Kind.Group)
	}
	return s
}

// CollapsedOwner reports whether an object's controller is of a kind
// podguard judges: an audit collapses the object into it (a ReplicaSet
// into its Deployment, a Job into its CronJob) and never judges its own
// pod template.
func CollapsedOwner(m *metav1.ObjectMeta) bool {
	ref := metav1.GetControllerOfNoCopy(m)
	if ref == nil {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && slices.Contains(podspec.SupportedKinds, schema.GroupKind{Group: gv.Group, Kind: ref.Kind})
}

// missingOwner returns the controller reference of an object when it
// points at a kind podguard judges (so the object would be collapsed into
// it) that was not in the input.
func missingOwner(m *metav1.ObjectMeta) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(m)
	if ref == nil {
		return nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil
	}
	if slices.Contains(podspec.SupportedKinds, schema.GroupKind{Group: gv.Group, Kind: ref.Kind}) {
		return ref
	}
	return nil
}

func apiVersionOf(group string) string {
	switch group {
	case "":
		return "v1"
	case "apps":
		return "apps/v1"
	case "batch":
		return "batch/v1"
	}
	return group + "/v1"
}

// finding converts an engine finding and adds its rule's controls.
func withControls(f policies.Finding, action string) Finding {
	out := Finding{Finding: finding.Finding{Rule: f.Rule, Field: f.Field, Message: f.Message, Fix: f.Fix}, Action: action, PSS: []string{}, CIS: []string{}}
	if d, ok := rules.Lookup(f.Rule); ok {
		for _, c := range d.PSS {
			out.PSS = append(out.PSS, fmt.Sprintf("%s %s", c.Level, c.ID))
		}
		out.CIS = append(out.CIS, d.CIS...)
	}
	return out
}

// finishNamespace sorts the subjects, judges network isolation and fills
// in the checklist and summary.
func finishNamespace(ns *Namespace, netpols []networkingv1.NetworkPolicy) {
	sort.Slice(ns.Subjects, func(i, j int) bool {
		a, b := ns.Subjects[i], ns.Subjects[j]
		if rank(a.Result) != rank(b.Result) {
			return rank(a.Result) < rank(b.Result)
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	failed := map[string][]string{}
	seenEx := map[string]bool{}
	ns.Exemptions = []Exempted{}
	for i := range ns.Subjects {
		s := &ns.Subjects[i]
		isolated := selected(s.podLabels, netpols)
		s.Isolated = &isolated
		if !isolated {
			failed[networkItem] = append(failed[networkItem], s.Kind+"/"+s.Name)
		}
		for id := range s.labels {
			failed[id] = append(failed[id], s.Kind+"/"+s.Name)
		}
		for _, x := range s.Exempted {
			key := x.Rule + "\x00" + x.Reason
			if !seenEx[key] {
				seenEx[key] = true
				ns.Exemptions = append(ns.Exemptions, x)
			}
		}
		ns.Summary.Subjects++
		switch s.Result {
		case Fail:
			ns.Summary.Fail++
		case Warn:
			ns.Summary.Warn++
		case Pass:
			ns.Summary.Pass++
		default:
			ns.Summary.Skip++
		}
		if s.Kind == "Pod" {
			ns.Summary.Pods++
		} else if s.Pods != nil {
			ns.Summary.Pods += s.Pods.Total
		}
	}
	ns.Checklist = checklist(failed)
}

func rank(result string) int {
	return map[string]int{Fail: 0, Warn: 1, Skip: 2, Pass: 3}[result]
}

// selected reports whether any NetworkPolicy of the namespace selects a
// pod with these labels (an empty podSelector selects every pod).
func selected(podLabels labels.Set, netpols []networkingv1.NetworkPolicy) bool {
	for _, np := range netpols {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err == nil && sel.Matches(podLabels) {
			return true
		}
	}
	return false
}

// checklist builds the items from the subjects that fail each.
func checklist(failed map[string][]string) []ChecklistItem {
	items := append(rules.Checklist(), networkChecklistItem)
	out := make([]ChecklistItem, 0, len(items))
	for _, it := range items {
		ci := ChecklistItem{ID: it.ID, Title: it.Title, Rules: []string{}, Controls: []string{}, Subjects: failed[it.ID]}
		if ci.Subjects == nil {
			ci.Subjects = []string{}
		}
		sort.Strings(ci.Subjects)
		ci.OK = len(ci.Subjects) == 0
		controls := map[string]bool{}
		for _, d := range rules.Definitions() {
			if d.Checklist.ID != it.ID {
				continue
			}
			ci.Rules = append(ci.Rules, d.ID)
			for _, c := range d.PSS {
				controls[fmt.Sprintf("PSS %s %s", c.Level, c.ID)] = true
			}
			for _, c := range d.CIS {
				controls["CIS "+c] = true
			}
		}
		if it.ID == networkItem {
			controls["CIS 5.3.2"] = true
		}
		for c := range controls {
			ci.Controls = append(ci.Controls, c)
		}
		sort.Slice(ci.Controls, func(i, j int) bool { return controlLess(ci.Controls[i], ci.Controls[j]) })
		out = append(out, ci)
	}
	return out
}

// controlLess orders PSS checks before CIS recommendations, and CIS
// numbers numerically (5.2.9 before 5.2.10).
func controlLess(a, b string) bool {
	if strings.HasPrefix(a, "PSS") != strings.HasPrefix(b, "PSS") {
		return strings.HasPrefix(a, "PSS")
	}
	if !strings.HasPrefix(a, "CIS ") || !strings.HasPrefix(b, "CIS ") {
		return a < b
	}
	pa, pb := strings.Split(strings.TrimPrefix(a, "CIS "), "."), strings.Split(strings.TrimPrefix(b, "CIS "), ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea != nil || eb != nil {
			return a < b
		}
		if na != nb {
			return na < nb
		}
	}
	return len(pa) < len(pb)
}

// Denied reports whether the audit found a subject the policy denies.
func (r *Report) Denied() bool { return r.Summary.Fail > 0 }

// ref names a subject for people: Kind/namespace/name.
func (s *Subject) ref() string {
	return strings.TrimSuffix(fmt.Sprintf("%s/%s/%s", s.Kind, s.Namespace, s.Name), "/")
}
