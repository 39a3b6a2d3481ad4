package charts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/webhook/audit"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/webhook"
)

// TestRBACIsSufficient installs the chart's ServiceAccounts, RBAC, Secret
// and webhook configurations into a real API server and runs podguard as
// the chart runs it, as those ServiceAccounts (impersonated): the webhook
// replicas (--operation=webhook, built-in certificates, authenticated
// metrics) must become ready, inject their CA, admit pods and serve
// metrics only to an authorized scraper; the audit Deployment
// (--operation=audit, its own ServiceAccount, the webhook's certificate
// for its metrics) must write the report of a namespace under the Lease.
// Each ServiceAccount can do nothing else of note: the webhook's reads no
// workload at all. The audit-reader ClusterRole is proven the same way:
// podguard audit as a user bound to it reads the whole cluster.
func TestRBACIsSufficient(t *testing.T) {
	env := testenv.StartT(t, nil)
	ctx := context.Background()
	cs := env.Clientset
	for _, ns := range []string{"podguard", "apps", "monitoring"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	port, _ := testenv.FreePort()
	var webhooks []string
	for _, o := range objects(t, render(t, []string{"audit.installCRDs=true"})) {
		switch o["kind"] {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Secret", "CustomResourceDefinition":
			y, _ := yaml.Marshal(o)
			cmd := execKubectl(env, string(y), "apply", "-n", "podguard", "-f", "-")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("applying %s: %v\n%s", kindName(o), err, out)
			}
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			y, _ := yaml.Marshal(o)
			webhooks = append(webhooks, string(y))
		}
	}
	// Something to audit, there before podguard starts.
	seed := &testenv.Seeder{CS: cs, Ctx: ctx}
	priv := testenv.CompliantSpec("c", "registry.example/c:1")
	priv.Containers[0].SecurityContext.Privileged = ptr.To(true)
	priv.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	seed.Deployment("apps", "legacy", priv, 2, nil)
	seed.NetworkPolicy("apps", "all", nil)
	if seed.Err() != nil {
		t.Fatal(seed.Err())
	}

	hooks := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(hooks, []byte(strings.Join(webhooks, "\n---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	// The API server reaches the local server by URL; podguard injects the CA.
	if err := testenv.InstallWebhooks(ctx, cs, hooks, fmt.Sprintf("https://localhost:%d", port), nil); err != nil {
		t.Fatal(err)
	}

	// Kubeconfigs that act as the chart's ServiceAccounts: the webhook's and
	// the audit Deployment's.
	asServiceAccount := func(name string) string {
		kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		for _, ai := range kc.AuthInfos {
			ai.Impersonate = "system:serviceaccount:podguard:" + name
			ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:podguard", "system:authenticated"}
		}
		path := filepath.Join(t.TempDir(), name+".kubeconfig")
		if err := clientcmd.WriteToFile(*kc, path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	saKubeconfig, auditKubeconfig := asServiceAccount("podguard"), asServiceAccount("podguard-audit")

	// serve runs podguard as the chart runs it, until the test ends, and
	// waits for it to be ready.
	serve := func(o webhook.Options, logs *testenv.LogBuffer) {
		healthPort, _ := testenv.FreePort()
		o.HealthProbeBindAddress = fmt.Sprintf("127.0.0.1:%d", healthPort)
		o.ShutdownTimeout = 5 * time.Second
		lvl := zapcore.InfoLevel
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- webhook.Run(runCtx, o, zap.New(zap.WriteTo(logs), zap.Level(&lvl))) }()
		t.Cleanup(func() {
			stop()
			<-done
		})
		deadline := time.Now().Add(90 * time.Second)
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			select {
			case err := <-done:
				t.Fatalf("podguard exited: %v\n%s", err, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready as the chart's ServiceAccount:\n%s", logs.String())
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	// The webhook replicas: --operation=webhook, the audit elsewhere.
	o := webhook.DefaultOptions()
	o.CertMode, o.CertDir, o.Kubeconfig = webhook.CertModeBuiltin, filepath.Join(t.TempDir(), "certs"), saKubeconfig
	o.Operations = []string{webhook.OperationWebhook}
	o.Host, o.Port = "127.0.0.1", port
	metricsPort, _ := testenv.FreePort()
	o.MetricsBindAddress, o.MetricsSecure = fmt.Sprintf("127.0.0.1:%d", metricsPort), true
	logs := &testenv.LogBuffer{}
	serve(o, logs)

	// The audit Deployment: --operation=audit as its own ServiceAccount,
	// its metrics serving tls.crt and tls.key of the certificate Secret
	// (mounted without the CA's key).
	certSecret, err := cs.CoreV1().Secrets(o.Namespace).Get(ctx, o.Builtin.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	auditCerts := t.TempDir()
	for _, k := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(auditCerts, k), certSecret.Data[k], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ao := webhook.DefaultOptions()
	ao.Operations, ao.Kubeconfig, ao.CertDir = []string{webhook.OperationAudit}, auditKubeconfig, auditCerts
	ao.LeaderElect, ao.AuditInterval = true, time.Hour
	auditMetricsPort, _ := testenv.FreePort()
	ao.MetricsBindAddress, ao.MetricsSecure = fmt.Sprintf("127.0.0.1:%d", auditMetricsPort), true
	auditLogs := &testenv.LogBuffer{}
	serve(ao, auditLogs)

	pod, err := cs.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c:1"}}}}, metav1.CreateOptions{})
	if err != nil || pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.RunAsUser == nil {
		t.Fatalf("pod not admitted and filled in: %v", err)
	}
	// Events, as the ServiceAccount: what was injected into p, and a denial
	// (of a Pod that does not exist, so on its namespace).
	if _, err := cs.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "root"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c:1", SecurityContext: &corev1.SecurityContext{RunAsUser: ptrInt64(0)}}}}}, metav1.CreateOptions{}); err == nil {
		t.Fatal("a pod running as root was admitted")
	}
	for _, want := range []struct{ kind, name, reason string }{{"Pod", "p", webhook.ReasonInjected}, {"Namespace", "apps", webhook.ReasonDenied}} {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
			evs, err := cs.EventsV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=" + want.reason})
			found := false
			for _, e := range evs.Items {
				found = found || (e.Regarding.Kind == want.kind && e.Regarding.Name == want.name && e.ReportingController == "podguard")
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s Event on %s %s as the chart's ServiceAccount: %v %v\n%s", want.reason, want.kind, want.name, err, evs, logs.String())
			}
		}
	}
	// The background audit, as the ServiceAccount, writes apps' report.
	dyn := dynamic.NewForConfigOrDie(env.Config)
	reports := schema.GroupVersionResource{Group: "openreports.io", Version: "v1alpha1", Resource: "reports"}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		r, err := dyn.Resource(reports).Namespace("apps").Get(ctx, "podguard", metav1.GetOptions{})
		if err == nil {
			if fail, _, _ := unstructured.NestedInt64(r.Object, "summary", "fail"); fail < 1 {
				t.Errorf("apps' report: %v", r.Object["summary"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report in apps as the audit's ServiceAccount: %v\n%s", err, auditLogs.String())
		}
	}
	if _, err := cs.CoordinationV1().Leases("podguard").Get(ctx, "podguard-audit", metav1.GetOptions{}); err != nil {
		t.Errorf("no leader election Lease: %v", err)
	}
	for who, l := range map[string]string{"webhook": logs.String(), "audit": auditLogs.String()} {
		if strings.Contains(strings.ToLower(l), "forbidden") {
			t.Errorf("a request was forbidden to the %s's ServiceAccount:\n%s", who, l)
		}
	}

	// Authenticated metrics: a scraper with get on /metrics reads them, an
	// anonymous request does not.
	if _, err := cs.CoreV1().ServiceAccounts("monitoring").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scraper"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "scraper", Namespace: "monitoring"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts("monitoring").CreateToken(ctx, "scraper", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caPool := x509.NewCertPool()
	if !caPool.AppendCertsFromPEM(certSecret.Data["ca.crt"]) {
		t.Fatalf("no ca.crt in the certificate Secret %s", o.Builtin.SecretName)
	}
	serverName := o.Builtin.ServiceName + "." + o.Namespace + ".svc"
	scrape := func(port int, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", port), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		// As the chart's ServiceMonitor has Prometheus verify it: with the CA
		// in podguard's certificate Secret, for the webhook Service's name.
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool, ServerName: serverName}}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := scrape(metricsPort, tok.Status.Token); code != http.StatusOK || !strings.Contains(body, "podguard_decisions_total") {
		t.Errorf("authorized scrape: %d\n%.300s", code, body)
	}
	if code, body := scrape(auditMetricsPort, tok.Status.Token); code != http.StatusOK || !strings.Contains(body, "podguard_audit_last_run_timestamp_seconds") {
		t.Errorf("authorized scrape of the audit: %d\n%.300s", code, body)
	}
	for _, port := range []int{metricsPort, auditMetricsPort} {
		if code, _ := scrape(port, ""); code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("anonymous scrape of :%d answered %d", port, code)
		}
	}

	// Least privilege: the ServiceAccount cannot read other secrets, pods, or
	// change other webhook configurations.
	cfg, err := clientcmd.BuildConfigFromFlags("", saKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	as := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cs.CoreV1().Secrets("podguard").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["get another Secret"] = as.CoreV1().Secrets("podguard").Get(ctx, "other", metav1.GetOptions{})
	_, checks["list Secrets of another namespace"] = as.CoreV1().Secrets("apps").List(ctx, metav1.ListOptions{})
	_, checks["get a Pod"] = as.CoreV1().Pods("apps").Get(ctx, "legacy-1-0", metav1.GetOptions{})
	checks["delete a Pod"] = as.CoreV1().Pods("apps").Delete(ctx, "legacy-1-0", metav1.DeleteOptions{})
	_, checks["list ConfigMaps"] = as.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	_, checks["update another Lease"] = as.CoordinationV1().Leases("podguard").Update(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.UpdateOptions{})
	checks["delete its own webhook configuration"] = as.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, "podguard", metav1.DeleteOptions{})
	_, checks["create a Secret"] = as.CoreV1().Secrets("podguard").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	// With the audit in its own Deployment, the webhook reads no workload.
	_, checks["list Pods"] = as.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	_, checks["list Deployments"] = as.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	_, checks["take the audit's Lease"] = as.CoordinationV1().Leases("podguard").Get(ctx, "podguard-audit", metav1.GetOptions{})
	for what, err := range checks {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the webhook's ServiceAccount may %s (err %v)", what, err)
		}
	}
	// The audit's ServiceAccount reads workloads and writes reports, and
	// nothing of the webhook's: no Secret, no webhook configuration.
	acfg, err := clientcmd.BuildConfigFromFlags("", auditKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	aas := kubernetes.NewForConfigOrDie(acfg)
	auditChecks := map[string]error{}
	_, auditChecks["get the certificate Secret"] = aas.CoreV1().Secrets("podguard").Get(ctx, o.Builtin.SecretName, metav1.GetOptions{})
	_, auditChecks["get a Pod"] = aas.CoreV1().Pods("apps").Get(ctx, "legacy-1-0", metav1.GetOptions{})
	auditChecks["delete a Pod"] = aas.CoreV1().Pods("apps").Delete(ctx, "legacy-1-0", metav1.DeleteOptions{})
	_, auditChecks["list webhook configurations"] = aas.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	_, auditChecks["list ConfigMaps"] = aas.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	for what, err := range auditChecks {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the audit's ServiceAccount may %s (err %v)", what, err)
		}
	}

	// The audit-reader ClusterRole is all podguard audit needs.
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "auditor"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "podguard-audit-reader"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "auditor"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	auditor := rest.CopyConfig(env.Config)
	auditor.Impersonate = rest.ImpersonationConfig{UserName: "auditor", Groups: []string{"system:authenticated"}}
	// The binding takes a moment to reach the API server's authorizer.
	var in report.Input
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if in, err = audit.List(ctx, auditor, audit.ListOptions{}); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(in.Objects) < 4 || len(in.NetworkPolicies) != 1 {
		t.Errorf("podguard audit -A as the audit-reader: %v (%d objects, %d NetworkPolicies)", err, len(in.Objects), len(in.NetworkPolicies))
	}
	if _, err := audit.List(ctx, auditor, audit.ListOptions{Namespace: "nowhere"}); err == nil || !strings.Contains(err.Error(), `namespace "nowhere" not found`) {
		t.Errorf("audit -n nowhere as the audit-reader: %v", err)
	}
	_, err = kubernetes.NewForConfigOrDie(auditor).CoreV1().Secrets("podguard").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("the audit-reader may list Secrets: %v", err)
	}
}

func execKubectlCmd(env *testenv.Env, args ...string) []string {
	return append([]string{"--kubeconfig", env.Kubeconfig}, args...)
}

func ptrInt64(v int64) *int64 { return &v }
