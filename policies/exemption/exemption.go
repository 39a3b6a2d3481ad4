// Package exemption is the one definition of what a policy exemption
// covers: which requests (namespace, user, group), which objects (a
// workload and the pods it owns, pods with matching labels) and which
// containers (name, image). Each criterion has its Go form, which the
// engine (webhook, CLI, audit) runs, and its CEL form, which the native
// export writes; the two sit side by side here and a test evaluates both
// on the same cases.
package exemption

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"podguard.dev/podguard/policies/api/v1alpha1"
)

// Request is what an exemption reads of the request.
type Request struct {
	// Namespace is the object's namespace.
	Namespace string
	// User and Groups are the requesting user; empty offline.
	User   string
	Groups []string
}

// Object is what an exemption reads of the object: its kind and name,
// its controller, and the labels of its pods.
type Object struct {
	Kind schema.GroupKind
	Name string
	// Owners are the object's owner references.
	Owners []metav1.OwnerReference
	// PodLabels are the pod's labels: a Pod's own, a template's for a workload.
	PodLabels map[string]string
}

// Exemption is one exemption of a policy, ready to match.
type Exemption struct {
	v1alpha1.Exemption
	// Index is the exemption's position in the policy (-1 for an exception).
	Index int
	// Exception is "namespace/name" of the PodGuardException it comes
	// from, or "" for the policy's own.
	Exception string
	// Until is when it expires; zero for never.
	Until    time.Time
	selector labels.Selector
}

// Compile prepares a validated policy's exemptions.
func Compile(list []v1alpha1.Exemption) ([]*Exemption, error) {
	out := make([]*Exemption, 0, len(list))
	for i, e := range list {
		c := &Exemption{Exemption: e, Index: i}
		if e.Expires != "" {
			t, err := v1alpha1.ParseExpiry(e.Expires)
			if err != nil {
				return nil, fmt.Errorf("exemptions[%d].expires: %w", i, err)
			}
			c.Until = t
		}
		if e.Selector != nil {
			s, err := metav1.LabelSelectorAsSelector(e.Selector)
			if err != nil {
				return nil, fmt.Errorf("exemptions[%d].selector: %w", i, err)
			}
			c.selector = s
		}
		out = append(out, c)
	}
	return out, nil
}

// Covers reports whether the exemption lifts rule.
func (e *Exemption) Covers(rule string) bool {
	return len(e.Rules) == 0 || slices.Contains(e.Rules, rule)
}

// ContainerScoped reports whether the exemption covers containers (by
// name or image) rather than whole objects: it then never lifts a
// pod-level field.
func (e *Exemption) ContainerScoped() bool {
	return len(e.Images)+len(e.ContainerNames) > 0
}

// Expired reports whether the exemption has expired at now.
func (e *Exemption) Expired(now time.Time) bool {
	return !e.Until.IsZero() && !now.Before(e.Until)
}

// MatchesRequest reports whether the request and the object are in the
// exemption's scope (every criterion given must hold).
func (e *Exemption) MatchesRequest(r Request, o Object) bool {
	if len(e.Namespaces) > 0 && !MatchesAny(e.Namespaces, r.Namespace) {
		return false
	}
	if len(e.Users) > 0 && (r.User == "" || !slices.Contains(e.Users, r.User)) {
		return false
	}
	if len(e.Groups) > 0 && !slices.ContainsFunc(e.Groups, func(g string) bool { return slices.Contains(r.Groups, g) }) {
		return false
	}
	if len(e.Workloads) > 0 && !slices.ContainsFunc(e.Workloads, func(w v1alpha1.WorkloadRef) bool { return belongsTo(o, w) }) {
		return false
	}
	if e.selector != nil && !e.selector.Matches(labels.Set(o.PodLabels)) {
		return false
	}
	return true
}

// MatchesContainer reports whether a container is in the scope of a
// container-scoped exemption.
func (e *Exemption) MatchesContainer(name, image string) bool {
	if len(e.Images) > 0 && !MatchesAny(e.Images, image) {
		return false
	}
	if len(e.ContainerNames) > 0 && !slices.Contains(e.ContainerNames, name) {
		return false
	}
	return true
}

