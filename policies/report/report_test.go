package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/report"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func compliantSpec(name string) corev1.PodSpec {
	return corev1.PodSpec{
		AutomountServiceAccountToken: ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000), RunAsNonRoot: ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: name, Image: "registry.example/" + name + ":1.0",
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			Resources:       corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resourceQ("100m"), "memory": resourceQ("64Mi")}},
			LivenessProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}},
			ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}}}},
	}
}

func meta(ns, name, uid string, owner *metav1.OwnerReference, labels map[string]string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: labels}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return m
}

func ownedBy(kind, name, uid string) *metav1.OwnerReference {
	return &metav1.OwnerReference{Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr.To(true)}
}

// seed is a namespace of everything: a compliant Deployment whose pods
// run out of policy (created before it), a fixable one, one that cannot be
// fixed, a CronJob with a Job and a Pod, bare pods, a Windows pod.
func seed() report.Input {
	var objs []runtime.Object
	web := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta("apps", "web", "d1", nil, nil),
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: compliantSpec("web")}}}
	rs := &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, ObjectMeta: meta("apps", "web-1", "r1", ownedBy("Deployment", "web", "d1"), nil),
		Spec: appsv1.ReplicaSetSpec{Template: web.Spec.Template}}
	objs = append(objs, web, rs)
	for i := range 3 {
		spec := compliantSpec("web")
		if i == 0 {
			spec.SecurityContext.RunAsUser = ptr.To[int64](0) // a pod from before the policy
		}
		objs = append(objs, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: meta("apps", fmt.Sprintf("web-1-%d", i), fmt.Sprintf("p%d", i), ownedBy("ReplicaSet", "web-1", "r1"), map[string]string{"app": "web"}), Spec: spec})
	}
	fixable := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta("apps", "fixable", "d2", nil, nil),
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "fixable"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/c:1"}}}}}}
	nginx := compliantSpec("controller")
	nginx.Containers[0].Image = "registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594c"
	nginx.Containers[0].SecurityContext.RunAsUser = ptr.To[int64](101)
	ingress := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta("ingress", "ingress-nginx-controller", "d3", nil, nil),
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "ingress"}}, Spec: nginx}}}
	redis := compliantSpec("redis")
	redis.SecurityContext.RunAsUser = ptr.To[int64](999)
	argo := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta("argocd", "argocd-redis", "d4", nil, nil),
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "redis"}}, Spec: redis}}}
	jobSpec := compliantSpec("job")
	jobSpec.RestartPolicy = corev1.RestartPolicyNever
	cron := &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: meta("apps", "nightly", "c1", nil, nil),
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: jobSpec}}}}}
	job := &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: meta("apps", "nightly-1", "j1", ownedBy("CronJob", "nightly", "c1"), nil),
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: jobSpec}}}
	jobPod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta("apps", "nightly-1-x", "jp", ownedBy("Job", "nightly-1", "j1"), nil), Spec: jobSpec}
	priv := compliantSpec("debug")
	priv.Containers[0].SecurityContext.Privileged = ptr.To(true)
	privPod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta("apps", "debug", "b1", nil, map[string]string{"app": "debug"}), Spec: priv}
	win := compliantSpec("win")
	win.OS = &corev1.PodOS{Name: corev1.Windows}
	win.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
	win.Containers[0].SecurityContext = nil
	winPod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta("apps", "win", "b2", nil, nil), Spec: win}
	objs = append(objs, fixable, ingress, argo, cron, job, jobPod, privPod, winPod)
	np := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	return report.Input{Objects: objs, NetworkPolicies: []networkingv1.NetworkPolicy{np}, Cluster: "test", Now: now}
}

func enforcer(t *testing.T, policy string) *policies.Enforcer {
	t.Helper()
	return testenv.Enforcer(t, policy)
}

func subject(r *report.Report, ns, name string) *report.Subject {
	for _, n := range r.Namespaces {
		for i, s := range n.Subjects {
			if n.Name == ns && s.Name == name {
				return &n.Subjects[i]
			}
		}
	}
	return nil
}

