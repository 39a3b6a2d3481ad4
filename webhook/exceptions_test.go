package webhook_test

// PodGuardExceptions on the real API server: RBAC is the approval (a user
// with only the requester role asks in one namespace, and is refused in
// another), podguard refuses what the policy does not allow, an exception
// applies within seconds of its creation and stops applying at its expiry
// without a restart; and the webhook, the CLI, the audit and the native
// export decide alike on the same set of exceptions.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/native"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/webhook"
)

const exceptionCRD = "../charts/podguard/files/crds/podguard.dev_podguardexceptions.yaml"

// uidDeployment is a compliant Deployment but for its UID (999); privileged
// adds a rule no exception may lift.
func uidDeployment(name string, labels map[string]string, privileged bool) *appsv1.Deployment {
	spec := testenv.CompliantSpec("app", "registry.example/app:1")
	spec.SecurityContext.RunAsUser = ptr.To[int64](999)
	if privileged {
		spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
		spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	}
	sel := map[string]string{"app": name}
	for k, v := range labels {
		sel[k] = v
	}
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: sel}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: spec}}}
}

func pgex(ns, name string, spec v1alpha1.PodGuardExceptionSpec) *unstructured.Unstructured {
	x := v1alpha1.PodGuardException{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.ExceptionKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	u, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(&x)
	return &unstructured.Unstructured{Object: u}
}

// requesterRole is the chart's podguard-exception-requester, read from the
// kustomize build generated from it.
func requesterRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile("../config/rbac/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var r rbacv1.ClusterRole
		if yaml.Unmarshal([]byte(doc), &r) == nil && r.Kind == "ClusterRole" && r.Name == "podguard-exception-requester" {
			return &r
		}
	}
	t.Fatal("no podguard-exception-requester ClusterRole in config/rbac/rbac.yaml")
	return nil
}

func TestExceptionsOnTheAPIServer(t *testing.T) {
	c := startCluster(t, clusterConfig{crds: []string{exceptionCRD}, mutate: func(o *webhook.Options) {
		o.AuditInterval = 0
	}})
	// The watcher needs API access: restart podguard with the kubeconfig.
	c.stopPodguard(t)
	c.opts.Kubeconfig = c.Kubeconfig
	c.startPodguard(t)
	ctx := context.Background()
	for _, ns := range []string{"team-a", "team-b"} {
		c.namespace(t, ns, nil)
	}
	if _, err := c.cs.RbacV1().ClusterRoles().Create(ctx, requesterRole(t), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.RbacV1().RoleBindings("team-a").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-exceptions"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "podguard-exception-requester"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice", APIGroup: "rbac.authorization.k8s.io"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	alice, err := c.AddUser(envtest.User{Name: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	asAlice := dynamic.NewForConfigOrDie(alice.Config()).Resource(webhook.ExceptionsResource)
	create := func(ns string, x *unstructured.Unstructured) error {
		_, err := asAlice.Namespace(ns).Create(ctx, x, metav1.CreateOptions{})
		return err
	}
	in30d := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.DateOnly)
	redis := v1alpha1.PodGuardExceptionSpec{Rules: []string{"runAsUser"}, Workloads: []v1alpha1.WorkloadRef{{Kind: "Deployment", Name: "redis"}},
		Reason: "redis runs as 999", Expires: in30d}

	// RBAC is the approval: alice may ask in team-a, not in team-b.
	if err := create("team-b", pgex("team-b", "redis", redis)); !apierrors.IsForbidden(err) {
		t.Errorf("an exception in a namespace without the requester role: %v", err)
	}
	// What the policy does not allow is refused by podguard, naming why.
	priv := redis
	priv.Rules = []string{"privileged"}
	if err := create("team-a", pgex("team-a", "priv", priv)); err == nil || !strings.Contains(err.Error(), "does not let rule privileged be excepted") {
		t.Errorf("an exception of a baseline rule: %v", err)
	}
	long := redis
	long.Expires = time.Now().Add(200 * 24 * time.Hour).UTC().Format(time.DateOnly)
	if err := create("team-a", pgex("team-a", "long", long)); err == nil || !strings.Contains(err.Error(), "maxDuration") {
		t.Errorf("an exception expiring too far ahead: %v", err)
	}
	// What the schema knows, the API server refuses itself.
	empty := redis
	empty.Workloads, empty.Selector = nil, &metav1.LabelSelector{}
	if err := create("team-a", pgex("team-a", "empty", empty)); err == nil || !strings.Contains(err.Error(), "empty selector") {
		t.Errorf("an exception with an empty selector: %v", err)
	}
	all := redis
	all.Workloads = nil
	if err := create("team-a", pgex("team-a", "all", all)); err == nil || !strings.Contains(err.Error(), "never covers a whole namespace") {
		t.Errorf("an exception of a whole namespace: %v", err)
	}

	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	admitted := func(d *appsv1.Deployment) error {
		_, err := c.cs.AppsV1().Deployments("team-a").Create(ctx, d, dry)
		return err
	}
	if err := admitted(uidDeployment("redis", nil, false)); err == nil {
		t.Fatal("redis (UID 999) admitted before any exception")
	}
	if err := create("team-a", pgex("team-a", "redis", redis)); err != nil {
		t.Fatalf("alice's exception: %v", err)
	}
	eventually(t, 10*time.Second, "the exception applies", func() (bool, string) {
		err := admitted(uidDeployment("redis", nil, false))
		return err == nil, fmt.Sprint(err)
	})
	if err := admitted(uidDeployment("other", nil, false)); err == nil {
		t.Error("the exception covers a workload it does not name")
	}
	if err := admitted(uidDeployment("redis", nil, true)); err == nil || !strings.Contains(err.Error(), "privileged") {
		t.Errorf("the exception lifted a rule it does not name: %v", err)
	}

	// Expiry without restart: an exception ending in a few seconds.
	soon := v1alpha1.PodGuardExceptionSpec{Rules: []string{"runAsUser"}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "cache"}},
		Reason: "a short trial", Expires: time.Now().Add(8 * time.Second).UTC().Format(time.RFC3339)}
	if err := create("team-a", pgex("team-a", "soon", soon)); err != nil {
		t.Fatal(err)
	}
	cache := uidDeployment("cache", map[string]string{"tier": "cache"}, false)
	eventually(t, 5*time.Second, "the short exception applies", func() (bool, string) {
		err := admitted(cache)
		return err == nil, fmt.Sprint(err)
	})
	eventually(t, 15*time.Second, "the expired exception stops applying, without a restart", func() (bool, string) {
		err := admitted(cache)
		return err != nil && strings.Contains(err.Error(), "runAsUser"), fmt.Sprint(err)
	})
	// The metrics follow when the set is republished at the expiry (a
	// timer), which may come a moment after a request judged it expired.
	eventually(t, 10*time.Second, "the metrics count the expired exception", func() (bool, string) {
		metrics := httpGet(t, "http://"+c.opts.MetricsBindAddress+"/metrics")
		for _, want := range []string{`podguard_exemption_expiry_timestamp_seconds{exemption="team-a/redis",source="exception"}`, `podguard_exceptions{state="expired"} 1`, `podguard_exceptions{state="active"} 1`} {
			if !strings.Contains(metrics, want) {
				return false, "metrics lack " + want
			}
		}
		return true, ""
	})

	agreeOnExceptions(t, c)
}