// RequestCEL is CEL for MatchesRequest, over the admission request
// (request), the object (object) and the pod's metadata (variables.meta).
func (e *Exemption) RequestCEL() string {
	var parts []string
	if len(e.Namespaces) > 0 {
		parts = append(parts, GlobCEL("request.namespace", e.Namespaces))
	}
	if len(e.Users) > 0 {
		parts = append(parts, "request.userInfo.username in "+StringList(e.Users))
	}
	if len(e.Groups) > 0 {
		parts = append(parts, "request.userInfo.?groups.orValue([]).exists(g, g in "+StringList(e.Groups)+")")
	}
	if len(e.Workloads) > 0 {
		var ws []string
		for _, w := range e.Workloads {
			ws = append(ws, belongsToCEL(w))
		}
		parts = append(parts, "("+strings.Join(ws, " || ")+")")
	}
	if e.Selector != nil {
		parts = append(parts, selectorCEL(e.Selector))
	}
	if len(parts) == 0 {
		return "true"
	}
	return strings.Join(parts, " && ")
}

// ContainerCEL is CEL for MatchesContainer over the container c.
func (e *Exemption) ContainerCEL(c string) string {
	var parts []string
	if len(e.Images) > 0 {
		parts = append(parts, GlobCEL(c+".?image.orValue('')", e.Images))
	}
	if len(e.ContainerNames) > 0 {
		parts = append(parts, c+".name in "+StringList(e.ContainerNames))
	}
	if len(parts) == 0 {
		return "true"
	}
	return strings.Join(parts, " && ")
}

// What a workload owns, as the controllers name it: a Deployment's
// ReplicaSets are "<deployment>-<pod-template-hash>" and carry that hash
// as a label on their pods; a CronJob's Jobs are "<cronjob>-<scheduled
// minute>". Other controllers own their pods directly.
const podTemplateHashLabel = "pod-template-hash"

// workloadGroups gives the API group of each workload kind an exemption
// can name: owner references carry apiVersion, and a CRD's kind named
// "Deployment" must not pass for an apps Deployment.
var workloadGroups = map[string]string{
	"Pod": "", "PodTemplate": "", "ReplicationController": "",
	"Deployment": "apps", "ReplicaSet": "apps", "StatefulSet": "apps", "DaemonSet": "apps",
	"Job": "batch", "CronJob": "batch",
}

// belongsTo reports whether o is the workload w, or an object it controls
// (a Deployment's ReplicaSets and their Pods, a CronJob's Jobs and their
// Pods, the Pods of the other controllers). Owner references are set by
// whoever creates the object: a workload scope covers every object that
// claims to belong to the workload, so the exemption's namespaces and
// users (the controller's service account) bound who can claim it.
func belongsTo(o Object, w v1alpha1.WorkloadRef) bool {
	group := workloadGroups[w.Kind]
	if o.Kind == (schema.GroupKind{Group: group, Kind: w.Kind}) && o.Name == w.Name {
		return true
	}
	ref := controllerOf(o.Owners)
	if ref == nil {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false
	}
	owner := schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
	switch w.Kind {
	case "Deployment":
		if o.Kind == (schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}) {
			return owner == schema.GroupKind{Group: "apps", Kind: "Deployment"} && ref.Name == w.Name
		}
		hash := o.PodLabels[podTemplateHashLabel]
		return o.Kind.Kind == "Pod" && o.Kind.Group == "" && hash != "" &&
			owner == schema.GroupKind{Group: "apps", Kind: "ReplicaSet"} && ref.Name == w.Name+"-"+hash
	case "CronJob":
		if o.Kind == (schema.GroupKind{Group: "batch", Kind: "Job"}) {
			return owner == schema.GroupKind{Group: "batch", Kind: "CronJob"} && ref.Name == w.Name
		}
		return o.Kind.Kind == "Pod" && o.Kind.Group == "" &&
			owner == schema.GroupKind{Group: "batch", Kind: "Job"} && cronJobRun(w.Name).MatchString(ref.Name)
	case "Pod", "PodTemplate":
		return false
	}
	return o.Kind.Kind == "Pod" && o.Kind.Group == "" && owner == schema.GroupKind{Group: group, Kind: w.Kind} && ref.Name == w.Name
}

