// Package v1alpha1 holds podguard's policy file format,
// podguard.dev/v1alpha1 Policy, with its defaults.
//
// +groupName=podguard.dev
package v1alpha1

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// GroupName is the API group of podguard's policy file.
	GroupName = "podguard.dev"
	// Version is the version of this package's types.
	Version = "v1alpha1"
	// APIVersion is the apiVersion a policy file carries.
	APIVersion = GroupName + "/" + Version
	// PolicyKind is the kind a policy file carries.
	PolicyKind = "Policy"
)

// Action says what happens when a rule finds a problem.
type Action string

const (
	// ActionEnforce denies the object.
	ActionEnforce Action = "enforce"
	// ActionWarn admits the object with a warning (kubectl prints "Warning: ...").
	ActionWarn Action = "warn"
	// ActionAudit admits the object and records the finding (audit annotations, CLI "audits").
	ActionAudit Action = "audit"
	// ActionOff disables the rule: no check, no mutation.
	ActionOff Action = "off"
)

// Policy is podguard's whole configuration of what pods must look like.
// An empty file is the default policy.
type Policy struct {
	metav1.TypeMeta `json:",inline"`

	// Mode, when warn or audit, turns every enforce action into that action,
	// for a safe rollout on a live cluster. Default enforce (actions as set).
	Mode Action `json:"mode,omitempty"`

	// Mutation holds settings of the mutating side.
	Mutation Mutation `json:"mutation,omitempty"`

	// HelpURL is a page of the platform team's (how to fix a finding, how to
	// ask for an exception), appended to every denial and named where a
	// warning is shortened, for developers who do not have podguard at hand.
	// An absolute http or https URL of at most MaxHelpURLLength bytes.
	HelpURL string `json:"helpURL,omitempty"`

	// Rules configures each rule by its ID. Rules left out keep their
	// defaults; every rule has an entry once defaulted.
	Rules Rules `json:"rules,omitempty"`

	// Exceptions says what PodGuardExceptions, the namespaced requests of
	// application teams, may lift.
	Exceptions ExceptionSettings `json:"exceptions,omitempty"`

	// Exemptions lists who or what a rule does not apply to. Left out (null),
	// it defaults to kube-system and podguard's own namespace; an explicit
	// list, even an empty one, replaces those defaults.
	Exemptions []Exemption `json:"exemptions"`
}

// MaxHelpURLLength bounds HelpURL: it is repeated in warnings, which the
// API server cuts beyond 256 characters.
const MaxHelpURLLength = 100

// Mutation holds settings of the mutating webhook and `podguard mutate`.
type Mutation struct {
	// Templates, when true, makes the webhook mutate the pod templates of
	// workloads too. Default false: templates are left as applied (no drift
	// with GitOps tools) and their Pods are mutated when created.
	Templates *bool `json:"templates,omitempty"`
}

// RuleSettings are the settings every rule has.
type RuleSettings struct {
	// Action is what a finding of this rule does: enforce, warn, audit or off.
	Action Action `json:"action,omitempty"`
	// Mutate says whether the mutating webhook injects this rule's fix.
	// Only rules with a fix accept it.
	Mutate *bool `json:"mutate,omitempty"`
}

// RuleParams are a rule's own parameters (allowed UIDs, default limits...).
// Each rule defines its type, defaults and validation in its own file
// (policies/rules).
type RuleParams interface {
	// Default fills the parameters left unset.
	Default()
	// Validate returns every problem of defaulted parameters; path is the
	// rule's path in the policy (rules.<ID>).
	Validate(path *field.Path) field.ErrorList
}

// RuleConfig is one rule's entry in a policy: its settings and, in the
// same mapping of the file, its parameters.
type RuleConfig struct {
	RuleSettings
	// Params holds the rule's parameters; nil for a rule that has none.
	Params RuleParams
}

// MarshalJSON writes the settings and the parameters as one mapping, as
// the policy file has them.
func (c RuleConfig) MarshalJSON() ([]byte, error) {
	out := map[string]json.RawMessage{}
	for _, part := range []any{c.RuleSettings, c.Params} {
		if part == nil || (reflect.ValueOf(part).Kind() == reflect.Pointer && reflect.ValueOf(part).IsNil()) {
			continue
		}
		b, err := json.Marshal(part)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

// Rules holds one entry per rule ID. Which IDs exist, and the type of each
// rule's parameters, come from the rule registry (policies/rules); a policy
// file is decoded into them by policies/api/load.
type Rules map[string]*RuleConfig

// Exemption lifts rules from matching objects or containers. Every criterion
// given must match (namespaces AND users/groups AND images AND container
// names); within one criterion, any entry may match.
type Exemption struct {
	// Reason says why; it is logged and reported whenever the exemption applies.
	Reason string `json:"reason"`
	// Rules limits the exemption to these rule IDs. Empty means all rules.
	Rules []string `json:"rules,omitempty"`
	// Namespaces are globs (* and ?) over the object's namespace.
	Namespaces []string `json:"namespaces,omitempty"`
	// Users are requesting user names. For a Pod created by a controller
	// this is the controller's service account, e.g.
	// system:serviceaccount:kube-system:replicaset-controller.
	Users []string `json:"users,omitempty"`
	// Groups are groups of the requesting user.
	Groups []string `json:"groups,omitempty"`
	// Images are globs over container images; the exemption then covers
	// only the matching containers, never pod-level fields.
	Images []string `json:"images,omitempty"`
	// ContainerNames are exact container names; like Images, container-scoped.
	ContainerNames []string `json:"containerNames,omitempty"`
	// Workloads are workloads by kind and exact name: the exemption covers
	// each one and what it controls (a Deployment's ReplicaSets and Pods, a
	// CronJob's Jobs and Pods, the Pods of a StatefulSet, DaemonSet, Job,
	// ReplicaSet or ReplicationController). Owner references are written
	// by whoever creates an object, so give namespaces too: anyone who may
	// create Pods there can claim to belong to the workload.
	Workloads []WorkloadRef `json:"workloads,omitempty"`
	// Selector covers objects whose pods carry matching labels (a Pod's
	// own, a workload's pod template's).
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Expires, an RFC 3339 timestamp or a date (YYYY-MM-DD, meaning 00:00
	// UTC that day), ends the exemption; after it a warning says it expired.
	Expires string `json:"expires,omitempty"`
}

// WorkloadRef names one workload in an exemption.
//
// +kubebuilder:object:generate=true
type WorkloadRef struct {
	// Kind is Deployment, StatefulSet, DaemonSet, ReplicaSet,
	// ReplicationController, Job, CronJob, Pod or PodTemplate.
	//
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet;ReplicaSet;ReplicationController;Job;CronJob;Pod;PodTemplate
	Kind string `json:"kind"`
	// Name is the workload's exact name.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// UnmarshalJSON accepts the action names, and YAML 1.1's boolean false for
// an unquoted "off" (Kubernetes YAML reads off as false).
func (a *Action) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "false":
		*a = ActionOff
		return nil
	case "true":
		return fmt.Errorf("true is not an action: write enforce, warn, audit or off")
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("an action is one of enforce, warn, audit, off")
	}
	*a = Action(s)
	return nil
}

// ParseExpiry parses an exemption's expires: an RFC 3339 timestamp, or a
// date meaning 00:00 UTC that day.
func ParseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("must be an RFC 3339 timestamp (2027-01-31T00:00:00Z) or a date (2027-01-31)")
}