func TestBuild(t *testing.T) {
	r := report.Build(enforcer(t, ""), seed())
	if len(r.Namespaces) != 3 {
		t.Fatalf("%d namespaces", len(r.Namespaces))
	}
	web := subject(r, "apps", "web")
	if web == nil || web.Result != report.Pass || web.Pods == nil || web.Pods.Total != 3 || web.Pods.OutOfPolicy != 1 || web.Pods.Rules[0] != "runAsUser" {
		t.Errorf("web, its ReplicaSet and pods collapse into one subject with a pod count: %+v", web)
	}
	if s := subject(r, "apps", "web-1"); s != nil {
		t.Error("the ReplicaSet of a Deployment is a subject of its own")
	}
	if s := subject(r, "apps", "fixable"); s == nil || s.Result != report.Warn || len(s.Violations) != 0 {
		t.Errorf("a template mutation fixes is admitted with warnings: %+v", s)
	}
	if s := subject(r, "apps", "nightly"); s == nil || s.Pods == nil || s.Pods.Total != 1 || subject(r, "apps", "nightly-1") != nil {
		t.Errorf("a CronJob's Job and Pod collapse into it: %+v", s)
	}
	if s := subject(r, "apps", "debug"); s == nil || s.Result != report.Fail || s.Violations[0].Rule != "privileged" ||
		strings.Join(s.Violations[0].CIS, ",") != "5.2.2" || s.Violations[0].PSS[0] != "baseline privileged" {
		t.Errorf("a privileged bare pod is denied, with its controls: %+v", s)
	}
	if s := subject(r, "ingress", "ingress-nginx-controller"); s == nil || s.Result != report.Fail {
		t.Errorf("UID 101 is denied by the default policy: %+v", s)
	}
	if !r.Denied() || r.Summary.Fail != 3 {
		t.Errorf("summary %+v", r.Summary)
	}
	for _, ns := range r.Namespaces {
		if ns.Name != "apps" {
			continue
		}
		for _, it := range ns.Checklist {
			switch it.ID {
			case "privilegeEscalation":
				if it.OK || strings.Join(it.Subjects, ",") != "Pod/debug" || !strings.Contains(strings.Join(it.Controls, ","), "CIS 5.2.2") {
					t.Errorf("privilegeEscalation item: %+v", it)
				}
			case "nonRoot":
				if it.OK || strings.Join(it.Subjects, ",") != "Deployment/argocd-redis,Deployment/web" && strings.Join(it.Subjects, ",") != "Deployment/web" {
					t.Errorf("nonRoot: web's pod running as root fails it, fixable's injected runAsUser does not: %+v", it)
				}
			case "networkIsolation":
				if it.OK || strings.Contains(strings.Join(it.Subjects, ","), "Deployment/web") || !strings.Contains(strings.Join(it.Subjects, ","), "Pod/debug") {
					t.Errorf("network isolation: only web is selected by a NetworkPolicy: %+v", it)
				}
			}
		}
	}
}

// TestSkippedAndSelected: an object whose owner vanished between lists is
// skipped with the reason and counted with the Pods behind it, as is an
// object the caller could not decode; a selector keeps the subjects whose
// own or Pods' labels match.
func TestSkippedAndSelected(t *testing.T) {
	in := seed()
	orphanRS := &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "gone", Name: "api-1", UID: "r9", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: "api", UID: "d9", Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: compliantSpec("api")}}}
	orphanPod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Namespace: "gone", Name: "api-1-x", UID: "p9",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "api-1", UID: "r9", Controller: ptr.To(true)}}}, Spec: compliantSpec("api")}
	in.Objects = append(in.Objects, orphanRS, orphanPod)
	in.Skipped = []report.Subject{{Kind: "Pod", Namespace: "apps", Name: "broken", Reason: "cannot decode: spec.containers: expected an array"}}
	r := report.Build(enforcer(t, ""), in)
	if s := subject(r, "gone", "api-1"); s == nil || s.Result != report.Skip || !strings.Contains(s.Reason, "Deployment/api was not found") || s.Pods == nil || s.Pods.Total != 1 {
		t.Errorf("orphaned ReplicaSet: %+v", s)
	}
	if s := subject(r, "apps", "broken"); s == nil || s.Result != report.Skip {
		t.Errorf("undecodable object: %+v", s)
	}
	if r.Summary.Skip != 2 || len(r.Skipped) != 2 || r.Summary.Subjects != 9 {
		t.Errorf("skipped subjects are counted: %+v, %d listed", r.Summary, len(r.Skipped))
	}
	var text bytes.Buffer
	_ = r.Text(&text)
	if !strings.Contains(text.String(), "skipped: ReplicaSet/api-1: its owner Deployment/api was not found") || !strings.Contains(text.String(), "2 skipped") {
		t.Errorf("text hides skipped subjects:\n%s", text.String())
	}
	in = seed()
	in.Selector = labels.SelectorFromSet(labels.Set{"app": "web"})
	r = report.Build(enforcer(t, ""), in)
	if r.Summary.Subjects != 1 || subject(r, "apps", "web") == nil || subject(r, "apps", "web").Pods.Total != 3 {
		t.Errorf("the selector keeps web (by its pod labels) with its pods: %+v", r.Summary)
	}
}