// agreeOnExceptions judges the same Deployments under the same exceptions
// through the webhook, podguard validate --exceptions, podguard audit
// (which reads the cluster's exceptions), validate --kubeconfig (which
// does too) and the native export with --exceptions, and compares the
// verdicts.
func agreeOnExceptions(t *testing.T, c *cluster) {
	ctx := context.Background()
	deployments := []*appsv1.Deployment{
		uidDeployment("redis", nil, false),                                // excepted
		uidDeployment("redis-priv", nil, true),                            // excepted workload name differs: denied
		uidDeployment("web", map[string]string{"tier": "web"}, false),     // not excepted: denied
		uidDeployment("batch", map[string]string{"team": "batch"}, false), // excepted by selector
		uidDeployment("api", map[string]string{"team": "batch"}, true),    // selector, but privileged: denied
	}
	sel := v1alpha1.PodGuardExceptionSpec{Rules: []string{"runAsUser"}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "batch"}},
		Reason: "batch images run as 999", Expires: time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.DateOnly)}
	if _, err := dynamic.NewForConfigOrDie(c.Config).Resource(webhook.ExceptionsResource).Namespace("team-a").Create(ctx, pgex("team-a", "batch", sel), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	verdicts := func(what string, judge func(d *appsv1.Deployment) bool) map[string]bool {
		out := map[string]bool{}
		for _, d := range deployments {
			out[d.Name] = judge(d)
		}
		t.Logf("%s: %v", what, out)
		return out
	}
	var webhookV map[string]bool
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		webhookV = verdicts("webhook", func(d *appsv1.Deployment) bool {
			_, err := c.cs.AppsV1().Deployments("team-a").Create(ctx, d, dry)
			return err == nil
		})
		if webhookV["batch"] || time.Now().After(deadline) {
			break
		}
	}
	want := map[string]bool{"redis": true, "redis-priv": false, "web": false, "batch": true, "api": false}
	for n, v := range want {
		if webhookV[n] != v {
			t.Errorf("webhook: %s allowed=%v, want %v", n, webhookV[n], v)
		}
	}

	// The exceptions as the cluster holds them, and the Deployments, as files.
	dir := t.TempDir()
	out, err := exec.Command(c.Kubectl, "--kubeconfig", c.Kubeconfig, "get", "podguardexceptions", "-A", "-o", "yaml").Output()
	if err != nil {
		t.Fatal(err)
	}
	exFile := filepath.Join(dir, "exceptions.yaml")
	write(t, exFile, string(out))
	objs := make([]any, len(deployments))
	for i, d := range deployments {
		objs[i] = d
	}
	cliV := validateVerdicts(t, objs, "--mutate", "--target-namespace", "team-a", "--exceptions", exFile)
	t.Logf("CLI: %v", cliV)
	// The same CLI reading the cluster's exceptions itself.
	clusterV := validateVerdicts(t, objs, "--mutate", "--target-namespace", "team-a", "--kubeconfig", c.Kubeconfig)
	t.Logf("CLI --kubeconfig: %v", clusterV)
	// Without either, the exceptions are not applied: the test can fail.
	if bare := validateVerdicts(t, objs, "--mutate", "--target-namespace", "team-a"); bare["redis"] || bare["batch"] {
		t.Errorf("CLI without exceptions admits the excepted workloads: %v", bare)
	}

	// The audit: the Deployments created for real (podguard stopped and
	// its configurations removed meanwhile), judged as admitted.
	c.removePodguard(t)
	for _, d := range deployments {
		if _, err := c.cs.AppsV1().Deployments("team-a").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := exec.Command(testenv.PodguardBinary(t), "audit", "--kubeconfig", c.Kubeconfig, "-n", "team-a", "-o", "json").Output()
	var audited report.Report
	if err := json.Unmarshal(res, &audited); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	auditV := map[string]bool{}
	for _, ns := range audited.Namespaces {
		for _, s := range ns.Subjects {
			auditV[s.Name] = s.Result != report.Fail
		}
	}
	t.Logf("audit: %v", auditV)
	listed := map[string]string{}
	for _, x := range audited.Exceptions {
		listed[x.Name] = x.State + " " + strings.Join(x.Subjects, ",")
	}
	if listed["redis"] != "active Deployment/redis" || listed["batch"] != "active Deployment/api,Deployment/batch" || !strings.HasPrefix(listed["soon"], "expired") {
		t.Errorf("the audit's exceptions: %v", listed)
	}
	for _, d := range deployments {
		_ = c.cs.AppsV1().Deployments("team-a").Delete(ctx, d.Name, metav1.DeleteOptions{})
	}

	// The native export with the same exceptions written in.
	xs, err := readExceptionList(out)
	if err != nil {
		t.Fatal(err)
	}
	p := load.Default("podguard")
	exported, err := native.Build(policiesWithExceptions(p, xs), native.Options{ExcludeNamespaces: []string{"kube-system", "podguard"}, OptOutLabel: "podguard.dev/ignore"})
	if err != nil {
		t.Fatal(err)
	}
	applyExportIn(t, c, exported, "team-b")
	nativeV := verdicts("native", func(d *appsv1.Deployment) bool {
		_, err := c.cs.AppsV1().Deployments("team-a").Create(ctx, d, dry)
		return err == nil
	})
	for _, d := range deployments {
		n := d.Name
		if cliV[n] != webhookV[n] || clusterV[n] != webhookV[n] || auditV[n] != webhookV[n] || nativeV[n] != webhookV[n] {
			t.Errorf("%s: webhook %v, CLI %v, CLI --kubeconfig %v, audit %v, native %v", n, webhookV[n], cliV[n], clusterV[n], auditV[n], nativeV[n])
		}
	}
}

