package webhook_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/webhook"
)

// TestBuiltinCertificates runs the built-in mode against the real API
// server: podguard creates the CA and serving certificate in its Secret,
// injects the CA into its own webhook configurations, and renews the
// certificate before it expires (here: a 1-minute certificate renewed 50s
// before expiry) while requests keep being answered.
func TestBuiltinCertificates(t *testing.T) {
	c := startCluster(t, clusterConfig{builtin: true, mutate: func(o *webhook.Options) {
		o.Builtin.CertValidity = time.Minute
		o.Builtin.CAValidity = time.Hour
		o.Builtin.Lookahead = 50 * time.Second
		o.Builtin.CheckInterval = 2 * time.Second
		o.Builtin.SyncInterval = time.Second
	}})
	ctx := context.Background()
	for _, name := range []string{"podguard"} {
		m, err := c.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(m.Webhooks[0].ClientConfig.CABundle) == 0 {
			t.Fatalf("caBundle not injected into the mutating configuration: %v", err)
		}
		v, err := c.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(v.Webhooks[0].ClientConfig.CABundle) == 0 {
			t.Fatalf("caBundle not injected into the validating configuration: %v", err)
		}
	}
	sec, err := c.cs.CoreV1().Secrets(c.opts.Namespace).Get(ctx, c.opts.Builtin.SecretName, metav1.GetOptions{})
	if err != nil || len(sec.Data["tls.crt"]) == 0 || len(sec.Data["ca.crt"]) == 0 {
		t.Fatalf("certificate Secret not filled: %v %v", err, keys(sec))
	}
	c.namespace(t, "apps", nil)
	first := servedCert(t, c.opts.Host, c.opts.Port)
	rotated := false
	deadline := time.Now().Add(45 * time.Second)
	n := 0
	for time.Now().Before(deadline) && !(rotated && n > 20) {
		pod, err := c.cs.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", n)}, Spec: bareSpec("app")},
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("request %d failed: %v", n, err)
		}
		if pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.RunAsUser == nil {
			t.Fatalf("request %d: pod not mutated", n)
		}
		n++
		if servedCert(t, c.opts.Host, c.opts.Port) != first {
			rotated = true
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !rotated {
		t.Fatalf("the serving certificate was not renewed within 45s (%d requests)\nlogs:\n%s", n, c.logs.String())
	}
	t.Logf("%d requests answered while the certificate was renewed", n)
}

func keys(s *corev1.Secret) []string {
	if s == nil {
		return nil
	}
	var out []string
	for k := range s.Data {
		out = append(out, k)
	}
	return out
}
