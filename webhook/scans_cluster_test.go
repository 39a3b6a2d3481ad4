package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook"
)

// TestImageVulnerabilitiesOnTheAPIServer: with imageVulnerabilities
// enforced (a scan at most 7 days old, nothing high or critical but one
// allowed finding), on the real kube-apiserver: a clean recent scan is
// admitted; a critical finding is denied by name; an allowed one is
// admitted; an image without a scan attestation, and one whose scan is too
// old, are denied.
func TestImageVulnerabilitiesOnTheAPIServer(t *testing.T) {
	reg := testenv.StartRegistry(t)
	scanner := sigtest.NewSigner(t)
	scanned := func(repoTag string, age time.Duration, findings map[string]string) string {
		d := reg.PushRandom(t, repoTag)
		repo := strings.SplitN(repoTag, ":", 2)[0]
		if findings != nil {
			sigtest.SignBundle(t, reg, scanner, repo, d, sigtest.VulnStatement(reg.Host+"/"+repo, d, time.Now().Add(-age), findings))
		}
		return reg.Host + "/" + repoTag + "@" + d.String()
	}
	clean := scanned("team/clean:1", time.Hour, map[string]string{"CVE-2026-0100": "LOW"})
	critical := scanned("team/critical:1", time.Hour, map[string]string{"CVE-2026-0200": "CRITICAL"})
	allowedHigh := scanned("team/allowed:1", time.Hour, map[string]string{"CVE-2026-0001": "HIGH"})
	unscanned := scanned("team/unscanned:1", 0, nil)
	stale := scanned("team/stale:1", 30*24*time.Hour, map[string]string{})

	ps := rules.ImageVulnerabilitiesParams{Scans: []rules.ImageScan{{
		Images: []string{reg.Host + "/team/*"}, MaxSeverity: "high",
		Authorities:            []rules.Authority{{Name: "scanner", Key: &rules.KeyAuthority{PEM: scanner.PEM}}},
		AllowedVulnerabilities: []rules.AllowedVulnerability{{ID: "CVE-2026-0001", Reason: "not reachable", Expires: time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.DateOnly)}},
	}}}
	policy, err := yaml.Marshal(map[string]any{"apiVersion": "podguard.dev/v1alpha1", "kind": "Policy", "rules": map[string]any{"imageVulnerabilities": ps}})
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, clusterConfig{policy: string(policy), mutate: func(o *webhook.Options) { o.RegistryCAFile = reg.CAFile }})
	c.namespace(t, "scan", nil)
	ctx := context.Background()
	create := func(name, image string) error {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: bareSpec("app")}
		p.Spec.Containers[0].Image = image
		_, err := c.cs.CoreV1().Pods("scan").Create(ctx, p, metav1.CreateOptions{})
		return err
	}
	for _, tc := range []struct {
		name, image, denial string
	}{
		{"clean", clean, ""},
		{"allowed", allowedHigh, ""},
		{"critical", critical, "CVE-2026-0200 (critical)"},
		{"unscanned", unscanned, "no vulnerability-scan attestation"},
		{"stale", stale, "over maxAge"},
	} {
		err := create(tc.name, tc.image)
		switch {
		case tc.denial == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.denial != "" && (err == nil || !strings.Contains(err.Error(), "imageVulnerabilities") || !strings.Contains(err.Error(), tc.denial)):
			t.Errorf("%s: want a denial by imageVulnerabilities saying %q, got %v", tc.name, tc.denial, err)
		}
	}
}
