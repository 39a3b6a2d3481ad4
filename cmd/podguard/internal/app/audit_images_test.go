package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/policies/rules"
)

// TestAuditVerifiesImages: podguard audit --verify-images judges what runs
// with the webhook's verifier: a Pod of an unsigned image fails for
// imageSignatures, one of a signed image passes; without the flag both
// pass, with the images noted as not verified (a warning).
func TestAuditVerifiesImages(t *testing.T) {
	reg := testenv.StartRegistry(t)
	key := sigtest.NewSigner(t)
	d := reg.PushRandom(t, "team/app:1")
	sigtest.Sign(t, reg, key, "team/app", d)
	signed, unsigned := reg.Host+"/team/app:1@"+d.String(), reg.Host+"/team/app:2@"+reg.PushRandom(t, "team/app:2").String()

	env := testenv.StartT(t, nil)
	ctx := context.Background()
	if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, image := range map[string]string{"signed": signed, "unsigned": unsigned} {
		p := &corev1.Pod{}
		if err := yaml.Unmarshal([]byte(compliantPod), p); err != nil {
			t.Fatal(err)
		}
		p.Name, p.Namespace, p.Spec.Containers[0].Image = name, "apps", image
		if _, err := env.Clientset.CoreV1().Pods("apps").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ps := rules.ImageSignaturesParams{Trust: []rules.ImageTrust{{Images: []string{reg.Host + "/team/*"},
		Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: key.PEM}}}}}}
	policy := write(t, t.TempDir(), "policy.yaml", testenv.ImageSignaturesPolicy(t, ps))
	var images []report.ImageSubject
	audited := func(args ...string) map[string]report.Subject {
		t.Helper()
		r := podguard(t, "", append([]string{"audit", "--kubeconfig", env.Kubeconfig, "-n", "apps", "--policy", policy, "-o", "json"}, args...)...)
		var rep report.Report
		if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
			t.Fatalf("%v\n%s%s", err, r.out, r.err)
		}
		out := map[string]report.Subject{}
		images = nil
		for _, ns := range rep.Namespaces {
			for _, s := range ns.Subjects {
				out[s.Name] = s
			}
			images = append(images, ns.Images...)
		}
		return out
	}
	verified := audited("--verify-images", "--registry-ca-file", reg.CAFile)
	if verified["signed"].Result != report.Pass || verified["unsigned"].Result != report.Fail {
		t.Errorf("--verify-images: signed %s, unsigned %s; want pass and fail", verified["signed"].Result, verified["unsigned"].Result)
	}
	// The same verdicts, image by image: the unsigned digest fails first.
	if len(images) != 2 || images[0].Result != report.Fail || strings.Join(images[0].Subjects, ",") != "Pod/unsigned" ||
		images[1].Result != report.Pass || strings.Join(images[1].Signers, ",") != "release" || !strings.HasPrefix(images[1].Digest, "sha256:") {
		t.Errorf("--verify-images: images %+v, want the unsigned digest failing and the signed one passing, with their pods", images)
	}
	offline := audited()
	if len(images) != 0 {
		t.Errorf("without --verify-images: images %+v, want none", images)
	}
	if offline["signed"].Result == report.Fail || offline["unsigned"].Result == report.Fail {
		t.Errorf("offline: signed %s, unsigned %s; neither may fail for a signature nobody checked", offline["signed"].Result, offline["unsigned"].Result)
	}
}

// TestAuditPodPullSecrets: podguard audit --verify-images --pod-pull-secrets
// asks a private registry with each pod's own imagePullSecrets, read with
// the caller's credentials: the pod naming its namespace's Secret passes
// (and the one naming none may too, a verdict being about the digest, as
// in the webhook); without the flag both are reported unreachable (not
// unsigned); the credentials never reach the output.
func TestAuditPodPullSecrets(t *testing.T) {
	reg := testenv.StartRegistry(t)
	key := sigtest.NewSigner(t)
	d := reg.PushRandom(t, "team/app:1")
	sigtest.Sign(t, reg, key, "team/app", d)
	reg.RequireBasicAuth("team", "s3cret-pull")
	image := reg.Host + "/team/app:1@" + d.String()

	env := testenv.StartT(t, nil)
	ctx := context.Background()
	if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("team:s3cret-pull"))
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "registry"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + reg.Host + `":{"auth":"` + auth + `"}}}`)}}
	if _, err := env.Clientset.CoreV1().Secrets("apps").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{"with": "registry", "without": ""} {
		p := &corev1.Pod{}
		if err := yaml.Unmarshal([]byte(compliantPod), p); err != nil {
			t.Fatal(err)
		}
		p.Name, p.Namespace, p.Spec.Containers[0].Image = name, "apps", image
		if secret != "" {
			p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: secret}}
		}
		if _, err := env.Clientset.CoreV1().Pods("apps").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ps := rules.ImageSignaturesParams{Trust: []rules.ImageTrust{{Images: []string{reg.Host + "/team/*"},
		Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: key.PEM}}}}}}
	policy := write(t, t.TempDir(), "policy.yaml", testenv.ImageSignaturesPolicy(t, ps))
	audited := func(args ...string) map[string]report.Subject {
		t.Helper()
		r := podguard(t, "", append([]string{"audit", "--kubeconfig", env.Kubeconfig, "-n", "apps", "--policy", policy, "-o", "json",
			"--verify-images", "--registry-ca-file", reg.CAFile}, args...)...)
		if strings.Contains(r.out+r.err, "s3cret-pull") || strings.Contains(r.out+r.err, auth) {
			t.Errorf("the pull secret's credentials in the output:\n%s%s", r.out, r.err)
		}
		var rep report.Report
		if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
			t.Fatalf("%v\n%s%s", err, r.out, r.err)
		}
		out := map[string]report.Subject{}
		for _, ns := range rep.Namespaces {
			for _, s := range ns.Subjects {
				out[s.Name] = s
			}
		}
		return out
	}
	unreachable := func(what string, s report.Subject) {
		t.Helper()
		b, _ := json.Marshal(s)
		if s.Result != report.Fail || !strings.Contains(string(b), "unreachable") {
			t.Errorf("%s: %s, want a failure saying the registry was unreachable: %s", what, s.Result, b)
		}
	}
	got := audited("--pod-pull-secrets")
	if got["with"].Result != report.Pass {
		b, _ := json.Marshal(got["with"])
		t.Errorf("--pod-pull-secrets, the pod naming its pull secret: %s, want pass: %s", got["with"].Result, b)
	}
	// The pod naming none passes when its digest was verified with the
	// other pod's credentials first, else is reported unreachable: which
	// comes first is the audit's business, never "unsigned".
	if w := got["without"]; w.Result != report.Pass {
		unreachable("--pod-pull-secrets, the pod naming none, judged first", w)
	}
	got = audited()
	unreachable("without --pod-pull-secrets, the pod naming its pull secret", got["with"])
	unreachable("without --pod-pull-secrets, the pod naming none", got["without"])
	if r := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "--policy", policy, "--pod-pull-secrets"); r.code != 2 || !strings.Contains(r.err, "needs --verify-images") {
		t.Errorf("--pod-pull-secrets without --verify-images: exit %d, %s", r.code, r.err)
	}
}
