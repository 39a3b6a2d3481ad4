package webhook_test

// Proof that the exported native policies (podguard export: VAP + MAP)
// decide exactly like the webhook, on a real kube-apiserver: the same
// inputs are sent, dry run, through (a) the podguard webhook only and
// (b) the exported policies only; every admit/deny and every stored
// object must match.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"podguard.dev/podguard/hack/testenv/fixtures"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv/podgen"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/native"
)

const equivNS = "equiv"

// input is one object to admit, with what it is for.
type input struct {
	name string
	obj  *unstructured.Unstructured
	// rule and kind (pass, fail, fix) for rule fixtures, and the variant
	// folder and its policy file for a fixture of a rule's variant.
	rule, fixture    string
	variant, policyF string
}

// outcome is what the API server made of an input.
type outcome struct {
	allowed  bool
	msg      string
	stored   string // the judged part of the stored object, as JSON
	warnings []string
}

var gvrs = map[string]schema.GroupVersionResource{
	"Pod": {Version: "v1", Resource: "pods"}, "PodTemplate": {Version: "v1", Resource: "podtemplates"},
	"ReplicationController": {Version: "v1", Resource: "replicationcontrollers"},
	"Deployment":            {Group: "apps", Version: "v1", Resource: "deployments"}, "ReplicaSet": {Group: "apps", Version: "v1", Resource: "replicasets"},
	"StatefulSet": {Group: "apps", Version: "v1", Resource: "statefulsets"}, "DaemonSet": {Group: "apps", Version: "v1", Resource: "daemonsets"},
	"Job": {Group: "batch", Version: "v1", Resource: "jobs"}, "CronJob": {Group: "batch", Version: "v1", Resource: "cronjobs"},
}

func toUnstructured(t *testing.T, o any) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// equivalenceInputs: every rule fixture, PSA's own fixtures for the latest
// version, and generated pods and workloads.
func equivalenceInputs(t *testing.T, generated int) []input {
	t.Helper()
	var out []input
	sets, err := fixtures.Find("../policies/rules/testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fixtures.All(sets) {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		apiValid(u)
		out = append(out, input{name: f.Path, obj: u, rule: f.Set.Rule, fixture: f.Kind, variant: f.Set.Variant, policyF: f.Set.Policy})
	}
	psa, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/pod-security-admission").Output()
	if err != nil {
		t.Fatal(err)
	}
	latest, newest := "", -1
	dirs, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(psa)), "test", "testdata", "restricted", "v1.*"))
	for _, d := range dirs {
		var minor int
		if _, err := fmt.Sscanf(filepath.Base(d), "v1.%d", &minor); err == nil && minor > newest {
			latest, newest = filepath.Base(d), minor
		}
	}
	psaFiles, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(psa)), "test", "testdata", "*", latest, "*", "*.yaml"))
	if len(psaFiles) < 100 {
		t.Fatalf("only %d PSA fixtures", len(psaFiles))
	}
	for _, f := range psaFiles {
		data, _ := os.ReadFile(f)
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		apiValid(u)
		out = append(out, input{name: "psa " + f, obj: u})
	}
	r := rand.New(rand.NewPCG(7, 37))
	for i := range generated {
		p := podgen.Pod(r, i)
		podgen.APIValid(p)
		tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": p.Name}, Annotations: p.Annotations}, Spec: p.Spec}
		tmpl.Spec.EphemeralContainers = nil
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": p.Name}}
		var o any
		switch i % 6 {
		case 0, 1, 2:
			p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
			o = p
		case 3:
			o = &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: p.Name},
				Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}}
		case 4:
			tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
			o = &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: metav1.ObjectMeta{Name: p.Name},
				Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}}
		default:
			o = &corev1.PodTemplate{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodTemplate"}, ObjectMeta: metav1.ObjectMeta{Name: p.Name}, Template: tmpl}
		}
		out = append(out, input{name: fmt.Sprintf("generated %d", i), obj: toUnstructured(t, o)})
	}
	return out
}

// admitAll sends every input, dry run, and records the outcomes.
func admitAll(t *testing.T, cfg *rest.Config, inputs []input) []outcome {
	t.Helper()
	return admitAllIn(t, cfg, equivNS, inputs)
}

