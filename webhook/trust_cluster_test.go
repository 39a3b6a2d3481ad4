package webhook_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/testhelper"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook"
)

// kubeletWrite lays files out in dir as the kubelet updates a ConfigMap
// volume: a new timestamped directory, ..data swapped to point at it in
// one rename, each key a symlink through ..data.
func kubeletWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	ts := fmt.Sprintf("..%d", time.Now().UnixNano())
	if err := os.MkdirAll(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range files {
		write(t, filepath.Join(dir, ts, k), v)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for k := range files {
		if _, err := os.Lstat(filepath.Join(dir, k)); err != nil {
			if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestTrustSourcesOnTheAPIServer: an authority whose key is in a
// ConfigMap (mounted as the chart mounts it), on the real kube-apiserver.
// While the ConfigMap is missing, only the images its entry covers are
// denied, saying which object is missing, and images of another entry are
// admitted; once the key is there they are admitted; when the key is
// rotated to another one, the images signed by the old key are denied
// (no verdict of the old key carries over), and podguard validate
// --verify-images --trust-dir decides as the webhook does. A notation
// authority whose CA is in a ConfigMap admits the image its leaf signed
// and not one signed under another CA.
func TestTrustSourcesOnTheAPIServer(t *testing.T) {
	reg := testenv.StartRegistry(t)
	oldKey, newKey := sigtest.NewSigner(t), sigtest.NewSigner(t)
	sign := func(repoTag string) string {
		d := reg.PushRandom(t, repoTag)
		repo := strings.SplitN(repoTag, ":", 2)[0]
		sigtest.Sign(t, reg, oldKey, repo, d)
		return reg.Host + "/" + repoTag + "@" + d.String()
	}
	teamImage, otherImage := sign("team/app:1"), sign("other/app:1")
	// Notary Project signatures: one chaining to the CA the ConfigMap
	// holds, one to another CA.
	root, leaf := testhelper.GetRSARootCertificate(), testhelper.GetRSALeafCertificate()
	otherRoot, otherLeaf := testhelper.GetECRootCertificate(), testhelper.GetECLeafCertificate()
	notarySigned := reg.PushRandom(t, "notary/app:1")
	sigtest.SignNotation(t, reg, "notary/app", notarySigned, leaf.PrivateKey, []*x509.Certificate{leaf.Cert, root.Cert}, "application/cose", nil)
	notaryOther := reg.PushRandom(t, "notary/app:2")
	sigtest.SignNotation(t, reg, "notary/app", notaryOther, otherLeaf.PrivateKey, []*x509.Certificate{otherLeaf.Cert, otherRoot.Cert}, "application/jose+json", nil)

	ps := rules.ImageSignaturesParams{VerdictCache: rules.VerdictCache{VerdictTTL: "1s"}, Trust: []rules.ImageTrust{
		{Images: []string{reg.Host + "/team/*"}, Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{
			PEMFrom: &rules.TrustSource{ConfigMapKeyRef: &rules.ObjectKeyRef{Name: "cosign-keys", Key: "release.pub"}}}}}},
		{Images: []string{reg.Host + "/other/*"}, Authorities: []rules.Authority{{Name: "inline", Key: &rules.KeyAuthority{PEM: oldKey.PEM}}}},
		{Images: []string{reg.Host + "/notary/*"}, Authorities: []rules.Authority{{Name: "notary", Notation: &rules.NotationAuthority{
			CertificatesFrom:  &rules.TrustSource{ConfigMapKeyRef: &rules.ObjectKeyRef{Name: "notation-ca", Key: "ca.crt"}},
			TrustedIdentities: []string{"x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=Notation Test RSA Leaf Cert"}}}}},
	}}
	policy, err := yaml.Marshal(map[string]any{"apiVersion": "podguard.dev/v1alpha1", "kind": "Policy", "rules": map[string]any{"imageSignatures": ps},
		"exemptions": []map[string]any{{"reason": "system", "namespaces": []string{"kube-system", "podguard"}}}})
	if err != nil {
		t.Fatal(err)
	}
	trustDir := t.TempDir()
	cmDir := filepath.Join(trustDir, "configmaps", "cosign-keys")
	if err := os.MkdirAll(cmDir, 0o755); err != nil { // an optional volume of a missing ConfigMap: empty
		t.Fatal(err)
	}
	kubeletWrite(t, filepath.Join(trustDir, "configmaps", "notation-ca"), map[string]string{
		"ca.crt": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}))})
	c := startCluster(t, clusterConfig{policy: string(policy), mutate: func(o *webhook.Options) { o.RegistryCAFile, o.TrustDir = reg.CAFile, trustDir }})
	c.namespace(t, "trust", nil)
	ctx := context.Background()
	n := 0
	create := func(image string) error {
		n++
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", n)}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
		_, err := c.cs.CoreV1().Pods("trust").Create(ctx, p, metav1.CreateOptions{})
		return err
	}

	err = create(teamImage)
	if err == nil || !strings.Contains(err.Error(), `ConfigMap "cosign-keys" key "release.pub"`) {
		t.Errorf("an image whose authority's ConfigMap is missing: want a denial naming the ConfigMap, got %v", err)
	}
	if err := create(otherImage); err != nil {
		t.Errorf("an image of another trust entry while a ConfigMap is missing: %v", err)
	}
	if err := create(reg.Host + "/notary/app:1@" + notarySigned.String()); err != nil {
		t.Errorf("an image signed with notation by the ConfigMap's CA: %v", err)
	}
	if err := create(reg.Host + "/notary/app:2@" + notaryOther.String()); err == nil || !strings.Contains(err.Error(), "no valid signature") {
		t.Errorf("an image signed with notation under another CA: want a denial, got %v", err)
	}

	kubeletWrite(t, cmDir, map[string]string{"release.pub": oldKey.PEM})
	eventually(t, 30*time.Second, "the key, once in the ConfigMap, verifies the image", func() (bool, string) {
		err := create(teamImage)
		return err == nil, fmt.Sprint(err)
	})

	kubeletWrite(t, cmDir, map[string]string{"release.pub": newKey.PEM})
	eventually(t, 30*time.Second, "after rotation to another key, the old key's signature no longer counts", func() (bool, string) {
		err := create(teamImage)
		return err != nil && strings.Contains(err.Error(), "no valid signature"), fmt.Sprint(err)
	})
	if err := create(otherImage); err != nil {
		t.Errorf("the other entry's image after the rotation: %v", err)
	}

	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, policyFile, string(policy))
	pods := []any{}
	for name, image := range map[string]string{"team": teamImage, "other": otherImage} {
		pods = append(pods, map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": image}}}})
	}
	got := validateVerdicts(t, pods, "--mutate", "--verify-images", "--registry-ca-file", reg.CAFile, "--policy", policyFile, "--trust-dir", trustDir, "--target-namespace", "trust")
	if got["team"] || !got["other"] {
		t.Errorf("validate --verify-images --trust-dir after the rotation: %v, want team denied and other admitted as the webhook decides", got)
	}
}
