package report_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/report"
)

// TestImagesAsSubjects: with image verdicts, each namespace lists its
// images by repository and digest, once however many subjects run one
// (a Pod of an older revision counts for its Deployment), with the worst
// result, the signers and the subjects; text, HTML and JSON show them.
func TestImagesAsSubjects(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	keyPEM := strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "\n", "\n            ")
	e := enforcer(t, `apiVersion: podguard.dev/v1alpha1
kind: Policy
rules:
  imageSignatures:
    trust:
    - images: ["registry.example/*"]
      authorities:
      - name: release
        key:
          pem: |
            `+keyPEM+`
`)
	signed, unsigned := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	spec := func(image string) corev1.PodSpec {
		s := compliantSpec("web")
		s.Containers[0].Image = image
		return s
	}
	web := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta("apps", "web", "d1", nil, nil),
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec("registry.example/web:1.0@" + signed)}}}
	rs := &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, ObjectMeta: meta("apps", "web-0", "r0", ownedBy("Deployment", "web", "d1"), nil),
		Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec("registry.example/web:0.9@" + unsigned)}}}
	old := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta("apps", "web-0-x", "p0", ownedBy("ReplicaSet", "web-0", "r0"), nil),
		Spec: spec("registry.example/web:0.9@" + unsigned)}
	tool := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta("apps", "tool", "p1", nil, nil),
		Spec: spec("registry.example/web@" + unsigned)}
	facts := func(_ *v1alpha1.Policy, tg *podspec.Target, a *policies.Attributes) {
		a.ImageVerdicts = imagetrust.Verdicts{}
		for _, img := range tg.Images() {
			_, d, _ := strings.Cut(img.Reference, "@")
			v := imagetrust.Verdict{Digest: d, Status: imagetrust.Unsigned, Detail: "release: no signature found"}
			if d == signed {
				v = imagetrust.Verdict{Digest: d, Status: imagetrust.Verified, Signers: []string{"release"}, VerifiedAt: now}
			}
			a.ImageVerdicts[imagetrust.Key{Ref: img.Reference}] = v
		}
	}
	r := report.Build(e, report.Input{Objects: []runtime.Object{web, rs, old, tool}, Now: now, ImageFacts: facts})
	if len(r.Namespaces) != 1 {
		t.Fatalf("namespaces: %+v", r.Namespaces)
	}
	imgs := r.Namespaces[0].Images
	if len(imgs) != 2 {
		t.Fatalf("images: %+v, want the unsigned and the signed digest", imgs)
	}
	bad, good := imgs[0], imgs[1]
	if bad.Digest != unsigned || bad.Result != report.Fail || bad.Rule != "imageSignatures" || strings.Join(bad.Subjects, ",") != "Deployment/web,Pod/tool" || !strings.Contains(bad.Detail, "no valid signature") {
		t.Errorf("the unsigned digest: %+v", bad)
	}
	if good.Digest != signed || good.Result != report.Pass || strings.Join(good.Signers, ",") != "release" || strings.Join(good.Subjects, ",") != "Deployment/web" || good.VerifiedAt == nil {
		t.Errorf("the signed digest: %+v", good)
	}

	var text, page, js bytes.Buffer
	if err := r.Text(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "image denied by imageSignatures: registry.example/web:0.9@"+unsigned) ||
		!strings.Contains(text.String(), "run by Deployment/web, Pod/tool") || !strings.Contains(text.String(), "images passing the image rules: 1") {
		t.Errorf("text:\n%s", text.String())
	}
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), unsigned) || !strings.Contains(page.String(), "signed by release") {
		t.Error("the HTML report lists no image")
	}
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Namespaces []struct {
			Images []report.ImageSubject `json:"images"`
		} `json:"namespaces"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Namespaces) != 1 || len(back.Namespaces[0].Images) != 2 {
		t.Errorf("JSON: %v %+v", err, back)
	}
	// The background audit's report object: the finding's result names
	// the image and the digest judged.
	obj, _ := r.Namespaces[0].Object(report.OpenReports, now)
	found := false
	for _, res := range obj["results"].([]any) {
		props, _ := res.(map[string]any)["properties"].(map[string]any)
		if res.(map[string]any)["rule"] == "imageSignatures" && props["digest"] == unsigned && props["image"] == "registry.example/web@"+unsigned {
			found = true
		}
	}
	if !found {
		t.Errorf("no report result names the unsigned image and its digest: %v", obj["results"])
	}
	// Without image verdicts (no --verify-images), no image is listed.
	plain := report.Build(e, report.Input{Objects: []runtime.Object{web, rs, old, tool}, Now: now})
	if n := len(plain.Namespaces[0].Images); n != 0 {
		t.Errorf("without verdicts, %d images listed", n)
	}
}
