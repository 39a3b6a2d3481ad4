package webhook_test

// The pod API of Kubernetes 1.34-1.37 on the real 1.37 API server, through
// the webhook: pod-level resources (spec.resources), image volumes
// (volumes[].image), user namespaces (hostUsers: false) and in-place resize
// (pods/resize).

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// podAPIPolicy caps limits at 2 CPUs and 2Gi, and turns userNamespaces on
// (warn, with its fix); hostNamespaces is off, so the user-namespace fix
// meets pods with host namespaces.
const podAPIPolicy = `apiVersion: podguard.dev/v1alpha1
kind: Policy
rules:
  resources:
    maxLimits: {cpu: "2", memory: 2Gi}
  userNamespaces:
    action: warn
    mutate: true
  hostNamespaces:
    action: "off"
`

func compliantPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.0",
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}},
				{Name: "sidecar", Image: "registry.example/sidecar:1.0",
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		}}
}

func TestPodAPIOf137(t *testing.T) {
	c := startCluster(t, clusterConfig{policy: podAPIPolicy})
	c.namespace(t, "apps", nil)
	ctx := context.Background()
	cs, warnings := c.withWarnings()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	q := resource.MustParse

	// Pod-level resources: limits at the pod satisfy the rule for
	// containers without their own, and nothing is injected per container.
	p := compliantPod("pod-level")
	p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("1"), "memory": q("1Gi")}}
	got, err := cs.CoreV1().Pods("apps").Create(ctx, p, dry)
	if err != nil {
		t.Fatalf("a pod with pod-level limits is denied: %v", err)
	}
	for _, ct := range got.Spec.Containers {
		if len(ct.Resources.Limits) > 0 {
			t.Errorf("container %s got limits injected beside the pod's: %v", ct.Name, ct.Resources.Limits)
		}
	}
	// Pod-level cpu, container memory: admitted; cpu stays the pod's.
	p = compliantPod("pod-cpu-container-memory")
	p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("1")}}
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].Resources.Limits = corev1.ResourceList{"memory": q("256Mi")}
	}
	if got, err = cs.CoreV1().Pods("apps").Create(ctx, p, dry); err != nil {
		t.Errorf("pod-level cpu with container memory: %v", err)
	} else if _, ok := got.Spec.Containers[0].Resources.Limits["cpu"]; ok {
		t.Errorf("a container cpu limit was injected beside the pod's")
	}
	// Pod-level cpu, no memory anywhere: memory is injected per container.
	p = compliantPod("pod-cpu-only")
	p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("1")}}
	if got, err = cs.CoreV1().Pods("apps").Create(ctx, p, dry); err != nil {
		t.Errorf("pod-level cpu only: %v", err)
	} else if m := got.Spec.Containers[0].Resources.Limits["memory"]; m.String() != "512Mi" {
		t.Errorf("memory not injected per container: %v", got.Spec.Containers[0].Resources)
	}
	// A pod-level limit above the maximum is denied, naming the field.
	p = compliantPod("pod-level-above")
	p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("4"), "memory": q("1Gi")}}
	if _, err = cs.CoreV1().Pods("apps").Create(ctx, p, dry); err == nil || !strings.Contains(err.Error(), "spec.resources.limits.cpu") {
		t.Errorf("a pod-level limit above the maximum: %v", err)
	}

	// Image volumes: an unpinned one warns, naming its field.
	p = compliantPod("image-volume")
	p.Spec.Volumes = []corev1.Volume{{Name: "model", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "registry.example/model:latest"}}}}
	warnings.Take()
	if _, err = cs.CoreV1().Pods("apps").Create(ctx, p, dry); err != nil {
		t.Errorf("a pod with an image volume: %v", err)
	} else if !strings.Contains(strings.Join(warnings.All(), "\n"), "spec.volumes[0].image.reference") {
		t.Errorf("no imageTag warning for the image volume: %q", warnings.All())
	}

	// User namespaces: injected where the API server accepts it, never
	// producing a pod it refuses; the others are warned about.
	if got, err = cs.CoreV1().Pods("apps").Create(ctx, compliantPod("userns"), dry); err != nil || got.Spec.HostUsers == nil || *got.Spec.HostUsers {
		t.Errorf("hostUsers: false not injected: %v %v", err, got.Spec.HostUsers)
	}
	for name, mod := range map[string]func(*corev1.Pod){
		"host-network": func(p *corev1.Pod) { p.Spec.HostNetwork = true },
		"host-pid":     func(p *corev1.Pod) { p.Spec.HostPID = true },
		"host-ipc":     func(p *corev1.Pod) { p.Spec.HostIPC = true },
		"volume-devices": func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "d"}}}}
			p.Spec.Containers[0].VolumeDevices = []corev1.VolumeDevice{{Name: "d", DevicePath: "/dev/xvda"}}
		},
	} {
		p := compliantPod(name)
		mod(p)
		warnings.Take()
		got, err := cs.CoreV1().Pods("apps").Create(ctx, p, dry)
		if err != nil {
			t.Errorf("%s: refused (the fix must never produce a pod the API server refuses): %v", name, err)
			continue
		}
		if got.Spec.HostUsers != nil {
			t.Errorf("%s: hostUsers injected where the API server refuses it", name)
		}
		if !strings.Contains(strings.Join(warnings.All(), "\n"), "cannot run in a user namespace") {
			t.Errorf("%s: no warning naming what stands in the way: %q", name, warnings.All())
		}
	}

	// pods/resize: judged for resources. Above the maximum is denied;
	// removing a limit is refused by the API server itself (1.37), before
	// podguard is asked. The resizes keep requests equal to limits: the API
	// server refuses a resize that changes the pod's QoS class.
	p = compliantPod("resized")
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].Resources.Limits = corev1.ResourceList{"cpu": q("500m"), "memory": q("256Mi")}
	}
	if _, err := cs.CoreV1().Pods("apps").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the pod to resize: %v", err)
	}
	resize := func(patch string) error {
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			_, err = cs.CoreV1().Pods("apps").Patch(ctx, "resized", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "resize")
			if err == nil || !strings.Contains(err.Error(), "conflict") || time.Now().After(deadline) {
				return err
			}
		}
	}
	if err := resize(`{"spec":{"containers":[{"name":"app","resources":{"limits":{"cpu":"4","memory":"256Mi"},"requests":{"cpu":"4","memory":"256Mi"}}}]}}`); err == nil || !strings.Contains(err.Error(), "podguard rule resources") {
		t.Errorf("a resize above the maximum: %v", err)
	}
	if err := resize(`{"spec":{"containers":[{"name":"app","resources":{"limits":{"cpu":"1","memory":"256Mi"},"requests":{"cpu":"1","memory":"256Mi"}}}]}}`); err != nil {
		t.Errorf("a resize within the maximum: %v", err)
	}
	// Pod-level resources resize too (InPlacePodLevelResourcesVerticalScaling,
	// beta and on in 1.36): above the maximum is denied.
	pl := compliantPod("resized-pod-level")
	pl.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("1"), "memory": q("1Gi")}, Requests: corev1.ResourceList{"cpu": q("1"), "memory": q("1Gi")}}
	if _, err := cs.CoreV1().Pods("apps").Create(ctx, pl, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the pod-level pod to resize: %v", err)
	}
	_, err = cs.CoreV1().Pods("apps").Patch(ctx, "resized-pod-level", types.StrategicMergePatchType,
		[]byte(`{"spec":{"resources":{"limits":{"cpu":"4"},"requests":{"cpu":"4"}}}}`), metav1.PatchOptions{}, "resize")
	switch {
	case err != nil && strings.Contains(err.Error(), "podguard rule resources") && strings.Contains(err.Error(), "spec.resources.limits.cpu"):
	case err != nil && !strings.Contains(err.Error(), "podguard"):
		t.Logf("a pod-level resize: refused by the API server itself: %v", err)
	default:
		t.Errorf("a pod-level resize above the maximum: %v", err)
	}
	err = resize(`{"spec":{"containers":[{"name":"app","resources":{"limits":{"cpu":null}}}]}}`)
	switch {
	case err == nil:
		t.Errorf("a resize that removes a limit was admitted")
	case strings.Contains(err.Error(), "podguard rule resources"):
		t.Logf("removing a limit by resize: denied by podguard")
	case strings.Contains(err.Error(), "resource limits cannot be removed"):
		// kube-apiserver 1.37 makes it impossible before podguard is asked.
		t.Logf("removing a limit by resize: refused by the API server itself: %v", err)
	default:
		t.Errorf("removing a limit by resize: %v", err)
	}
}

// TestPodLevelResourcesGateOff stands in for API servers before 1.34 (or
// with PodLevelResources turned off): the API server drops spec.resources
// after mutating admission and before validating admission. The mutating
// webhook, seeing pod-level limits, injects no container limits; the
// validating webhook then sees containers without limits and denies the
// pod, naming them. Nothing runs without limits.
func TestPodLevelResourcesGateOff(t *testing.T) {
	c := startCluster(t, clusterConfig{apiserverFlags: map[string]string{"feature-gates": "PodLevelResources=false,PodLevelResourcesFixKubeletQOSClass=false,PodLevelResourcesFixDefaulting=false,InPlacePodLevelResourcesVerticalScaling=false"}})
	c.namespace(t, "apps", nil)
	cs, _ := c.withWarnings()
	p := compliantPod("pod-level-gate-off")
	p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("1Gi")}}
	_, err := cs.CoreV1().Pods("apps").Create(context.Background(), p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil {
		t.Fatal("admitted: with the gate off the pod would run without limits")
	}
	for _, want := range []string{"podguard rule resources", "spec.containers[0].resources.limits.cpu", "spec.containers[1].resources.limits.memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the denial does not name %q: %v", want, err)
		}
	}
}
