package rules

import (
	"strconv"
	"strings"
)

// Native is a rule's native form for one policy: CEL for a
// ValidatingAdmissionPolicy and, for a fix in force, a
// MutatingAdmissionPolicy's mutations. policies/native assembles the
// objects; the rule only says what holds.
//
// The expressions may use these variables, which every exported policy
// defines for its kind of object:
//
//	variables.spec        the pod spec (object.spec, object.spec.template.spec...)
//	variables.meta        the pod's metadata (AppArmor annotations live there)
//	variables.specPath    the spec's field path, for messages ('spec.template.spec')
//	variables.containers  init and regular containers
//	variables.windows     spec.os.name is windows
//	variables.jobPod      the pod runs to completion (Job, CronJob, owned by a Job)
//
// In Container and ContainerMessage a container is c. Exemptions are added
// by the builder around Pod and Container; mutations write $exempt(c) where
// a container exemption must be honoured (the builder replaces it).
type Native struct {
	// WebhookOnly, when set, says why the rule has no faithful CEL form;
	// everything else is then empty.
	WebhookOnly string
	// Pod is a CEL boolean: the pod-level fields comply ("" = none).
	Pod string
	// PodMessage is a CEL string for a pod-level failure.
	PodMessage string
	// Regular restricts Container to regular containers (no init).
	Regular bool
	// Container is a CEL boolean over c: the container complies ("" = none).
	Container string
	// ContainerMessage is a CEL string completing "container(s) a, b ...".
	ContainerMessage string
	// Inject is the fix for Pods, as values to add where they are absent;
	// empty when the fix is not in force (no fix, mutate false, action off).
	// The builder composes every rule's injections into one JSON patch.
	Inject []Injection
	// MutationWebhookOnly, when set, says why a fix in force has no native
	// form (the webhook still injects it).
	MutationWebhookOnly string
}

// Injection is one value a fix adds to a Pod, never over a set value.
type Injection struct {
	// Container adds the value to each container c (init and regular)
	// for which When holds; otherwise to the pod spec.
	Container bool
	// Path is the field below the pod spec or the container,
	// e.g. securityContext.runAsUser or resources.limits.cpu.
	Path []string
	// Value is CEL for the value.
	Value string
	// When is a CEL boolean (over c for containers, which may use
	// $exempt(c)): the value is added only then, and only where the field
	// is absent. "" means whenever it is absent.
	When string
	// Append adds Value at the end of the list at Path (creating it),
	// whenever When holds: for atomic lists such as capabilities.drop,
	// which an apply configuration would replace.
	Append bool
}

// NativeMode says which object the CEL judges.
type NativeMode int

const (
	// AsSubmitted judges the object as it is: Pods, after the native
	// mutations ran.
	AsSubmitted NativeMode = iota
	// AsAdmitted judges a pod template as the webhook does: what Pod
	// mutation will fix is not a violation, only what nothing can fix.
	AsAdmitted
)

// celString quotes s as a CEL string literal.
func celString(s string) string { return strconv.Quote(s) }

// celList renders a list of strings as a CEL list literal.
func celList[T ~string](items []T) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = celString(string(it))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// celInts renders a list of integers as a CEL list literal.
func celInts(items []int64) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = strconv.FormatInt(it, 10)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// specField is CEL for the path of a field below the pod spec, for
// messages: variables.specPath + '.rest'.
func specField(rest string) string {
	return "variables.specPath + " + celString("."+rest)
}
