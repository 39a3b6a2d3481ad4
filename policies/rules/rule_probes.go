package rules

// probes: long-running containers declare liveness and readiness probes
// (Docker's HEALTHCHECK), so Kubernetes restarts hung ones and routes
// traffic only to ready ones. Fields: spec.containers[*].livenessProbe and
// readinessProbe. Only regular containers: not init containers, native
// sidecars or ephemeral containers, and not pods that run to completion
// (Job and CronJob templates, Pods owned by a Job). Default action warn.
// No fix: a probe must know the application.

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"containers.livenessProbe", "containers.readinessProbe", "containers.startupProbe", "restartPolicy"},
		ID:    "probes", Order: 190, Action: v1alpha1.ActionWarn,
		Checklist: ItemProbes,
		Doc: `Long-running containers have liveness and readiness probes (not init,
sidecar or ephemeral containers, not pods of Jobs and CronJobs).`,
		New:    newProbes,
		Native: nativeProbes,
	})
}

func newProbes(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "probes",
		Summary: "long-running containers have liveness and readiness probes",
		Check: func(t *podspec.Target) []Finding {
			if t.JobPod {
				return nil
			}
			var out []Finding
			for _, c := range t.Containers {
				if c.Kind != podspec.RegularContainer {
					continue
				}
				if c.LivenessProbe == nil {
					p := c.Path().Child("livenessProbe")
					out = append(out, Finding{Type: field.ErrorTypeRequired, Field: p.String(),
						Message: fmt.Sprintf("container %q has no liveness probe", c.Name),
						Fix:     fmt.Sprintf("set %s (httpGet, tcpSocket, grpc or exec)", p)})
				}
				if c.ReadinessProbe == nil {
					p := c.Path().Child("readinessProbe")
					out = append(out, Finding{Type: field.ErrorTypeRequired, Field: p.String(),
						Message: fmt.Sprintf("container %q has no readiness probe", c.Name),
						Fix:     fmt.Sprintf("set %s (httpGet, tcpSocket, grpc or exec)", p)})
				}
			}
			return out
		},
	}
}

func nativeProbes(*v1alpha1.Policy, NativeMode) Native {
	return Native{
		Regular:   true,
		Container: "variables.jobPod || (has(c.livenessProbe) && has(c.readinessProbe))",
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("lack a liveness or readiness probe; fix: set "),
			specField("containers[*].livenessProbe"), celString(" and readinessProbe (httpGet, tcpSocket, grpc or exec)")),
	}
}
