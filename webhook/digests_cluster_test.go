package webhook_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/webhook"
)

// TestImageDigestOnTheAPIServer: on the real kube-apiserver, with
// imageDigest enforced and its fix on, a Pod whose images are tags is
// stored pinned to the digests the registry (in process, over TLS) gives;
// once the registry is gone, a Pod of a tag not yet resolved is denied by
// the validating side for that field, and one by digest is admitted.
func TestImageDigestOnTheAPIServer(t *testing.T) {
	reg := testenv.StartRegistry(t)
	digest := reg.PushRandom(t, "team/app:1.0")
	const policy = "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  imageDigest: {action: enforce, mutate: true}\n"
	c := startCluster(t, clusterConfig{policy: policy, mutate: func(o *webhook.Options) { o.RegistryCAFile = reg.CAFile }})
	c.namespace(t, "pin", nil)
	ctx := context.Background()
	pod := func(name, image string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: bareSpec("app")}
		p.Spec.Containers[0].Image = image
		return p
	}
	ref := reg.Host + "/team/app:1.0"
	got, err := c.cs.CoreV1().Pods("pin").Create(ctx, pod("pinned", ref), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a pod of a resolvable tag was refused: %v", err)
	}
	if want := ref + "@" + digest.String(); got.Spec.Containers[0].Image != want {
		t.Errorf("stored image %q, want %q", got.Spec.Containers[0].Image, want)
	}

	reg.Close()
	_, err = c.cs.CoreV1().Pods("pin").Create(ctx, pod("unresolved", reg.Host+"/team/other:2"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "spec.containers[0].image") || !strings.Contains(err.Error(), "imageDigest") {
		t.Errorf("a tag nobody could resolve: %v", err)
	}
	if _, err := c.cs.CoreV1().Pods("pin").Create(ctx, pod("by-digest", ref+"@"+digest.String()), metav1.CreateOptions{}); err != nil {
		t.Errorf("a pod by digest, registry down: %v", err)
	}
}