// admitAllIn is admitAll in namespace ns.
func admitAllIn(t *testing.T, cfg *rest.Config, ns string, inputs []input) []outcome {
	t.Helper()
	var mu sync.Mutex
	var warnings []string
	c := rest.CopyConfig(cfg)
	c.WarningHandler = warningFunc(func(msg string) {
		mu.Lock()
		warnings = append(warnings, msg)
		mu.Unlock()
	})
	c.QPS, c.Burst = 500, 1000
	dyn := dynamic.NewForConfigOrDie(c)
	out := make([]outcome, len(inputs))
	for i, in := range inputs {
		u := in.obj.DeepCopy()
		u.SetNamespace(ns)
		if u.GetKind() == "" {
			t.Fatalf("%s: no kind", in.name)
		}
		gvr, ok := gvrs[u.GetKind()]
		if !ok {
			t.Fatalf("%s: kind %s", in.name, u.GetKind())
		}
		mu.Lock()
		warnings = nil
		mu.Unlock()
		got, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		mu.Lock()
		out[i].warnings = append([]string(nil), warnings...)
		mu.Unlock()
		if err != nil {
			out[i].msg = err.Error()
			continue
		}
		out[i].allowed = true
		judged := map[string]any{"spec": got.Object["spec"], "template": got.Object["template"]}
		meta, _, _ := unstructured.NestedMap(got.Object, "metadata")
		judged["labels"], judged["annotations"] = meta["labels"], meta["annotations"]
		b, _ := json.Marshal(judged)
		out[i].stored = string(b)
	}
	return out
}

type warningFunc func(string)

func (f warningFunc) HandleWarningHeader(_ int, _ string, msg string) { f(msg) }

// deniedByPodguard tells a denial by podguard (webhook or native) from one
// by the API server's own validation.
func deniedByPodguard(msg string) bool { return strings.Contains(msg, "podguard ") }

func TestNativeEquivalence(t *testing.T) {
	generated := 1200
	c := startCluster(t, clusterConfig{})
	c.namespace(t, equivNS, nil)
	inputs := equivalenceInputs(t, generated)
	start := time.Now()
	viaWebhook := admitAll(t, c.Config, inputs)
	webhookTook := time.Since(start)

	// (b) The exported policies only: podguard stopped, its webhook
	// configurations gone.
	c.removePodguard(t)
	exported, err := native.Build(load.Default("podguard"), native.Options{ExcludeNamespaces: []string{"kube-system", "podguard"}, OptOutLabel: "podguard.dev/ignore"})
	if err != nil {
		t.Fatal(err)
	}
	applyExport(t, c, exported)
	start = time.Now()
	viaNative := admitAll(t, c.Config, inputs)
	nativeTook := time.Since(start)

	// Inputs only webhook-only rules decide: none with the default policy,
	// where the one webhook-only rule (secretsInEnv) only warns.
	exceptions := map[string]bool{}
	mismatches, denied, invalid, namedRule, warned := 0, 0, 0, 0, 0
	for i, in := range inputs {
		w, n := viaWebhook[i], viaNative[i]
		switch {
		case w.allowed != n.allowed:
			if exceptions[in.name] {
				continue
			}
			mismatches++
			t.Errorf("%s: webhook allowed=%v (%s), native allowed=%v (%s)", in.name, w.allowed, w.msg, n.allowed, n.msg)
		case w.allowed && w.stored != n.stored:
			mismatches++
			t.Errorf("%s: stored objects differ\n webhook %s\n native  %s", in.name, w.stored, n.stored)
		case !w.allowed && deniedByPodguard(w.msg) != deniedByPodguard(n.msg):
			mismatches++
			t.Errorf("%s: one denial is podguard's, the other the API server's\n webhook %s\n native  %s", in.name, w.msg, n.msg)
		}
		switch {
		case !n.allowed && deniedByPodguard(n.msg):
			denied++
		case !n.allowed:
			invalid++ // refused by the API server's own validation, in both modes
			if testing.Verbose() {
				t.Logf("%s: refused by the API server: %.300s", in.name, n.msg)
			}
		}
		// A native denial names the first failing rule: it must be one
		// the webhook denies for. Rule fixtures fail only their rule, so
		// theirs must be named (a warn rule's in a warning).
		if deniedByPodguard(w.msg) && deniedByPodguard(n.msg) {
			if named := nativeRule(n.msg); !slices.Contains(webhookRules(w.msg), named) {
				t.Errorf("%s: the native denial names rule %q, the webhook denies for %v:\n webhook %s\n native  %s", in.name, named, webhookRules(w.msg), w.msg, n.msg)
			}
		}
		if in.fixture == "fail" && in.variant == "" && in.rule != "secretsInEnv" && (deniedByPodguard(n.msg) || len(n.warnings) > 0) {
			if text := n.msg + strings.Join(n.warnings, "\n"); strings.Contains(text, "podguard "+in.rule+":") {
				namedRule++
			} else if webhookRules(w.msg) == nil || slices.Equal(webhookRules(w.msg), []string{in.rule}) {
				t.Errorf("%s: the native answer does not name rule %s:\n%s", in.name, in.rule, text)
			}
		}
		if n.allowed && len(n.warnings) > 0 {
			warned++
		}
	}
	t.Logf("%d inputs (%d generated): %d denied by podguard, %d refused by the API server's own validation (both modes), %d rule fixtures named their rule, %d admitted with warnings; %d mismatches; webhook %s, native %s",
		len(inputs), generated, denied, invalid, namedRule, warned, mismatches, webhookTook.Round(time.Millisecond), nativeTook.Round(time.Millisecond))
	if denied < len(inputs)/4 {
		t.Errorf("only %d of %d inputs were denied: the inputs test too little", denied, len(inputs))
	}
	nativeRuleByRule(t, c, inputs)
}

