package webhook_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook"
)

// signaturePolicy requires the key's signature on every image of the test
// registry's team/ repositories, re-reading signatures after a second (so
// an outage is met within the test), exempting the tools/ image of one
// container name only.
func signaturePolicy(t *testing.T, host, pem string) string {
	t.Helper()
	ps := rules.ImageSignaturesParams{VerdictCache: rules.VerdictCache{VerdictTTL: "1s"}, Trust: []rules.ImageTrust{{
		Images:      []string{host + "/team/*"},
		Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: pem}}},
	}}}
	b, err := yaml.Marshal(map[string]any{
		"apiVersion": "podguard.dev/v1alpha1", "kind": "Policy",
		"rules": map[string]any{"imageSignatures": ps},
		"exemptions": []map[string]any{
			{"reason": "kube-system", "namespaces": []string{"kube-system", "podguard"}},
			{"reason": "the debug sidecar's image is signed by its vendor", "rules": []string{"imageSignatures"}, "images": []string{host + "/team/debug:*"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImageSignaturesOnTheAPIServer: with imageSignatures enforced, on the
// real kube-apiserver, through both webhooks: a Pod of a signed digest is
// admitted; an unsigned one is denied for its field; a Deployment naming
// a signed tag is admitted (the validating webhook resolves the tag
// itself); an annotation claiming verification changes nothing; an image
// volume and an ephemeral container are verified like containers; an
// exemption for one image does not exempt another image of the same pod;
// when the registry stops, a digest verified before is admitted with a
// warning and one never verified is denied saying the registry was
// unreachable.
func TestImageSignaturesOnTheAPIServer(t *testing.T) {
	reg := testenv.StartRegistry(t)
	key := sigtest.NewSigner(t)
	sign := func(repoTag string) string {
		d := reg.PushRandom(t, repoTag)
		repo := strings.SplitN(repoTag, ":", 2)[0]
		sigtest.Sign(t, reg, key, repo, d)
		return reg.Host + "/" + repoTag + "@" + d.String()
	}
	signed, signedTag := sign("team/app:1.0"), reg.Host+"/team/app:1.0"
	unsigned := reg.Host + "/team/app:2.0@" + reg.PushRandom(t, "team/app:2.0").String()
	debugImage := reg.Host + "/team/debug:1@" + reg.PushRandom(t, "team/debug:1").String()
	modelSigned, modelUnsigned := sign("team/model:1"), reg.Host+"/team/model:2@"+reg.PushRandom(t, "team/model:2").String()
	later := sign("team/later:1") // verified only once the registry is down: never

	c := startCluster(t, clusterConfig{policy: signaturePolicy(t, reg.Host, key.PEM), mutate: func(o *webhook.Options) { o.RegistryCAFile = reg.CAFile }})
	c.namespace(t, "sig", nil)
	cs, warnings := c.withWarnings()
	ctx := context.Background()
	pod := func(name string, images ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
		for i, img := range images {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
		}
		return p
	}
	create := func(p *corev1.Pod) error {
		_, err := cs.CoreV1().Pods("sig").Create(ctx, p, metav1.CreateOptions{})
		return err
	}
	denied := func(what string, err error, field, text string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "imageSignatures") || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: want a denial by imageSignatures at %s saying %q, got %v", what, field, text, err)
		}
	}

	// The webhook's verdicts, and podguard validate --verify-images's on
	// the same Pods: they must agree.
	webhookV := map[string]bool{}
	var judged []*corev1.Pod
	judge := func(p *corev1.Pod) error {
		err := create(p.DeepCopy())
		webhookV[p.Name] = err == nil
		judged = append(judged, p)
		return err
	}
	if err := judge(pod("signed", signed)); err != nil {
		t.Errorf("a signed digest: %v", err)
	}
	denied("an unsigned digest", judge(pod("unsigned", unsigned)), "spec.containers[0].image", "no valid signature")
	if err := judge(pod("signed-tag", signedTag)); err != nil {
		t.Errorf("a signed tag: %v", err)
	}

	forged := pod("forged", unsigned)
	forged.Annotations = map[string]string{"podguard.dev/verified": "true", "cosign.sigstore.dev/imageRef": signed}
	denied("an unsigned digest with annotations claiming verification", create(forged), "spec.containers[0].image", "no valid signature")

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "by-tag"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "by-tag"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "by-tag"}}, Spec: pod("", signedTag).Spec}}}
	if _, err := cs.AppsV1().Deployments("sig").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Errorf("a Deployment of a signed tag: %v", err)
	}

	vol := func(name, ref string) *corev1.Pod {
		p := pod(name, signed)
		p.Spec.Volumes = []corev1.Volume{{Name: "model", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: ref}}}}
		return p
	}
	if err := judge(vol("volume-signed", modelSigned)); err != nil {
		t.Errorf("a signed image volume: %v", err)
	}
	denied("an unsigned image volume", judge(vol("volume-unsigned", modelUnsigned)), "spec.volumes[0].image.reference", "no valid signature")

	// The exemption covers the debug image's container, not its neighbour.
	if err := judge(pod("exempt-one", signed, debugImage)); err != nil {
		t.Errorf("an exempted unsigned image next to a signed one: %v", err)
	}
	denied("an exempted image next to an unsigned one", judge(pod("exempt-other", unsigned, debugImage)), "spec.containers[0].image", "no valid signature")

	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, policyFile, signaturePolicy(t, reg.Host, key.PEM))
	objs := make([]any, len(judged))
	for i, p := range judged {
		p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		objs[i] = p
	}
	cliV := validateVerdicts(t, objs, "--mutate", "--verify-images", "--registry-ca-file", reg.CAFile, "--policy", policyFile, "--target-namespace", "sig")
	if !maps.Equal(webhookV, cliV) {
		t.Errorf("the webhook and validate --verify-images disagree:\n webhook %v\n CLI     %v", webhookV, cliV)
	}

	// Ephemeral containers (kubectl debug) are verified too.
	running, err := c.cs.CoreV1().Pods("sig").Get(ctx, "signed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Image: unsigned}}}
	_, err = cs.CoreV1().Pods("sig").UpdateEphemeralContainers(ctx, "signed", running, metav1.UpdateOptions{})
	denied("an unsigned ephemeral container", err, "spec.ephemeralContainers[0].image", "no valid signature")

	// The registry stops. The verdicts are a second old at most: past
	// verdictTTL the registry is asked again, and cannot answer.
	reg.Close()
	time.Sleep(1100 * time.Millisecond)
	warnings.Take()
	if err := create(pod("signed-during-outage", signed)); err != nil {
		t.Errorf("a digest verified before the outage: %v", err)
	}
	if w := strings.Join(warnings.Take(), "\n"); !strings.Contains(w, "cannot be reached") || !strings.Contains(w, "admitted on its verification") {
		t.Errorf("no warning that the digest was admitted on an earlier verification: %q", w)
	}
	denied("a digest never verified, registry down", create(pod("never-verified", later)), "spec.containers[0].image", "registry was unreachable")
}
