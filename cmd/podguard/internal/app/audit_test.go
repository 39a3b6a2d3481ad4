package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"podguard.dev/podguard/cmd/podguard/internal/auditcmd"
	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/webhook"
	"podguard.dev/podguard/webhook/audit"
)

// auditEnv is a real control plane seeded with testenv.SeedAudit.
func auditEnv(t *testing.T) *testenv.Env {
	t.Helper()
	env := testenv.StartT(t, nil)
	if err := testenv.SeedAudit(context.Background(), env.Clientset); err != nil {
		t.Fatal(err)
	}
	return env
}

// findingKeys are a list of findings as "rule field", sorted.
func findingKeys[F any](fs []F, key func(F) string) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, key(f))
	}
	sort.Strings(out)
	return out
}

type validated struct {
	Kind, Namespace, Name string
	Allowed               bool
	Violations, Warnings  []struct{ Rule, Field string }
	OwnerUID              string
}

// validateExport exports the cluster's objects with the real kubectl and
// judges them with podguard validate (with --mutate or not).
func validateExport(t *testing.T, env *testenv.Env, mutate bool) map[string]validated {
	t.Helper()
	out, err := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "get", "-A", "-o", "yaml",
		"pods,podtemplates,replicationcontrollers,deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs").Output()
	if err != nil {
		t.Fatalf("kubectl get: %v", err)
	}
	file := write(t, t.TempDir(), "export.yaml", string(out))
	args := []string{"validate", "-f", file, "-o", "json"}
	if mutate {
		args = append(args, "--mutate")
	}
	r := podguard(t, "", args...)
	if r.code == 2 {
		t.Fatalf("validate: %s", r.err)
	}
	var doc struct {
		Results []struct {
			validated
			Violations, Warnings []struct{ Rule, Field string }
		}
	}
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		t.Fatal(err)
	}
	m := map[string]validated{}
	for _, res := range doc.Results {
		v := res.validated
		v.Violations, v.Warnings = res.Violations, res.Warnings
		m[v.Kind+"/"+v.Namespace+"/"+v.Name] = v
	}
	return m
}

// TestAuditMatchesValidate: the audit of a seeded cluster agrees, object
// by object, with podguard validate on the same objects exported by
// kubectl: a workload's verdict and findings with validate --mutate (as
// its next rollout is admitted), a Pod's with validate (as it runs); a
// workload's count of Pods out of policy with validate on its Pods.
func TestAuditMatchesValidate(t *testing.T) {
	env := auditEnv(t)
	r := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-A", "-o", "json")
	if r.code != 1 {
		t.Fatalf("audit exit %d, want 1 (something is denied): %s", r.code, r.err)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatal(err)
	}
	admitted, asRun := validateExport(t, env, true), validateExport(t, env, false)
	key := func(f struct{ Rule, Field string }) string { return f.Rule + " " + f.Field }
	rkey := func(f report.Finding) string { return f.Rule + " " + f.Field }
	subjects := 0
	for _, ns := range rep.Namespaces {
		for _, s := range ns.Subjects {
			subjects++
			id := s.Kind + "/" + s.Namespace + "/" + s.Name
			want, ok := admitted[id]
			if s.Kind == "Pod" {
				want, ok = asRun[id]
			}
			if !ok {
				t.Errorf("%s: in the audit, not in validate's results", id)
				continue
			}
			if (s.Result == report.Fail) == want.Allowed {
				t.Errorf("%s: audit says %s, validate says allowed=%v", id, s.Result, want.Allowed)
			}
			if a, b := findingKeys(s.Violations, rkey), findingKeys(want.Violations, key); !slices.Equal(a, b) {
				t.Errorf("%s: violations differ:\n audit    %q\n validate %q", id, a, b)
			}
			if a, b := findingKeys(s.Warnings, rkey), findingKeys(want.Warnings, key); !slices.Equal(a, b) {
				t.Errorf("%s: warnings differ:\n audit    %q\n validate %q", id, a, b)
			}
		}
	}
	// Owned Pods: the web Deployment's third Pod runs as root.
	out := 0
	for id, v := range asRun {
		if strings.HasPrefix(id, "Pod/shop/web-1-") && !v.Allowed {
			out++
		}
	}
	var web *report.Subject
	for _, ns := range rep.Namespaces {
		for i, s := range ns.Subjects {
			if s.Name == "web" && s.Namespace == "shop" {
				web = &ns.Subjects[i]
			}
		}
	}
	if web == nil || web.Pods == nil || web.Pods.Total != 3 || web.Pods.OutOfPolicy != out || out != 1 {
		t.Errorf("web's Pods: audit %+v, validate finds %d out of policy", web, out)
	}
	// Every top-level object is a subject; owned ones are not.
	top := 0
	for id := range admitted {
		if !strings.Contains(id, "/web-1") && !strings.Contains(id, "-1-") && !strings.HasPrefix(id, "ReplicaSet/") && !strings.HasPrefix(id, "Job/") {
			top++
		}
	}
	if subjects != top || rep.Summary.Subjects != subjects {
		t.Errorf("%d subjects in the audit (summary %d), %d top-level objects", subjects, rep.Summary.Subjects, top)
	}
	for _, want := range []string{"Deployment/shop/debug-tools", "Pod/shop/bare-root", "Deployment/ingress-nginx/ingress-nginx-controller", "StatefulSet/argocd/argocd-application-controller"} {
		if v := admitted[want]; want != "Pod/shop/bare-root" && v.Allowed {
			t.Errorf("%s should be denied", want)
		}
	}
}

