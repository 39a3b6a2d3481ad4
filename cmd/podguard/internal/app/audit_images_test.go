package app_test

import (
	"context"
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
	sigtest.SignLegacy(t, reg, key, "team/app", d, sigtest.SimpleSigningPayload(reg.Host+"/team/app", d))
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
	b, err := yaml.Marshal(map[string]any{"apiVersion": "podguard.dev/v1alpha1", "kind": "Policy", "rules": map[string]any{"imageSignatures": ps}})
	if err != nil {
		t.Fatal(err)
	}
	policy := write(t, t.TempDir(), "policy.yaml", string(b))
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
