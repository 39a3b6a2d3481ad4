package policies_test

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/policies"
)

// benchSpec is a typical application pod: 3 containers with env, ports,
// probes, volume mounts, resources. compliant chooses whether it already
// satisfies the default policy (the steady state) or has nothing set (what
// mutation fixes).
func benchSpec(compliant bool) corev1.PodSpec {
	spec := corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
			{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	for i, name := range []string{"app", "sidecar", "metrics"} {
		c := corev1.Container{
			Name:  name,
			Image: fmt.Sprintf("registry.example/%s:1.%d", name, i),
			Env: []corev1.EnvVar{
				{Name: "LOG_LEVEL", Value: "info"},
				{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			},
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: int32(8080 + i)}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "cache", MountPath: "/tmp"}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt(8080 + i)}}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt(8080 + i)}}},
			Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
		}
		if compliant {
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")}
			c.SecurityContext = &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}
		}
		spec.Containers = append(spec.Containers, c)
	}
	if compliant {
		spec.SecurityContext = &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000), FSGroup: ptr.To[int64](1000),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}
	return spec
}

func benchObjects(compliant bool) map[string]func() any {
	return map[string]func() any{
		"Pod": func() any {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps"}, Spec: benchSpec(compliant)}
		},
		"Deployment": func() any {
			return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps"},
				Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: benchSpec(compliant)}}}
		},
	}
}

func variants() []struct {
	name      string
	compliant bool
} {
	return []struct {
		name      string
		compliant bool
	}{{"compliant", true}, {"bare", false}}
}

// BenchmarkValidate: podguard's full default policy on one object.
func BenchmarkValidate(b *testing.B) {
	e := enforcer(b, "")
	for _, v := range variants() {
		for kind, mk := range benchObjects(v.compliant) {
			b.Run(kind+"/"+v.name, func(b *testing.B) {
				obj := mk().(interface{ DeepCopyObject() runtimeObject })
				o := obj.DeepCopyObject()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := e.Validate(o, policies.Attributes{Namespace: "apps"}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDeepCopy is the cost of the fresh copy each mutation benchmark
// iteration makes (the webhook decodes a fresh object per request instead).
func BenchmarkDeepCopy(b *testing.B) {
	for _, v := range variants() {
		for kind, mk := range benchObjects(v.compliant) {
			b.Run(kind+"/"+v.name, func(b *testing.B) {
				src := mk().(interface{ DeepCopyObject() runtimeObject })
				b.ReportAllocs()
				for b.Loop() {
					_ = src.DeepCopyObject()
				}
			})
		}
	}
}

// BenchmarkMutate: podguard's mutation of one object, including rendering
// the JSON patch the webhook sends. Each iteration mutates a fresh deep
// copy; BenchmarkDeepCopy gives the copy's share (pausing the timer per
// iteration would cost more than the work measured).
func BenchmarkMutate(b *testing.B) {
	e := enforcer(b, "")
	for _, v := range variants() {
		for kind, mk := range benchObjects(v.compliant) {
			b.Run(kind+"/"+v.name, func(b *testing.B) {
				src := mk().(interface{ DeepCopyObject() runtimeObject })
				b.ReportAllocs()
				for b.Loop() {
					o := src.DeepCopyObject()
					changes, err := e.Mutate(o, policies.Attributes{Namespace: "apps"})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := jsonPatch(changes); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkValidateAndMutate is the webhook's work per Pod: mutate (on the
// mutating endpoint), then validate the result (on the validating one),
// plus a deep copy (see BenchmarkDeepCopy).
func BenchmarkValidateAndMutate(b *testing.B) {
	e := enforcer(b, "")
	for _, v := range variants() {
		b.Run("Pod/"+v.name, func(b *testing.B) {
			src := benchObjects(v.compliant)["Pod"]().(*corev1.Pod)
			b.ReportAllocs()
			for b.Loop() {
				o := src.DeepCopy()
				changes, _ := e.Mutate(o, policies.Attributes{Namespace: "apps"})
				if _, err := jsonPatch(changes); err != nil {
					b.Fatal(err)
				}
				if _, err := e.Validate(o, policies.Attributes{Namespace: "apps"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPSARestricted: k8s.io/pod-security-admission's evaluator at
// restricted:latest on the same objects, the baseline to compare with.
func BenchmarkPSARestricted(b *testing.B) {
	ev, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		b.Fatal(err)
	}
	lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for _, v := range variants() {
		b.Run("Pod/"+v.name, func(b *testing.B) {
			p := benchObjects(v.compliant)["Pod"]().(*corev1.Pod)
			b.ReportAllocs()
			for b.Loop() {
				psapolicy.AggregateCheckResults(ev.EvaluatePod(lv, &p.ObjectMeta, &p.Spec))
			}
		})
		b.Run("Deployment/"+v.name, func(b *testing.B) {
			d := benchObjects(v.compliant)["Deployment"]().(*appsv1.Deployment)
			b.ReportAllocs()
			for b.Loop() {
				psapolicy.AggregateCheckResults(ev.EvaluatePod(lv, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec))
			}
		})
	}
}