// TestAuditOutputs: text, yaml and html of the same cluster, and the
// namespace and selector flags.
func TestAuditOutputs(t *testing.T) {
	env := auditEnv(t)
	text := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-A")
	for _, w := range []string{"namespace shop:", "❌ No privileged containers, no privilege escalation", "Deployment/debug-tools", "denied: Pod/bare-root",
		"admitted, but running: Deployment/web (3 pods, 1 out of policy as they run: runAsNonRoot, runAsUser)", "exempted: ", "kube-system", "cluster: "} {
		if !strings.Contains(text.out, w) {
			t.Errorf("text lacks %q:\n%s", w, text.out)
		}
	}
	yml := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-n", "shop", "-o", "yaml")
	if yml.code != 1 || !strings.Contains(yml.out, "kind: AuditReport") || strings.Contains(yml.out, "ingress-nginx") {
		t.Errorf("-n shop -o yaml: exit %d\n%s", yml.code, yml.out)
	}
	page := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-A", "-o", "html")
	if !strings.HasPrefix(page.out, "<!DOCTYPE html>") || !strings.Contains(page.out, "ingress-nginx-controller") {
		t.Errorf("html:\n%.400s", page.out)
	}
	sel := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-A", "-l", "app=web", "-o", "json")
	var rep report.Report
	if err := json.Unmarshal([]byte(sel.out), &rep); err != nil || rep.Summary.Subjects != 1 || sel.code != 0 {
		t.Errorf("-l app=web: exit %d, %+v, %v", sel.code, rep.Summary, err)
	}
	none := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-n", "no-such-namespace")
	if none.code != 2 || !strings.Contains(none.err, `namespace "no-such-namespace" not found`) {
		t.Errorf("missing namespace: exit %d: %s", none.code, none.err)
	}
}