// TestBaseline: the exemptions the baseline writes make today's cluster
// pass, each as narrow as its findings allow, while a new violation is
// still denied.
func TestBaseline(t *testing.T) {
	in := seed()
	// A workload whose image is "*" (the API server accepts it): its
	// baseline must not exempt every image of the cluster.
	star := compliantSpec("star")
	star.Containers[0].Image = "*"
	star.Containers[0].SecurityContext.Privileged = ptr.To(true)
	in.Objects = append(in.Objects, &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, ObjectMeta: meta("agents", "star", "ds1", nil, nil),
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: star}}})
	r := report.Build(enforcer(t, ""), in)
	ex := report.Baseline(r, now.AddDate(0, 0, 90).Format(time.DateOnly))
	var scopes []string
	for _, e := range ex {
		if len(e.Images) > 0 || e.Selector != nil {
			t.Errorf("a baseline entry takes images or labels from the cluster: %+v", e)
		}
		scopes = append(scopes, fmt.Sprintf("%v %v %v %v %s", e.Rules, e.Namespaces, e.Workloads, e.ContainerNames, e.Expires))
	}
	want := []string{"[privileged] [agents] [{DaemonSet star}] [star] 2027-02-28", "[privileged] [apps] [{Pod debug}] [debug] 2027-02-28",
		"[runAsUser] [argocd] [{Deployment argocd-redis}] [] 2027-02-28", "[runAsUser] [ingress] [{Deployment ingress-nginx-controller}] [controller] 2027-02-28"}
	if strings.Join(scopes, "|") != strings.Join(want, "|") {
		t.Errorf("baseline scopes:\n got  %q\n want %q", scopes, want)
	}
	merged, err := report.MergeExemptions([]byte("# my policy\napiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: enforce # keep\n"), ex, "podguard")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(merged), "# my policy") || !strings.Contains(string(merged), "mode: enforce # keep") || !strings.Contains(string(merged), "kube-system") {
		t.Errorf("merge loses comments or the default exemptions:\n%s", merged)
	}
	p, err := load.Bytes(merged, "merged", "podguard")
	if err != nil {
		t.Fatalf("%v\n%s", err, merged)
	}
	e, _ := policies.New(p)
	after := report.Build(e, in)
	if after.Denied() {
		t.Errorf("the cluster still fails under its baseline: %+v", after.Summary)
	}
	// A new privileged pod is still denied: of another image, of the image
	// "*", in the namespace of a baselined workload, anywhere.
	for _, img := range []string{"registry.example/other:1", "*", "registry.example/debug:1"} {
		for _, ns := range []string{"apps", "agents", "elsewhere"} {
			priv := compliantSpec("other")
			priv.Containers[0].Image = img
			priv.Containers[0].SecurityContext.Privileged = ptr.To(true)
			res, _ := e.Validate(&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "new"}, Spec: priv},
				policies.Attributes{Namespace: ns, Now: now})
			if res.Allowed {
				t.Errorf("a new privileged pod of image %q in %s passes under the baseline", img, ns)
			}
		}
	}
}

