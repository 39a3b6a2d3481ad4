// Package v1alpha1 holds podguard's policy file format,
// podguard.dev/v1alpha1 Policy, with its defaults.
//
// +groupName=podguard.dev
package v1alpha1

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	// Rules configures each rule by its ID. Rules left out keep their defaults.
	Rules Rules `json:"rules,omitempty"`

	// Exemptions lists who or what a rule does not apply to. Left out (null),
	// it defaults to kube-system and podguard's own namespace; an explicit
	// list, even an empty one, replaces those defaults.
	Exemptions []Exemption `json:"exemptions"`
}

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

// Rules holds one entry per rule ID. Unknown IDs are decoding errors.
type Rules struct {
	RunAsUser                RunAsUserRule    `json:"runAsUser,omitempty"`
	RunAsGroup               RunAsGroupRule   `json:"runAsGroup,omitempty"`
	RunAsNonRoot             RuleSettings     `json:"runAsNonRoot,omitempty"`
	Capabilities             CapabilitiesRule `json:"capabilities,omitempty"`
	AllowPrivilegeEscalation RuleSettings     `json:"allowPrivilegeEscalation,omitempty"`
	Privileged               RuleSettings     `json:"privileged,omitempty"`
	Resources                ResourcesRule    `json:"resources,omitempty"`
	SeccompProfile           RuleSettings     `json:"seccompProfile,omitempty"`
	HostNamespaces           RuleSettings     `json:"hostNamespaces,omitempty"`
	HostPorts                RuleSettings     `json:"hostPorts,omitempty"`
	VolumeTypes              RuleSettings     `json:"volumeTypes,omitempty"`
	AppArmorProfile          RuleSettings     `json:"appArmorProfile,omitempty"`
	SELinuxOptions           RuleSettings     `json:"seLinuxOptions,omitempty"`
	ProcMount                RuleSettings     `json:"procMount,omitempty"`
	Sysctls                  RuleSettings     `json:"sysctls,omitempty"`
	WindowsHostProcess       RuleSettings     `json:"windowsHostProcess,omitempty"`
	HostProbesAndLifecycle   RuleSettings     `json:"hostProbesAndLifecycle,omitempty"`
	ReadOnlyRootFilesystem   RuleSettings     `json:"readOnlyRootFilesystem,omitempty"`
	Probes                   RuleSettings     `json:"probes,omitempty"`
	SecretsInEnv             SecretsInEnvRule `json:"secretsInEnv,omitempty"`
	ImageTag                 RuleSettings     `json:"imageTag,omitempty"`
}

// RunAsUserRule configures the runAsUser rule.
type RunAsUserRule struct {
	RuleSettings `json:",inline"`
	// AllowedUIDs are the user IDs containers may run as. The first is
	// injected when none is set. Default [1000]. 0 (root) is never allowed.
	AllowedUIDs []int64 `json:"allowedUIDs,omitempty"`
}

// RunAsGroupRule configures the runAsGroup rule.
type RunAsGroupRule struct {
	RuleSettings `json:",inline"`
	// AllowedGIDs are the primary group IDs containers may run as; the first
	// is injected as runAsGroup and fsGroup. Default [1000]. 0 is never allowed.
	AllowedGIDs []int64 `json:"allowedGIDs,omitempty"`
}

// CapabilitiesRule configures the capabilities rule.
type CapabilitiesRule struct {
	RuleSettings `json:",inline"`
	// AllowedAdd are the capabilities containers may add after dropping ALL.
	// Default [NET_BIND_SERVICE], as Pod Security Standard restricted.
	AllowedAdd []corev1.Capability `json:"allowedAdd,omitempty"`
}

// ResourcesRule configures the resources rule.
type ResourcesRule struct {
	RuleSettings `json:",inline"`
	// DefaultLimits are injected where a container has no limit.
	// Default cpu 500m, memory 512Mi.
	DefaultLimits corev1.ResourceList `json:"defaultLimits,omitempty"`
	// DefaultRequests are injected where a container has neither a request
	// nor a limit. Default cpu 100m, memory 128Mi.
	DefaultRequests corev1.ResourceList `json:"defaultRequests,omitempty"`
	// MaxLimits, when set, caps the limits a container may ask for.
	MaxLimits corev1.ResourceList `json:"maxLimits,omitempty"`
}

// SecretsInEnvRule configures the secretsInEnv rule.
type SecretsInEnvRule struct {
	RuleSettings `json:",inline"`
	// NamePatterns are regular expressions (RE2); an env var whose name
	// matches one must not carry a literal value.
	NamePatterns []string `json:"namePatterns,omitempty"`
}

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
	// Expires, an RFC 3339 timestamp or a date (YYYY-MM-DD, meaning 00:00
	// UTC that day), ends the exemption; after it a warning says it expired.
	Expires string `json:"expires,omitempty"`
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