// cronJobRun matches the names of a CronJob's Jobs.
func cronJobRun(cronJob string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(cronJob) + "-[0-9]+$")
}

func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}

// belongsToCEL is CEL for belongsTo.
func belongsToCEL(w v1alpha1.WorkloadRef) string {
	group := workloadGroups[w.Kind]
	apiGroup := func(g string) string {
		if g == "" {
			return "r.apiVersion == 'v1'"
		}
		return "r.apiVersion.startsWith(" + strconv.Quote(g+"/") + ")"
	}
	objGroup := func(g string) string {
		if g == "" {
			return "object.apiVersion == 'v1'"
		}
		return "object.apiVersion.startsWith(" + strconv.Quote(g+"/") + ")"
	}
	name := strconv.Quote(w.Name)
	self := fmt.Sprintf("(object.kind == %s && %s && object.metadata.?name.orValue('') == %s)", strconv.Quote(w.Kind), objGroup(group), name)
	owned := func(objKind, objGroupName, ownerKind, ownerGroup, nameTest string) string {
		return fmt.Sprintf("(object.kind == %s && %s && object.metadata.?ownerReferences.orValue([]).exists(r, r.?controller.orValue(false) && r.kind == %s && %s && %s))",
			strconv.Quote(objKind), objGroup(objGroupName), strconv.Quote(ownerKind), apiGroup(ownerGroup), nameTest)
	}
	switch w.Kind {
	case "Deployment":
		return "(" + self + " || " + owned("ReplicaSet", "apps", "Deployment", "apps", "r.name == "+name) + " || " +
			fmt.Sprintf("(variables.meta.?labels[?%s].orValue('') != '' && %s))", strconv.Quote(podTemplateHashLabel),
				owned("Pod", "", "ReplicaSet", "apps", fmt.Sprintf("r.name == %s + '-' + variables.meta.labels[%s]", name, strconv.Quote(podTemplateHashLabel))))
	case "CronJob":
		return "(" + self + " || " + owned("Job", "batch", "CronJob", "batch", "r.name == "+name) + " || " +
			owned("Pod", "", "Job", "batch", "r.name.matches("+strconv.Quote("^"+regexp.QuoteMeta(w.Name)+"-[0-9]+$")+")") + ")"
	case "Pod", "PodTemplate":
		return self
	}
	return "(" + self + " || " + owned("Pod", "", w.Kind, group, "r.name == "+name) + ")"
}

// selectorCEL is CEL for a label selector over the pod's labels, with
// metav1.LabelSelectorAsSelector's semantics (NotIn and DoesNotExist hold
// for a missing label).
func selectorCEL(s *metav1.LabelSelector) string {
	l := "variables.meta.?labels.orValue({})"
	var parts []string
	for _, k := range sortedKeys(s.MatchLabels) {
		parts = append(parts, fmt.Sprintf("(%s in %s && %s[%s] == %s)", strconv.Quote(k), l, l, strconv.Quote(k), strconv.Quote(s.MatchLabels[k])))
	}
	for _, r := range s.MatchExpressions {
		k := strconv.Quote(r.Key)
		switch r.Operator {
		case metav1.LabelSelectorOpIn:
			parts = append(parts, fmt.Sprintf("(%s in %s && %s[%s] in %s)", k, l, l, k, StringList(r.Values)))
		case metav1.LabelSelectorOpNotIn:
			parts = append(parts, fmt.Sprintf("(!(%s in %s) || !(%s[%s] in %s))", k, l, l, k, StringList(r.Values)))
		case metav1.LabelSelectorOpExists:
			parts = append(parts, fmt.Sprintf("(%s in %s)", k, l))
		case metav1.LabelSelectorOpDoesNotExist:
			parts = append(parts, fmt.Sprintf("!(%s in %s)", k, l))
		}
	}
	if len(parts) == 0 {
		return "true"
	}
	return "(" + strings.Join(parts, " && ") + ")"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
