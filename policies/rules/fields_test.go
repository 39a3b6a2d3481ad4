package rules_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/rules"
)

// decidedNotToRead are the pod spec fields no rule reads, each with the
// reason it was reviewed and left alone. A path covers the fields below
// it; "*containers." stands for init, regular and ephemeral containers.
// When podguard moves to a newer k8s.io/api, TestEveryPodSpecFieldIsDecided
// names the fields that appeared: each needs a rule that reads it (its
// Definition's Reads) or a line here.
var decidedNotToRead = map[string]string{
	"activeDeadlineSeconds":               "how long a pod may run: no privilege",
	"affinity":                            "scheduling only",
	"dnsConfig":                           "the pod's own name resolution: no access to the node's (hostNetwork is judged)",
	"dnsPolicy":                           "the pod's own name resolution: no access to the node's (hostNetwork is judged)",
	"enableServiceLinks":                  "service environment variables: values the cluster sets, no privilege",
	"evictionResponders":                  "who is told of an eviction (1.37): lifecycle, no privilege",
	"hostAliases":                         "lines of the pod's own /etc/hosts, not the node's",
	"hostname":                            "the pod's own hostname: no host namespace (hostNetwork is judged)",
	"hostnameOverride":                    "the pod's own hostname (1.34): no host namespace",
	"subdomain":                           "the pod's own DNS name",
	"setHostnameAsFQDN":                   "the pod's own hostname",
	"nodeName":                            "scheduling only",
	"nodeSelector":                        "scheduling only",
	"tolerations":                         "scheduling only",
	"topologySpreadConstraints":           "scheduling only",
	"schedulerName":                       "scheduling only",
	"schedulingGates":                     "scheduling only",
	"schedulingGroup":                     "scheduling only (gang scheduling, 1.35)",
	"priority":                            "scheduling only (set from priorityClassName by the API server)",
	"priorityClassName":                   "scheduling and eviction order only",
	"preemptionPolicy":                    "scheduling only",
	"overhead":                            "set by the RuntimeClass admission plugin: resource accounting only",
	"readinessGates":                      "readiness conditions: no privilege",
	"resourceClaims":                      "Dynamic Resource Allocation claims: devices a driver allocates under its own (admin-defined) classes; not judged (README: Kubernetes versions)",
	"runtimeClassName":                    "a RuntimeClass cluster admins defined (gVisor, Kata...): a pod can only pick what they offer",
	"shareProcessNamespace":               "the pod's containers see each other's processes: inside the pod, not the node's (hostPID is judged)",
	"terminationGracePeriodSeconds":       "how long shutdown may take: no privilege",
	"securityContext.seLinuxChangePolicy": "how volumes are relabelled (1.33): the labels are judged by seLinuxOptions",
	"securityContext.supplementalGroupsPolicy": "whether the image's /etc/group memberships are added (Merge, the default) or not (Strict): the groups a pod declares are judged by runAsGroup, an image's own are not (README: Kubernetes versions)",
	"*containers.envFrom":                      "environment from ConfigMaps and Secrets by reference: no literal to judge, no privilege",
	"*containers.imagePullPolicy":              "when to pull: the image is judged by its reference",
	"*containers.resizePolicy":                 "whether a resize restarts the container; resizes are judged by resources",
	"*containers.restartPolicyRules":           "per-container restart rules (1.34): restart behaviour, no privilege",
	"containers.restartPolicy":                 "restart behaviour (1.34 per-container restart policy): no privilege",
	"ephemeralContainers.restartPolicy":        "restart behaviour: no privilege",
	"ephemeralContainers.resources":            "the API server refuses resources on ephemeral containers",
	"ephemeralContainers.targetContainerName":  "the container whose processes a debug container joins: inside the pod; its own securityContext is judged",
	"*containers.stdin":                        "an interactive terminal: no privilege",
	"*containers.stdinOnce":                    "an interactive terminal: no privilege",
	"*containers.tty":                          "an interactive terminal: no privilege",
	"*containers.terminationMessagePath":       "where the termination message is read, inside the container",
	"*containers.terminationMessagePolicy":     "where the termination message comes from",
	"*containers.workingDir":                   "the process's working directory, inside the container",
}

// TestEveryPodSpecFieldIsDecided walks every field of the pod spec by
// reflection (PodSpec and all it holds: containers of the three kinds,
// their SecurityContext, the PodSecurityContext, volumes, probes...) and
// fails for a field that no rule reads (its Reads, and what exemptions
// read) and no line of decidedNotToRead covers: a field a new Kubernetes
// version added that needs a decision. A line that covers nothing, or only
// what rules read anyway, is stale and fails too.
func TestEveryPodSpecFieldIsDecided(t *testing.T) {
	var reads podspec.Fields
	for _, d := range rules.Definitions() {
		reads = append(reads, d.Reads...)
	}
	reads = append(reads, rules.AuditReads()...)
	all := podspec.AllFields(reflect.TypeOf(corev1.PodSpec{}))
	// Leaves: fields with nothing below them. A new field is a new leaf.
	isParent := map[string]bool{}
	for _, p := range all {
		if i := strings.LastIndexByte(p, '.'); i > 0 {
			isParent[p[:i]] = true
		}
	}
	var leaves []string
	for _, p := range all {
		if !isParent[p] {
			leaves = append(leaves, p)
		}
	}
	if len(leaves) < 300 {
		t.Fatalf("only %d fields found: the walk is broken", len(leaves))
	}
	used := map[string]bool{}
	undecided, read := 0, 0
	for _, leaf := range leaves {
		if reads.Covers(leaf) {
			read++
			continue
		}
		decided := false
		for entry := range decidedNotToRead {
			if (podspec.Fields{entry}).Covers(leaf) {
				used[entry], decided = true, true
			}
		}
		if !decided {
			undecided++
			t.Errorf("spec.%s: no rule reads it and decidedNotToRead does not list it: decide (a rule's Reads, or a line with the reason)", leaf)
		}
	}
	for _, entry := range slices.Sorted(func(yield func(string) bool) {
		for e := range decidedNotToRead {
			if !yield(e) {
				return
			}
		}
	}) {
		if !used[entry] {
			t.Errorf("decidedNotToRead[%q] covers no field left unread: remove it", entry)
		}
	}
	t.Logf("%d pod spec fields: %d read by rules or exemptions, %d decided not to by %d reviewed lines", len(leaves), read, len(leaves)-read-undecided, len(decidedNotToRead))
	if undecided > 0 {
		t.Logf("%d fields undecided", undecided)
	}
}
