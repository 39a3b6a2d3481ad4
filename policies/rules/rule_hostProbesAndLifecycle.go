package rules

// hostProbesAndLifecycle: probes and lifecycle handlers talk to the pod
// itself, never to another host (the kubelet would make requests on the
// pod's behalf). Fields: {liveness,readiness,startup}Probe and
// lifecycle.{postStart,preStop} .httpGet.host and .tcpSocket.host must be
// empty. As PSA baseline (latest). No fix.

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"*containers.livenessProbe", "*containers.readinessProbe", "*containers.startupProbe", "*containers.lifecycle"},
		ID:    "hostProbesAndLifecycle", Order: 170, Action: v1alpha1.ActionEnforce,
		Checklist: ItemHostAccess,
		Doc:       `Probes and lifecycle handlers set no host.`,
		PSS:       []PSSCheck{{ID: "hostProbesAndHostLifecycle", Level: Baseline}},
		New:       newHostProbesAndLifecycle,
		Native:    nativeHostProbesAndLifecycle,
	})
}

func newHostProbesAndLifecycle(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "hostProbesAndLifecycle",
		Summary: "probes and lifecycle handlers set no host",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				report := func(host string, segs ...string) {
					if host == "" {
						return
					}
					p := c.Path().Child(segs...)
					out = append(out, forbidden(p, fmt.Sprintf("container %q sends a probe or lifecycle request to host %q", c.Name, host),
						fmt.Sprintf("remove %s; the handler then targets the pod's own IP", p)))
				}
				probe := func(name string, pr *corev1.Probe) {
					if pr == nil {
						return
					}
					if pr.HTTPGet != nil {
						report(pr.HTTPGet.Host, name, "httpGet", "host")
					}
					if pr.TCPSocket != nil {
						report(pr.TCPSocket.Host, name, "tcpSocket", "host")
					}
				}
				probe("livenessProbe", c.LivenessProbe)
				probe("readinessProbe", c.ReadinessProbe)
				probe("startupProbe", c.StartupProbe)
				if c.Lifecycle == nil {
					continue
				}
				for _, lh := range []struct {
					name string
					h    *corev1.LifecycleHandler
				}{{"postStart", c.Lifecycle.PostStart}, {"preStop", c.Lifecycle.PreStop}} {
					name, h := lh.name, lh.h
					if h == nil {
						continue
					}
					if h.HTTPGet != nil {
						report(h.HTTPGet.Host, "lifecycle", name, "httpGet", "host")
					}
					if h.TCPSocket != nil {
						report(h.TCPSocket.Host, "lifecycle", name, "tcpSocket", "host")
					}
				}
			}
			return out
		},
	}
}

func nativeHostProbesAndLifecycle(*v1alpha1.Policy, NativeMode) Native {
	var parts []string
	for _, h := range []string{"livenessProbe", "readinessProbe", "startupProbe", "lifecycle.?postStart", "lifecycle.?preStop"} {
		for _, a := range []string{"httpGet", "tcpSocket"} {
			parts = append(parts, fmt.Sprintf("c.?%s.?%s.?host.orValue('') == ''", h, a))
		}
	}
	return Native{
		Container: strings.Join(parts, " && "),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("send probe or lifecycle requests to another host; fix: remove host from "),
			specField("containers[*]"), celString(" probes and lifecycle handlers")),
	}
}