func TestRenderers(t *testing.T) {
	r := report.Build(enforcer(t, ""), seed())
	var text bytes.Buffer
	if err := r.Text(&text); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"namespace apps:", "❌ No privileged containers", "Pod/debug", "denied: Pod/debug", "cluster: ", "(3 pods, 1 out of policy as they run: runAsUser)"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
	// A finding's line names its field once: the fix says "it".
	findings := 0
	for _, line := range strings.Split(text.String(), "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), ": ", 3)
		if len(parts) < 3 || !strings.HasPrefix(line, "    ") || !strings.Contains(line, "(fix: ") {
			continue
		}
		findings++
		if field := parts[1]; strings.Count(line, field) != 1 {
			t.Errorf("the field appears %d times in the line: %s", strings.Count(line, field), line)
		}
	}
	if findings == 0 {
		t.Errorf("no finding lines in the text:\n%s", text.String())
	}
	var js bytes.Buffer
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js.Bytes(), &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"apiVersion", "kind", "generated", "cluster", "policyMode", "cisBenchmark", "summary", "checklist", "namespaces", "skipped"} {
		if _, ok := top[k]; !ok {
			t.Errorf("JSON lacks %s", k)
		}
	}
	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&page)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var external []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		for _, a := range n.Attr {
			if a.Key == "id" {
				ids[a.Val] = true
			}
			if (a.Key == "src" || (a.Key == "href" && n.Data == "link")) && !strings.HasPrefix(a.Val, "#") {
				external = append(external, a.Val)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, id := range []string{"summary", "checklist", "chart", "findings", "ns-apps"} {
		if !ids[id] {
			t.Errorf("the HTML report has no section %q", id)
		}
	}
	if len(external) > 0 {
		t.Errorf("the HTML report loads external assets: %v", external)
	}
}

// TestObjectSizeCap: a report object never exceeds MaxObjectBytes, and
// says how many findings it left out.
func TestObjectSizeCap(t *testing.T) {
	var objs []runtime.Object
	for i := range 3000 {
		spec := corev1.PodSpec{}
		for c := range 3 {
			spec.Containers = append(spec.Containers, corev1.Container{Name: fmt.Sprintf("container-with-a-long-name-%d", c), Image: "registry.example/x:latest",
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}})
		}
		objs = append(objs, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta("big", fmt.Sprintf("pod-%d", i), fmt.Sprintf("u%d", i), nil, nil), Spec: spec})
	}
	r := report.Build(enforcer(t, ""), report.Input{Objects: objs, Now: now})
	for _, k := range []report.ObjectKind{report.OpenReports, report.PolicyReport} {
		obj, hash := r.Namespaces[0].Object(k, now)
		b, _ := json.Marshal(obj)
		results := obj["results"].([]any)
		last := results[len(results)-1].(map[string]any)
		if len(b) > report.MaxObjectBytes || last["rule"] != "omitted" || !strings.Contains(last["message"].(string), "more findings are left out") || hash == "" {
			t.Errorf("%s: %d bytes, %d results, last %v", k.Kind, len(b), len(results), last["message"])
		}
		if s := obj["summary"].(map[string]any); s["fail"].(int) < 3000*3 {
			t.Errorf("the summary must count everything: %v", s)
		}
		obj2, hash2 := r.Namespaces[0].Object(k, now.Add(time.Hour))
		if hash2 != hash || fmt.Sprint(obj2["summary"]) != fmt.Sprint(obj["summary"]) {
			t.Error("the content hash depends on the time")
		}
	}
}

func resourceQ(s string) resource.Quantity { return resource.MustParse(s) }

var updateReadme = flag.Bool("update-readme", false, "rewrite the README's checklist table")

