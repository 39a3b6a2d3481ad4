package webhook_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/webhook"
)

// TestPodPullSecretsOnTheAPIServer: with serve --pod-pull-secrets, on the
// real kube-apiserver, a registry that demands credentials is asked with
// the pod's own imagePullSecrets: a signed image of a pod naming the right
// Secret is admitted; before that, the same image in a pod naming none, a
// missing Secret, or the Secret's name in another namespace, is denied as
// unreachable (never as unsigned), and those refusals are not remembered
// against the pod that has credentials. No credential reaches a log line.
func TestPodPullSecretsOnTheAPIServer(t *testing.T) {
	reg := testenv.StartRegistry(t)
	key := sigtest.NewSigner(t)
	d := reg.PushRandom(t, "team/app:1")
	sigtest.Sign(t, reg, key, "team/app", d)
	reg.RequireBasicAuth("team", "s3cret")
	image := reg.Host + "/team/app:1@" + d.String()

	c := startCluster(t, clusterConfig{policy: signaturePolicy(t, reg.Host, key.PEM), mutate: func(o *webhook.Options) {
		o.RegistryCAFile, o.PodPullSecrets = reg.CAFile, true
	}})
	// Reading the pods' Secrets needs API access: restart podguard with the kubeconfig.
	c.stopPodguard(t)
	c.opts.Kubeconfig = c.Kubeconfig
	c.startPodguard(t)
	c.namespace(t, "pull", nil)
	c.namespace(t, "other", nil)
	ctx := context.Background()
	auth := base64.StdEncoding.EncodeToString([]byte("team:s3cret"))
	for _, ns := range []string{"pull"} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "registry"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + reg.Host + `":{"auth":"` + auth + `"}}}`)}}
		if _, err := c.cs.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(ns, name string, secrets ...string) error {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
		for _, s := range secrets {
			if s == "" {
				continue
			}
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		_, err := c.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		return err
	}
	unreachable := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "registry was unreachable") {
			t.Errorf("%s: want a denial saying the registry was unreachable, got %v", what, err)
		}
	}
	unreachable("a pod naming no pull secret", create("pull", "without"))
	unreachable("the same Secret name in a namespace that has no such Secret", create("other", "elsewhere", "registry"))
	unreachable("a pod naming a missing Secret", create("pull", "missing", "nope"))
	// Right after those refusals: a registry's 401 is about the
	// credentials presented, not an outage remembered for the next pod.
	if err := create("pull", "with", "registry"); err != nil {
		t.Errorf("a pod naming its namespace's pull secret: %v", err)
	}
	// A verdict is about the image's digest, not about who may pull it:
	// verified with one pod's credentials, the digest is admitted for the
	// next pod too (whose kubelet still needs credentials to pull it).
	if err := create("other", "after", ""); err != nil {
		t.Errorf("a digest verified a moment ago, for a pod without credentials: %v", err)
	}
	for _, l := range strings.Split(c.logs.String(), "\n") {
		if strings.Contains(l, auth) || strings.Contains(l, "s3cret") {
			t.Errorf("a log line holds the pull secret's credentials: %s", l)
		}
	}
}