// applyExport creates the exported objects and waits until kube-apiserver
// enforces them (its policy informers sync in the background).
func applyExport(t *testing.T, c *cluster, e *native.Export) {
	t.Helper()
	createExport(t, c, e)
	waitNative(t, c.cs, equivNS, 30*time.Second)
}

// createExport creates the exported objects.
func createExport(t *testing.T, c *cluster, e *native.Export) {
	t.Helper()
	ctx := context.Background()
	ar := c.cs.AdmissionregistrationV1()
	for i := range e.ValidatingPolicies {
		if _, err := ar.ValidatingAdmissionPolicies().Create(ctx, &e.ValidatingPolicies[i], metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ar.ValidatingAdmissionPolicyBindings().Create(ctx, &e.ValidatingBindings[i], metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range e.MutatingPolicies {
		if _, err := ar.MutatingAdmissionPolicies().Create(ctx, &e.MutatingPolicies[i], metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ar.MutatingAdmissionPolicyBindings().Create(ctx, &e.MutatingBindings[i], metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitNative waits until a privileged pod is denied and a bare pod filled
// in, and a privileged Deployment and CronJob denied: kube-apiserver syncs
// each policy on its own, so one shape enforced says nothing of the others.
func waitNative(t *testing.T, cs kubernetes.Interface, ns string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	priv := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c:1", SecurityContext: &corev1.SecurityContext{Privileged: ptrTo(true)}}}}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "probe"}}, Spec: priv}
	jobTmpl := *tmpl.DeepCopy()
	jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	// Bare but for readOnlyRootFilesystem, which has no fix and which a
	// policy may enforce.
	bareProbe := bareSpec("c")
	bareProbe.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptrTo(true)}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		_, errPriv := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe-priv"}, Spec: priv}, dry)
		bare, errBare := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe-bare"}, Spec: bareProbe}, dry)
		_, errDeploy := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "probe-priv"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: tmpl}}, dry)
		_, errCron := cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "probe-priv"},
			Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTmpl}}}}, dry)
		denied := func(err error) bool { return err != nil && strings.Contains(err.Error(), "podguard") }
		if denied(errPriv) && denied(errDeploy) && denied(errCron) && errBare == nil && bare.Spec.SecurityContext != nil && bare.Spec.SecurityContext.RunAsUser != nil {
			return
		}
		last = fmt.Sprintf("privileged pod: %v; bare pod: %v; privileged Deployment: %v; privileged CronJob: %v", errPriv, errBare, errDeploy, errCron)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the native policies are not enforced after %s: %s", timeout, last)
}

func ptrTo[T any](v T) *T { return &v }
