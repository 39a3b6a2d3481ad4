package rules

import (
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"podguard.dev/podguard/policies/podspec"
)

// annotationPrefixes are the annotations a rule reads: AppArmor's beta
// annotations (appArmorProfile, as PSA does). Slim keeps only these.
var annotationPrefixes = []string{corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix}

// Slim returns a copy of a judged object with only what the rules and an
// audit read: identity (name, namespace, UID, resource version, creation
// and deletion time), labels, owner references, the annotations a rule
// reads, and the pod spec fields a rule reads; no status, scheduling
// fields, managedFields or other annotations
// (kubectl's last-applied-configuration alone can double an object). The
// background audit keeps thousands of objects in memory; this is what
// keeps that memory bounded. The verdict on the copy is the verdict on the
// original (tested over every fixture). An object podguard does not judge
// is returned as is.
func Slim(obj runtime.Object) runtime.Object {
	t, ok := podspec.Find(obj)
	if !ok {
		return obj
	}
	out, ok := podspec.NewObject(t.Kind)
	if !ok {
		return obj
	}
	st, ok := podspec.Find(out)
	if !ok {
		return obj
	}
	out.GetObjectKind().SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
	// For a Pod both point at the same metadata: the object's own.
	*st.ObjectMeta = slimMeta(t.ObjectMeta)
	if st.PodMeta != st.ObjectMeta {
		*st.PodMeta = slimMeta(t.PodMeta)
	}
	*st.Spec = slimSpec(t.Spec)
	return out
}

// auditReads are the pod spec fields read besides the rules': exemptions
// match containers by name and image, the audit's report names the
// containers of a baseline, and image verification presents the pod's own
// imagePullSecrets (--pod-pull-secrets).
var auditReads = podspec.Fields{"*containers.name", "*containers.image", "imagePullSecrets"}

// AuditReads are the pod spec fields read besides the rules' own:
// exemptions match containers by name and image, the audit's baseline
// names containers, and image verification presents imagePullSecrets.
func AuditReads() podspec.Fields { return append(podspec.Fields{}, auditReads...) }

var (
	slimOnce   sync.Once
	slimFields podspec.Fields
)

// slimSpec keeps the pod spec fields some rule reads (their Definitions'
// Reads, which a test holds them to) and those exemptions and the audit
// read: derived from the rules, never a list kept by hand. Scheduling
// fields (node name, affinity, tolerations, topology spread) are often the
// largest part of a Pod and no rule reads them.
func slimSpec(s *corev1.PodSpec) corev1.PodSpec {
	slimOnce.Do(func() {
		fs := append(podspec.Fields{}, auditReads...)
		for _, d := range Definitions() {
			fs = append(fs, d.Reads...)
		}
		slimFields = fs.Expand()
	})
	return slimFields.Project(s)
}

func slimMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, GenerateName: m.GenerateName, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp, Labels: m.Labels, OwnerReferences: m.OwnerReferences}
	for k, v := range m.Annotations {
		for _, p := range annotationPrefixes {
			if strings.HasPrefix(k, p) {
				if out.Annotations == nil {
					out.Annotations = map[string]string{}
				}
				out.Annotations[k] = v
			}
		}
	}
	return out
}