// TestReadmeChecklistTable keeps the README's table of checklist items,
// their rules and controls generated from the registry.
func TestReadmeChecklistTable(t *testing.T) {
	var b strings.Builder
	b.WriteString("| checklist item | rules | Pod Security Standards | CIS Kubernetes Benchmark v1.10 |\n|---|---|---|---|\n")
	for _, it := range report.Build(enforcer(t, ""), report.Input{}).Checklist {
		var pss, cis []string
		for _, c := range it.Controls {
			if p, ok := strings.CutPrefix(c, "PSS "); ok {
				pss = append(pss, p)
			} else {
				cis = append(cis, strings.TrimPrefix(c, "CIS "))
			}
		}
		rs := "audit only"
		if len(it.Rules) > 0 {
			rs = "`" + strings.Join(it.Rules, "`, `") + "`"
		}
		p := strings.Join(pss, ", ")
		if p == "" {
			p = "beyond PSS"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", it.Title, rs, p, strings.Join(cis, ", "))
	}
	testenv.GeneratedSection(t, "../../README.md", "<!-- checklist table: generated by go test ./policies/report -update-readme -->\n",
		"<!-- end of checklist table -->\n", b.String(), *updateReadme, "go test ./policies/report -update-readme")
}

// TestTextGroupsFindings: a workload of three containers that miss the
// same things reads as one line per rule, what podguard injects at
// admission as one line, and the JSON keeps every finding.
func TestTextGroupsFindings(t *testing.T) {
	spec := corev1.PodSpec{}
	for _, n := range []string{"a", "b", "c"} {
		spec.Containers = append(spec.Containers, corev1.Container{Name: n, Image: "registry.example/" + n + ":1"})
	}
	d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta("shop", "web", "w", nil, nil),
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
	r := report.Build(enforcer(t, ""), report.Input{Objects: []runtime.Object{d}, Now: now})
	var text bytes.Buffer
	if err := r.Text(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	if n := strings.Count(out, "probes: "); n != 1 {
		t.Errorf("probes printed %d times, want once with the other fields after it:\n%s", n, out)
	}
	if !strings.Contains(out, "      also at: spec.template.spec.containers[0].readinessProbe, spec.template.spec.containers[1].livenessProbe") {
		t.Errorf("the other probe findings are not listed by field:\n%s", out)
	}
	if !strings.Contains(out, "    fixed at admission (podguard injects it into the pods): ") || !strings.Contains(out, "runAsUser") ||
		strings.Contains(out, "runAsUser: spec.template.spec.containers[0]") {
		t.Errorf("what podguard injects is not one line apart from the warnings:\n%s", out)
	}
	var js bytes.Buffer
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	if strings.Count(js.String(), `"rule": "probes"`) != 6 {
		t.Errorf("the JSON report lost findings: %d probes findings", strings.Count(js.String(), `"rule": "probes"`))
	}
}

// TestObjectListsExemptions: the report object shows, as "skip" results,
// the exemptions and PodGuardExceptions that lifted rules from a subject,
// with where each comes from and its expiry, and counts them; a subject
// nothing exempted gets none.
func TestObjectListsExemptions(t *testing.T) {
	p, err := load.Bytes([]byte(`apiVersion: podguard.dev/v1alpha1
kind: Policy
exemptions:
- namespaces: [ingress]
  rules: [runAsUser, runAsGroup]
  reason: "ingress-nginx runs as 101"
  expires: "2027-06-01"
`), "policy.yaml", "podguard")
	if err != nil {
		t.Fatal(err)
	}
	x := v1alpha1.PodGuardException{ObjectMeta: metav1.ObjectMeta{Namespace: "argocd", Name: "redis-uid", CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec: v1alpha1.PodGuardExceptionSpec{Rules: []string{"runAsUser"}, Workloads: []v1alpha1.WorkloadRef{{Kind: "Deployment", Name: "argocd-redis"}},
			Reason: "redis runs as 999", Expires: "2026-12-20"}}
	e, states, err := policies.NewWithExceptions(p, []v1alpha1.PodGuardException{x}, now)
	if err != nil || states[0].State != policies.ExceptionActive {
		t.Fatalf("exception: %v %+v", err, states)
	}
	r := report.Build(e, seed())
	skips := func(ns string) (out []map[string]any, summary map[string]any) {
		for _, n := range r.Namespaces {
			if n.Name != ns {
				continue
			}
			obj, _ := n.Object(report.OpenReports, now)
			for _, res := range obj["results"].([]any) {
				if m := res.(map[string]any); m["result"] == "skip" {
					out = append(out, m)
				}
			}
			return out, obj["summary"].(map[string]any)
		}
		t.Fatalf("no namespace %s", ns)
		return nil, nil
	}
	got, summary := skips("argocd")
	if len(got) != 1 || got[0]["rule"] != "runAsUser" || got[0]["message"] != "redis runs as 999" || summary["skip"] != 1 {
		t.Fatalf("argocd: %v, summary %v", got, summary)
	}
	props := got[0]["properties"].(map[string]any)
	res := got[0]["resources"].([]any)[0].(map[string]any)
	if props["exemption"] != "PodGuardException" || props["exception"] != "argocd/redis-uid" || props["expires"] != "2026-12-20" || res["name"] != "argocd-redis" {
		t.Errorf("the exception's result: %v %v", props, res)
	}
	got, summary = skips("ingress")
	rulesSeen := map[any]bool{}
	for _, g := range got {
		rulesSeen[g["rule"]] = true
		if p := g["properties"].(map[string]any); p["exemption"] != "policy" || p["expires"] != "2027-06-01" || g["message"] != "ingress-nginx runs as 101" {
			t.Errorf("the policy exemption's result: %v", g)
		}
	}
	if !rulesSeen["runAsUser"] || !rulesSeen["runAsGroup"] || len(got) != 2 || summary["fail"] != 0 || summary["skip"] != 2 {
		t.Errorf("ingress: %v, summary %v", got, summary)
	}
	if got, _ := skips("apps"); len(got) != 0 {
		t.Errorf("nothing exempted in apps, yet: %v", got)
	}
}
