package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ExceptionKind is the kind of a PodGuardException.
const ExceptionKind = "PodGuardException"

// SchemeGroupVersion is podguard.dev/v1alpha1, for the API objects
// (PodGuardException); the Policy is a file, never served.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// AddToScheme registers PodGuardException and its list.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &PodGuardException{}, &PodGuardExceptionList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}

// PodGuardException lifts some of the policy's rules from named workloads
// (or pods with matching labels) of its own namespace, for a reason and
// until a date. It is namespaced so that RBAC on it is the approval: an
// application team bound to the podguard-exception-requester role in its
// namespace can ask for one there, and only there. The policy's
// exceptions settings decide which rules may be excepted at all and how
// far ahead an exception may expire; podguard refuses others.
//
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
// +kubebuilder:resource:scope=Namespaced,shortName=pgex,categories=podguard
// +kubebuilder:printcolumn:name="Rules",type=string,JSONPath=`.spec.rules`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expires`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PodGuardException struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PodGuardExceptionSpec `json:"spec"`
}

// PodGuardExceptionSpec says what is excepted, where, why and until when.
//
// +kubebuilder:object:generate=true
// +kubebuilder:validation:XValidation:rule="has(self.workloads) || has(self.selector)",message="name the workloads (kind and name) or give a label selector: an exception never covers a whole namespace"
type PodGuardExceptionSpec struct {
	// Rules are the IDs of the rules lifted (never all of them: name each).
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z][a-zA-Z0-9]*$`
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	Rules []string `json:"rules"`
	// Workloads are workloads of this namespace by kind and exact name:
	// the exception covers each and what it controls (a Deployment's
	// ReplicaSets and Pods, a CronJob's Jobs and Pods...).
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Workloads []WorkloadRef `json:"workloads,omitempty"`
	// Selector covers the pods with matching labels (a Pod's own, a
	// workload's pod template's). It must select something: an empty
	// selector would cover the namespace.
	//
	// +kubebuilder:validation:XValidation:rule="size(self.?matchLabels.orValue({})) + size(self.?matchExpressions.orValue([])) > 0",message="an empty selector covers every pod of the namespace: give matchLabels or matchExpressions"
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// ContainerNames narrow the exception to these containers.
	//
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	ContainerNames []string `json:"containerNames,omitempty"`
	// Images narrow it to containers whose image matches one of these
	// globs (* any run, ? one character).
	//
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	// +optional
	Images []string `json:"images,omitempty"`
	// Reason says why; it is reported wherever the exception applies.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`
	// Expires ends the exception: a date (2027-03-31, meaning 00:00 UTC)
	// or an RFC 3339 timestamp, no further ahead than the policy allows
	// (exceptions.maxDuration, 90 days by default).
	//
	// +kubebuilder:validation:Pattern=`^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$`
	Expires string `json:"expires"`
}

// PodGuardExceptionList is a list of PodGuardExceptions.
//
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
type PodGuardExceptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PodGuardException `json:"items"`
}

// ExceptionSettings are the policy's rules for PodGuardExceptions.
type ExceptionSettings struct {
	// Enabled, when false, makes podguard ignore every PodGuardException.
	// Default true.
	Enabled *bool `json:"enabled,omitempty"`
	// Rules are the rules an exception may lift. Default: every rule that
	// implements no Pod Security Standards baseline control, so the
	// baseline stays out of application teams' reach.
	Rules []string `json:"rules,omitempty"`
	// MaxDuration is how far ahead of its creation an exception may
	// expire: days (90d) or a Go duration (2160h). Default 90d.
	MaxDuration string `json:"maxDuration,omitempty"`
	// Namespaces are globs over the namespaces whose exceptions count.
	// Default every namespace.
	Namespaces []string `json:"namespaces,omitempty"`
}