// readExceptionList reads kubectl get -o yaml output (a v1 List).
func readExceptionList(data []byte) ([]v1alpha1.PodGuardException, error) {
	var l v1alpha1.PodGuardExceptionList
	if err := yaml.Unmarshal(data, &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

func policiesWithExceptions(p *v1alpha1.Policy, xs []v1alpha1.PodGuardException) *v1alpha1.Policy {
	return policies.WithExceptions(p, xs, time.Now())
}

// applyExportIn creates the exported objects and waits until kube-apiserver
// enforces them in namespace ns.
func applyExportIn(t *testing.T, c *cluster, e *native.Export, ns string) {
	t.Helper()
	createExport(t, c, e)
	waitNative(t, c.cs, ns, 30*time.Second)
}

// validateVerdicts writes objs as one manifest file, judges it with the
// podguard binary's validate -o json and the given flags, and returns
// whether each object (by name) was allowed.
func validateVerdicts(t *testing.T, objs []any, flags ...string) map[string]bool {
	t.Helper()
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	manifests := filepath.Join(t.TempDir(), "manifests.yaml")
	write(t, manifests, strings.Join(docs, "---\n"))
	out, _ := exec.Command(testenv.PodguardBinary(t), append(append([]string{"validate"}, flags...), "-f", manifests, "-o", "json")...).Output()
	var rep struct {
		Results []struct {
			Name    string
			Allowed bool
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	verdicts := map[string]bool{}
	for _, r := range rep.Results {
		verdicts[r.Name] = r.Allowed
	}
	return verdicts
}

// eventually polls cond every 200ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
	}
	t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
}
