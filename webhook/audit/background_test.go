package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/webhook/audit"
)

// source is the policy in force, swapped by the test as the webhook's
// policy store swaps it on reload.
type source struct {
	e atomic.Pointer[policies.Enforcer]
}

func (s *source) Enforcer() *policies.Enforcer { return s.e.Load() }

func (s *source) set(t *testing.T, policy string) {
	t.Helper()
	s.e.Store(testenv.Enforcer(t, policy))
}

var (
	policyReports = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}
	openReports   = schema.GroupVersionResource{Group: "openreports.io", Version: "v1alpha1", Resource: "reports"}
)

func installCRD(t *testing.T, env *testenv.Env, file string) {
	t.Helper()
	dir, err := testenv.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join(dir, file)}}); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every 100ms until it holds or timeout passes, and
// returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		ok, s := cond()
		if ok {
			return time.Since(start)
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
	return 0
}

func getReport(dyn dynamic.Interface, gvr schema.GroupVersionResource, ns string) (*unstructured.Unstructured, error) {
	return dyn.Resource(gvr).Namespace(ns).Get(context.Background(), report.ObjectName, metav1.GetOptions{})
}

// TestBackgroundReports runs the background audit against a real
// kube-apiserver with the report CRDs of the upstream projects (see
// hack/tools.sh crds-dir): PolicyReports while only that CRD is installed,
// OpenReports once it is; reports updated within seconds of a change,
// never rewritten when nothing changed, rewritten on a policy change,
// deleted when their namespace has nothing left, capped at 1 MiB.
func TestBackgroundReports(t *testing.T) {
	env := testenv.StartT(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	installCRD(t, env, "wgpolicyk8s.io_policyreports.yaml")
	if err := testenv.SeedAudit(ctx, env.Clientset); err != nil {
		t.Fatal(err)
	}
	src := &source{}
	src.set(t, "")
	m := audit.NewMetrics(nil)
	logs := &testenv.LogBuffer{}
	bg := audit.NewBackground(env.Config, src, zap.New(zap.WriteTo(logs)), m, audit.BackgroundOptions{Interval: 2 * time.Second,
		OptOut: report.OptOut{Label: "podguard.dev/ignore"}})
	done := make(chan error, 1)
	go func() { done <- bg.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the background audit stopped with %v", err)
		}
	}()
	dyn := dynamic.NewForConfigOrDie(env.Config)

	// The first scan writes a PolicyReport per namespace.
	eventually(t, 30*time.Second, "PolicyReports in every namespace", func() (bool, string) {
		for _, ns := range []string{"shop", "ingress-nginx", "argocd", "monitoring", "kube-system"} {
			if _, err := getReport(dyn, policyReports, ns); err != nil {
				return false, fmt.Sprintf("%s: %v", ns, err)
			}
		}
		return true, ""
	})
	shop, _ := getReport(dyn, policyReports, "shop")
	summary, _, _ := unstructured.NestedMap(shop.Object, "summary")
	if summary["fail"].(int64) < 3 || summary["pass"].(int64) < 3 {
		t.Errorf("shop's summary: %v", summary)
	}
	results, _, _ := unstructured.NestedSlice(shop.Object, "results")
	found := false
	for _, r := range results {
		r := r.(map[string]any)
		props, _ := r["properties"].(map[string]any)
		res := r["resources"].([]any)[0].(map[string]any)
		if r["rule"] == "privileged" && res["name"] == "debug-tools" && res["kind"] == "Deployment" && props["cis"] == "5.2.2" &&
			strings.HasPrefix(props["field"].(string), "spec.template.spec.containers[0].securityContext.privileged") && r["result"] == "fail" {
			found = true
		}
	}
	if !found {
		b, _ := json.MarshalIndent(results, "", " ")
		t.Errorf("shop's report lacks debug-tools' privileged finding with its controls:\n%s", b)
	}
	if v := testutil.ToFloat64(m.Subjects.WithLabelValues("shop", "fail")); v < 2 {
		t.Errorf("podguard_audit_subjects{namespace=shop,result=fail} = %v", v)
	}
	// kube-system is exempted by the default policy: its report says so,
	// in results the CRD's schema accepts.
	ks, _ := getReport(dyn, policyReports, "kube-system")
	ksResults, _, _ := unstructured.NestedSlice(ks.Object, "results")
	exempted := 0
	for _, r := range ksResults {
		r := r.(map[string]any)
		if props, _ := r["properties"].(map[string]any); r["result"] == "skip" && r["rule"] == "*" && props["exemption"] == "policy" {
			exempted++
		}
	}
	if exempted == 0 {
		b, _ := json.MarshalIndent(ksResults, "", " ")
		t.Errorf("kube-system's report does not show its exemption:\n%s", b)
	}
	if testutil.ToFloat64(m.LastRun) == 0 {
		t.Error("podguard_audit_last_run_timestamp_seconds not set")
	}

	// Nothing changes: full scans every 2s write nothing.
	writes := func() float64 {
		return testutil.ToFloat64(m.ReportWrites.WithLabelValues("PolicyReport", "update", "success"))
	}
	creates := testutil.ToFloat64(m.ReportWrites.WithLabelValues("PolicyReport", "create", "success"))
	before := writes()
	time.Sleep(5 * time.Second)
	if w := writes(); w != before {
		t.Errorf("%v updates while nothing changed", w-before)
	}
	if c := testutil.ToFloat64(m.ReportWrites.WithLabelValues("PolicyReport", "create", "success")); c != creates || c != 5 {
		t.Errorf("%v creates for 5 namespaces", c)
	}

	// A change to one Pod shows in its namespace's report within 5s.
	priv := testenv.CompliantSpec("c", "registry.example/new:1")
	priv.Containers[0].SecurityContext.Privileged = ptr.To(true)
	priv.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	if _, err := env.Clientset.CoreV1().Pods("monitoring").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "new"}, Spec: priv}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "the new privileged Pod in monitoring's report", func() (bool, string) {
		r, err := getReport(dyn, policyReports, "monitoring")
		if err != nil {
			return false, err.Error()
		}
		b, _ := json.Marshal(r.Object["results"])
		return strings.Contains(string(b), `"name":"new"`), string(b)
	})
	t.Logf("a new Pod reached its namespace's report in %s", took.Round(time.Millisecond))

	// A Pod status update is not a change the audit reads.
	pod, err := env.Clientset.CoreV1().Pods("shop").Get(ctx, "bare-ok", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase, pod.Status.Message = corev1.PodRunning, "running"
	if _, err := env.Clientset.CoreV1().Pods("shop").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A policy change re-judges everything: privileged only warns now.
	updates := writes()
	src.set(t, "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  privileged: {action: warn}\n")
	eventually(t, 10*time.Second, "shop's report after the policy change", func() (bool, string) {
		r, _ := getReport(dyn, policyReports, "shop")
		b, _ := json.Marshal(r.Object["results"])
		return strings.Contains(string(b), `"result":"warn","rule":"privileged"`) || strings.Contains(string(b), `"rule":"privileged","scored":true,"severity":"medium"`), string(b)
	})
	if writes() == updates {
		t.Error("no report was updated after the policy change")
	}

	// A namespace opting out (the webhooks' label) loses its report, and
	// gets it back when it opts in again.
	optOut := func(v string) {
		t.Helper()
		ns, err := env.Clientset.CoreV1().Namespaces().Get(ctx, "ingress-nginx", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels["podguard.dev/ignore"] = v
		if _, err := env.Clientset.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	optOut("true")
	eventually(t, 10*time.Second, "the opted-out namespace's report deleted", func() (bool, string) {
		_, err := getReport(dyn, policyReports, "ingress-nginx")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if testutil.ToFloat64(m.Subjects.WithLabelValues("ingress-nginx", "fail")) != 0 {
		t.Error("the opted-out namespace is still counted in podguard_audit_subjects")
	}
	optOut("false")
	eventually(t, 10*time.Second, "the report back after opting in", func() (bool, string) {
		_, err := getReport(dyn, policyReports, "ingress-nginx")
		return err == nil, fmt.Sprint(err)
	})

	// A namespace with nothing left to judge loses its report.
	if err := env.Clientset.AppsV1().DaemonSets("monitoring").Delete(ctx, "node-exporter", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Clientset.CoreV1().Pods("monitoring").Delete(ctx, "new", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "monitoring's report deleted", func() (bool, string) {
		_, err := getReport(dyn, policyReports, "monitoring")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if testutil.ToFloat64(m.Subjects.WithLabelValues("monitoring", "pass")) != 0 || testutil.CollectAndCount(m.Subjects) == 0 {
		t.Error("monitoring's series outlive it")
	}

	// A namespace deleted: envtest has no namespace controller, so the
	// test does what it would (delete everything in it, the report too)
	// and podguard must not fail or recreate the report.
	if err := env.Clientset.CoreV1().Namespaces().Delete(ctx, "argocd", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = env.Clientset.AppsV1().Deployments("argocd").Delete(ctx, "argocd-redis", metav1.DeleteOptions{})
	_ = env.Clientset.AppsV1().ReplicaSets("argocd").Delete(ctx, "argocd-redis-1", metav1.DeleteOptions{})
	_ = env.Clientset.CoreV1().Pods("argocd").Delete(ctx, "argocd-redis-1-0", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	_ = env.Clientset.AppsV1().StatefulSets("argocd").Delete(ctx, "argocd-application-controller", metav1.DeleteOptions{})
	_ = dyn.Resource(policyReports).Namespace("argocd").Delete(ctx, report.ObjectName, metav1.DeleteOptions{})
	time.Sleep(3 * time.Second)
	if _, err := getReport(dyn, policyReports, "argocd"); !apierrors.IsNotFound(err) {
		t.Errorf("a report in the deleted namespace: %v", err)
	}

	// The size cap, on the real schema: 300 Pods of 10 privileged root
	// containers each are far more findings than 1 MiB holds.
	s := &testenv.Seeder{CS: env.Clientset, Ctx: ctx}
	s.Namespace("big")
	for i := range 300 {
		spec := corev1.PodSpec{}
		for c := range 10 {
			spec.Containers = append(spec.Containers, corev1.Container{Name: fmt.Sprintf("container-%d", c), Image: "registry.example/x:latest",
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true), RunAsUser: ptr.To[int64](0), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}})
		}
		s.Pod("big", fmt.Sprintf("pod-%03d", i), nil, spec)
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	eventually(t, 30*time.Second, "big's report, capped", func() (bool, string) {
		r, err := getReport(dyn, policyReports, "big")
		if err != nil {
			return false, err.Error()
		}
		b, _ := json.Marshal(r.Object)
		results, _, _ := unstructured.NestedSlice(r.Object, "results")
		fail, _, _ := unstructured.NestedInt64(r.Object, "summary", "fail")
		last := results[len(results)-1].(map[string]any)
		ok := len(b) <= report.MaxObjectBytes && last["rule"] == "omitted" && fail >= 300*10*3
		return ok, fmt.Sprintf("%d bytes, %d results, fail %d, last %v", len(b), len(results), fail, last["rule"])
	})

	// OpenReports installed: the next full scan writes Reports.
	installCRD(t, env, "openreports.io_reports.yaml")
	eventually(t, 30*time.Second, "an OpenReports Report in shop", func() (bool, string) {
		r, err := getReport(dyn, openReports, "shop")
		if err != nil {
			return false, err.Error()
		}
		return r.Object["source"] == "podguard", fmt.Sprint(r.Object["source"])
	})
	if got := testutil.ToFloat64(m.ReportKind.WithLabelValues("openreports.io/v1alpha1 Report")); got != 1 {
		t.Errorf("podguard_audit_report_kind: %v", got)
	}
	if errs := testutil.ToFloat64(m.ReportWrites.WithLabelValues("PolicyReport", "update", "error")) + testutil.ToFloat64(m.ReportWrites.WithLabelValues("PolicyReport", "create", "error")); errs > 0 {
		t.Errorf("%v failed writes:\n%s", errs, logs.String())
	}
	if strings.Contains(logs.String(), `"level":"error"`) {
		t.Errorf("errors logged:\n%s", logs.String())
	}

}