// TestAuditErrors: an unreachable API server and missing RBAC are errors
// that say what to do (exit 2), never an empty report.
func TestAuditErrors(t *testing.T) {
	env := auditEnv(t)
	dir := t.TempDir()
	kc, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	down := write(t, dir, "down", regexp.MustCompile(`server: \S+`).ReplaceAllString(string(kc), "server: https://127.0.0.1:1"))
	r := podguard(t, "", "audit", "--kubeconfig", down, "-A")
	if r.code != 2 || !strings.Contains(r.err, "cannot reach the API server at https://127.0.0.1:1") || r.out != "" {
		t.Errorf("unreachable: exit %d: %s%s", r.code, r.out, r.err)
	}
	t.Logf("unreachable: %s", r.err)
	user, err := env.AddUser(envtest.User{Name: "nobody"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ukc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	nobody := write(t, dir, "nobody", string(ukc))
	r = podguard(t, "", "audit", "--kubeconfig", nobody, "-A")
	if r.code != 2 || !strings.Contains(r.err, "listing pods at the cluster scope is forbidden") || !strings.Contains(r.err, "an audit needs list on pods, podtemplates") || !strings.Contains(r.err, `User "nobody" cannot list resource "pods"`) || r.out != "" {
		t.Errorf("forbidden: exit %d: %s%s", r.code, r.out, r.err)
	}
	t.Logf("forbidden: %s", r.err)
	r = podguard(t, "", "audit", "--kubeconfig", down, "-A", "-o", "pdf")
	if r.code != 2 || !strings.Contains(r.err, `unknown output format "pdf"`) {
		t.Errorf("bad -o: exit %d: %s", r.code, r.err)
	}
}

// TestAuditNamespaceDeletedMidScan: a namespace deleted between the list
// of Pods and the list of ReplicaSets leaves Pods whose owners are gone;
// they are skipped with the reason and counted, not reported as bare Pods.
func TestAuditNamespaceDeletedMidScan(t *testing.T) {
	env := auditEnv(t)
	ctx := context.Background()
	o := &auditcmd.Options{Kubeconfig: env.Kubeconfig, AllNamespaces: true, Output: "json", BaselineExpires: "90d", ChunkSize: 2, RequestTimeout: time.Minute}
	o.Policy.Namespace = "podguard"
	o.AfterList = func(res audit.Resource) {
		if res.Resource != "pods" {
			return
		}
		// What the namespace controller does first, then the namespace.
		bg := metav1.DeletePropagationBackground
		for _, err := range []error{
			env.Clientset.AppsV1().Deployments("shop").Delete(ctx, "web", metav1.DeleteOptions{PropagationPolicy: &bg}),
			env.Clientset.AppsV1().ReplicaSets("shop").Delete(ctx, "web-1", metav1.DeleteOptions{PropagationPolicy: &bg}),
			env.Clientset.CoreV1().Namespaces().Delete(ctx, "shop", metav1.DeleteOptions{}),
		} {
			if err != nil {
				t.Error(err)
			}
		}
	}
	var out, errOut bytes.Buffer
	err := o.Run(ctx, cli.Streams{Out: &out, Err: &errOut})
	if cli.CodeOf(err) != 1 {
		t.Fatalf("exit %d: %v %s", cli.CodeOf(err), err, errOut.String())
	}
	var rep report.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Skip != 3 || len(rep.Skipped) != 3 || !strings.Contains(rep.Skipped[0].Reason, "its owner ReplicaSet/web-1 was not found") {
		t.Errorf("web's 3 Pods are skipped with the reason: %+v %+v", rep.Summary, rep.Skipped)
	}
	if !strings.Contains(errOut.String(), "3 objects could not be judged") {
		t.Errorf("stderr: %s", errOut.String())
	}
}

// TestAuditBaselineRollout: on a seeded cluster the default policy denies
// hardened third-party workloads for their UIDs. audit --baseline writes
// the exemptions into the policy file the webhook serves; the webhook
// reloads it; then every existing workload's next rollout is admitted
// while a new violation is still denied.
func TestAuditBaselineRollout(t *testing.T) {
	env := auditEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	policyFile := write(t, dir, "policy/policy.yaml", podguard(t, "", "policy", "default").out)
	ca, err := testenv.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	o := webhook.DefaultOptions()
	o.CertMode, o.CertDir, o.PolicyFile = webhook.CertModeDir, filepath.Join(dir, "certs"), policyFile
	if err := ca.Issue(o.CertDir); err != nil {
		t.Fatal(err)
	}
	if o.Port, err = testenv.FreePort(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*string{&o.MetricsBindAddress, &o.HealthProbeBindAddress} {
		p, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		*a = fmt.Sprintf("127.0.0.1:%d", p)
	}
	o.ShutdownDelay = 0
	if err := testenv.InstallWebhooks(ctx, env.Clientset, "../../../../config/webhook/manifests.yaml", fmt.Sprintf("https://127.0.0.1:%d", o.Port), ca.PEM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- webhook.Run(ctx, o, logr.Discard()) }()
	defer func() { cancel(); <-done }()

	// rollout asks the API server (dry run) to admit a change to each
	// workload's template, as its next rollout would; it returns the
	// denials.
	rollout := func() map[string]string {
		denied := map[string]string{}
		for _, w := range []string{"shop/deployment/web", "shop/deployment/debug-tools", "shop/cronjob/nightly", "ingress-nginx/deployment/ingress-nginx-controller",
			"argocd/deployment/argocd-redis", "argocd/statefulset/argocd-application-controller", "monitoring/daemonset/node-exporter", "kube-system/daemonset/kube-proxy"} {
			ns, obj, _ := strings.Cut(w, "/")
			patch := `{"spec":{"template":{"metadata":{"annotations":{"rollout":"1"}}}}}`
			if strings.HasPrefix(obj, "cronjob/") {
				patch = `{"spec":{"jobTemplate":{"spec":{"template":{"metadata":{"annotations":{"rollout":"1"}}}}}}}`
			}
			out, err := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "-n", ns, "patch", obj, "--dry-run=server", "-p", patch).CombinedOutput()
			if err != nil {
				denied[w] = string(out)
			}
		}
		return denied
	}
	var before map[string]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		if before = rollout(); len(before) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond) // the webhook is not serving yet
	}
	for _, w := range []string{"shop/deployment/debug-tools", "ingress-nginx/deployment/ingress-nginx-controller", "argocd/deployment/argocd-redis", "argocd/statefulset/argocd-application-controller"} {
		if !strings.Contains(before[w], "podguard") {
			t.Errorf("before the baseline %s should be denied: %q", w, before[w])
		}
	}

	r := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-A", "--policy", policyFile, "--baseline", policyFile, "--baseline-expires", "30d")
	if r.code != 1 || !strings.Contains(r.err, "under it 0 of 12 subjects would be denied") {
		t.Fatalf("audit --baseline: exit %d: %s", r.code, r.err)
	}
	written, _ := os.ReadFile(policyFile)
	// Each entry is scoped to its workload in its namespace, and container
	// findings to the containers by name: never an image glob or a whole
	// namespace.
	for _, w := range []string{`namespaces: ["ingress-nginx"]`, `workloads:` + "\n" + `      - {kind: "Deployment", name: "ingress-nginx-controller"}`,
		`containerNames: ["debug"]`, `expires: "` + time.Now().UTC().AddDate(0, 0, 31).Truncate(24*time.Hour).Format(time.DateOnly) + `"`,
		"reason: \"baseline of ", "covers ingress-nginx/Deployment/ingress-nginx-controller", "# Baseline written by podguard audit --baseline"} {
		if !strings.Contains(string(written), w) {
			t.Errorf("the baseline policy lacks %q:\n%s", w, written)
		}
	}
	if regexp.MustCompile(`(?m)^ +images:`).Match(written) {
		t.Errorf("the baseline takes image globs from the cluster:\n%s", written)
	}
	check := podguard(t, "", "policy", "check", "--strict", "-f", policyFile)
	if check.code != 0 || check.err != "" || !strings.Contains(check.out, "workloads Deployment/ingress-nginx-controller") ||
		!strings.Contains(check.out, "covers ingress-nginx/Deployment/ingress-nginx-controller") {
		t.Errorf("policy check --strict of the baseline: exit %d\n%s%s", check.code, check.out, check.err)
	}
	var after map[string]string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if after = rollout(); len(after) == 0 {
			break
		}
	}
	if len(after) > 0 {
		t.Errorf("after the baseline, rollouts are still denied: %v", after)
	}
	// A new violation: a privileged container of an image no exemption names.
	newPod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"new","namespace":"shop"},"spec":{"containers":[{"name":"c","image":"registry.example/other:1","securityContext":{"privileged":true}}]}}`
	cmd := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "create", "--dry-run=server", "-f", "-")
	cmd.Stdin = strings.NewReader(newPod)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "privileged") {
		t.Errorf("a new privileged pod is admitted under the baseline: %s", out)
	}
	// And a new workload running as UID 999 where no baseline covers it.
	newDep := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"new","namespace":"monitoring"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"securityContext":{"runAsUser":999},"containers":[{"name":"c","image":"registry.example/other:1"}]}}}}`
	cmd = exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "create", "--dry-run=server", "-f", "-")
	cmd.Stdin = strings.NewReader(newDep)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "runAsUser") {
		t.Errorf("a new workload running as 999 is admitted under the baseline: %s", out)
	}
}

