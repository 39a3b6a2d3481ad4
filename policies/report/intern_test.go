package report_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/policies/rules"
)

// replica is a Pod as a ReplicaSet creates it in a real cluster: its own
// node and its own generated token volume.
func replica(name, node, token string) *corev1.Pod {
	spec := compliantSpec("web")
	spec.AutomountServiceAccountToken = nil
	spec.NodeName = node
	spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists}}
	spec.Volumes = []corev1.Volume{{Name: token, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}}
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: token, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name, OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "r1", Controller: ptr.To(true)}}},
		Spec:       spec}
}

// TestInternerSharesReplicaSpecs: replicas that differ only in what no
// rule reads share one spec, with the verdicts of the originals; a bare
// Pod is left alone; Retain forgets specs no Pod holds.
func TestInternerSharesReplicaSpecs(t *testing.T) {
	e := enforcer(t, "")
	in := report.NewInterner()
	a, b := replica("web-1-a", "node-1", "kube-api-access-x7k2p"), replica("web-1-b", "node-2", "kube-api-access-9qz4m")
	va, _ := e.Validate(a.DeepCopy(), policies.Attributes{Namespace: "apps"})
	sa := in.Pod(rules.Slim(a).(*corev1.Pod))
	sb := in.Pod(rules.Slim(b).(*corev1.Pod))
	if &sa.Spec.Containers[0] != &sb.Spec.Containers[0] || in.Len() != 1 {
		t.Fatalf("the replicas' specs are not shared (%d specs)", in.Len())
	}
	vb, _ := e.Validate(sb, policies.Attributes{Namespace: "apps"})
	if len(va.Violations) != len(vb.Violations) || len(va.Warnings) != len(vb.Warnings) || va.Allowed != vb.Allowed {
		t.Errorf("verdicts differ: original %+v, interned %+v", va, vb)
	}
	if sb.Name != "web-1-b" || sb.Spec.Volumes[0].Name != sb.Spec.Containers[0].VolumeMounts[0].Name {
		t.Errorf("identity or mounts lost: %s %+v", sb.Name, sb.Spec.Volumes)
	}
	bare := replica("bare", "node-1", "kube-api-access-abcde")
	bare.OwnerReferences = nil
	if got := in.Pod(bare); got.Spec.Volumes[0].Name != "kube-api-access-abcde" || in.Len() != 1 {
		t.Error("a bare Pod is reported field by field: it must keep its own spec")
	}
	in.Retain(nil)
	if in.Len() != 0 {
		t.Errorf("%d specs retained for no Pod", in.Len())
	}
}
