package charts

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/webhook"
)

// TestBackstop installs the chart with nativePolicies.backstop=true on a
// real API server. With podguard down (its Service has no endpoints, as
// when every replica is gone) a privileged pod is still denied, a bare pod
// is still admitted with the injected fields, and no request fails. With
// podguard up, the same webhooks (failurePolicy Ignore, as rendered) add
// the webhook's own answers.
func TestBackstop(t *testing.T) {
	env := testenv.StartT(t, nil)
	ctx := context.Background()
	for _, ns := range []string{"podguard", "apps"} {
		if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var webhooks []string
	for _, o := range objects(t, render(t, []string{"nativePolicies.backstop=true"})) {
		y, _ := yaml.Marshal(o)
		switch o["kind"] {
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			if !strings.Contains(string(y), "failurePolicy: Ignore") {
				t.Fatalf("%s: a backstop's webhooks must ignore failures", kindName(o))
			}
			webhooks = append(webhooks, string(y))
			fallthrough
		case "Service", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding":
			if out, err := execKubectl(env, string(y), "apply", "-n", "podguard", "-f", "-").CombinedOutput(); err != nil {
				t.Fatalf("applying %s: %v\n%s", kindName(o), err, out)
			}
		}
	}
	wc := &testenv.Warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = wc
	pods := kubernetes.NewForConfigOrDie(cfg).CoreV1().Pods("apps")
	bare := func(name, image string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	}
	priv := bare("priv", "registry.example/c:1")
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true)}

	// podguard down: the native policies alone.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := pods.Create(ctx, priv, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "podguard") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the native policies do not enforce: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	failed := 0
	for i := range 20 {
		p, err := pods.Create(ctx, bare(fmt.Sprintf("bare-%d", i), "registry.example/c:1"), metav1.CreateOptions{})
		switch {
		case err != nil:
			failed++
			t.Errorf("podguard down: a bare pod failed: %v", err)
		case p.Spec.SecurityContext == nil || p.Spec.SecurityContext.RunAsUser == nil || *p.Spec.SecurityContext.RunAsUser != 1000 ||
			p.Spec.Containers[0].SecurityContext == nil || p.Spec.Containers[0].Resources.Limits.Memory().String() != "512Mi":
			t.Errorf("podguard down: a bare pod was not filled in: %+v", p.Spec)
		}
		if _, err := pods.Create(ctx, priv, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			t.Errorf("podguard down: a privileged pod was not denied by the native policy: %v", err)
		}
	}
	wc.Take()

	// podguard up: the same webhooks, pointed at a local server.
	hooks := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(hooks, []byte(strings.Join(webhooks, "\n---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"podguard"} {
		_ = env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})
		_ = env.Clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})
	}
	ca, err := testenv.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(t.TempDir(), "certs")
	if err := ca.Issue(certDir); err != nil {
		t.Fatal(err)
	}
	port, _ := testenv.FreePort()
	if err := testenv.InstallWebhooks(ctx, env.Clientset, hooks, fmt.Sprintf("https://127.0.0.1:%d", port), ca.PEM); err != nil {
		t.Fatal(err)
	}
	o := webhook.DefaultOptions()
	o.CertMode, o.CertDir, o.Host, o.Port, o.MetricsBindAddress = webhook.CertModeDir, certDir, "127.0.0.1", port, "0"
	health, _ := testenv.FreePort()
	o.HealthProbeBindAddress = fmt.Sprintf("127.0.0.1:%d", health)
	o.ShutdownDelay, o.ShutdownTimeout = 0, 5*time.Second
	lvl := zapcore.InfoLevel
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- webhook.Run(runCtx, o, zap.New(zap.WriteTo(&testenv.LogBuffer{}), zap.Level(&lvl))) }()
	defer func() {
		stop()
		<-done
	}()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", health)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("podguard not ready")
		}
	}
	// The webhook's warnings say more than the native ones (every field).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := pods.Create(ctx, bare("latest", "registry.example/c"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatalf("podguard up: %v", err)
		}
		ws := strings.Join(wc.Take(), "\n")
		if strings.Contains(ws, "podguard: spec.containers[0].image: container \"c\" image") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("podguard up: no webhook warning among:\n%s", ws)
		}
	}
	if failed > 0 {
		t.Errorf("%d requests failed while podguard was down", failed)
	}
}

func ptrTo[T any](v T) *T { return &v }