// TestAuditHTMLInBrowser opens the HTML report of a seeded cluster in a
// real headless browser (chromium, from Debian's packages via hack/tools.sh
// browser) with every host name unresolvable: the page must render its
// sections from the file alone.
func TestAuditHTMLInBrowser(t *testing.T) {
	env := auditEnv(t)
	chromium, err := testenv.Chromium()
	if err != nil {
		t.Skipf("no headless browser here (%v); the HTML is still parsed and checked by the report package's tests", err)
	}
	page := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-A", "-o", "html")
	dir := t.TempDir()
	file := write(t, dir, "audit.html", page.out)
	args := []string{"--headless", "--disable-gpu", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", "file://" + file}
	if os.Geteuid() == 0 {
		args = append([]string{"--no-sandbox"}, args...) // chromium refuses root without it
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dom, err := exec.CommandContext(ctx, chromium, args...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	for _, want := range []string{`id="summary"`, `id="checklist"`, `id="chart"`, `id="findings"`, `id="ns-shop"`, "<svg", "debug-tools", "ingress-nginx-controller",
		"CIS 5.2.2", "FAIL"} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	// The findings fit a 1,400 px window: the page's width, measured by the
	// browser on a copy with a script that writes it into the DOM.
	measured := write(t, dir, "measured.html", strings.Replace(page.out, "</body>",
		`<script>document.body.setAttribute("data-width", String(document.documentElement.scrollWidth)); var f = document.querySelector("table.findings"); if (f) { document.body.setAttribute("data-findings-right", String(Math.ceil(f.getBoundingClientRect().right))); }</script></body>`, 1))
	wargs := append(append([]string{}, args[:len(args)-1]...), "--window-size=1400,1000", "file://"+measured)
	wdom, err := exec.CommandContext(ctx, chromium, wargs...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	width := regexp.MustCompile(`data-width="(\d+)"`).FindSubmatch(wdom)
	right := regexp.MustCompile(`data-findings-right="(\d+)"`).FindSubmatch(wdom)
	if width == nil || right == nil {
		t.Fatalf("the page's width was not measured:\n%.2000s", wdom)
	}
	if w, _ := strconv.Atoi(string(width[1])); w > 1400 {
		t.Errorf("the page is %d px wide in a 1,400 px window: the fix column is cut off", w)
	}
	if r, _ := strconv.Atoi(string(right[1])); r > 1400 {
		t.Errorf("the findings table ends at %d px in a 1,400 px window", r)
	}
	shot := filepath.Join(dir, "audit.png")
	cmd := exec.CommandContext(ctx, chromium, append(args[:len(args)-2], "--screenshot="+shot, "--window-size=1280,2000", "file://"+file)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium screenshot: %v\n%s", err, out)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 20000 {
		t.Errorf("the screenshot is missing or blank: %v", err)
	}
}

// TestAuditOptOut: a namespace labelled podguard.dev/ignore=true (the
// webhooks' opt-out) is shown as not audited, never judged, counted or
// baselined; without the label flag it is audited like the others.
func TestAuditOptOut(t *testing.T) {
	env := auditEnv(t)
	ctx := context.Background()
	ns, err := env.Clientset.CoreV1().Namespaces().Get(ctx, "monitoring", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels["podguard.dev/ignore"] = "true"
	if _, err := env.Clientset.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	audited := func(args ...string) (report.Report, run) {
		r := podguard(t, "", append([]string{"audit", "--kubeconfig", env.Kubeconfig, "-A", "-o", "json"}, args...)...)
		var rep report.Report
		if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, r.err)
		}
		return rep, r
	}
	hasNS := func(rep report.Report, name string) bool {
		return slices.ContainsFunc(rep.Namespaces, func(n report.Namespace) bool { return n.Name == name })
	}
	rep, _ := audited()
	if hasNS(rep, "monitoring") {
		t.Errorf("the opted-out namespace was audited")
	}
	if len(rep.OptedOut) != 1 || rep.OptedOut[0].Namespace != "monitoring" || rep.OptedOut[0].Objects == 0 || !strings.Contains(rep.OptedOut[0].Reason, "podguard.dev/ignore=true") {
		t.Errorf("optedOut = %+v, want monitoring with its objects counted", rep.OptedOut)
	}
	all, _ := audited("--opt-out-label", "")
	if !hasNS(all, "monitoring") || len(all.OptedOut) != 0 {
		t.Errorf("--opt-out-label '': monitoring must be audited")
	}
	if all.Summary.Subjects <= rep.Summary.Subjects {
		t.Errorf("subjects with the opt-out %d, without %d: the opted-out ones are still counted", rep.Summary.Subjects, all.Summary.Subjects)
	}
	// --exclude-namespace leaves a namespace out by name.
	if ex, _ := audited("--exclude-namespace", "shop"); hasNS(ex, "shop") || !slices.ContainsFunc(ex.OptedOut, func(o report.OptedOut) bool { return o.Namespace == "shop" }) {
		t.Errorf("--exclude-namespace shop: shop still audited")
	}
	// Text says so; a baseline never exempts an opted-out namespace.
	txt := podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-A")
	if !strings.Contains(txt.out, "not audited") || !strings.Contains(txt.out, "monitoring: labelled podguard.dev/ignore=true") {
		t.Errorf("the text report does not name the opted-out namespace:\n%s", txt.out)
	}
	base := filepath.Join(t.TempDir(), "baseline.yaml")
	podguard(t, "", "audit", "--kubeconfig", env.Kubeconfig, "-A", "--baseline", base)
	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "monitoring") {
		t.Errorf("the baseline exempts something in the opted-out namespace:\n%s", data)
	}
	if !strings.Contains(string(data), "shop") {
		t.Errorf("the baseline is empty: the test proves nothing\n%s", data)
	}
}
