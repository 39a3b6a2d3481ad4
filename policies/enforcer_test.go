package policies_test

import (
	"podguard.dev/podguard/policies/rules"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
)

func enforcer(t testing.TB, policyYAML string) *policies.Enforcer {
	t.Helper()
	return testenv.Enforcer(t, policyYAML)
}

const header = "apiVersion: podguard.dev/v1alpha1\nkind: Policy\n"

func bareSpec() corev1.PodSpec {
	return corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: "registry.example/init:1"}},
		Containers: []corev1.Container{
			{Name: "app", Image: "registry.example/app:1"},
			{Name: "sidecar", Image: "registry.example/sidecar:1", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resourceMust("1Gi")}}},
		},
	}
}

func tmpl() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: bareSpec()}
}

func allKinds() map[string]runtime.Object {
	meta := metav1.ObjectMeta{Name: "x", Namespace: "apps"}
	t := tmpl()
	return map[string]runtime.Object{
		"Pod":                   &corev1.Pod{ObjectMeta: meta, Spec: bareSpec()},
		"PodTemplate":           &corev1.PodTemplate{ObjectMeta: meta, Template: tmpl()},
		"ReplicationController": &corev1.ReplicationController{ObjectMeta: meta, Spec: corev1.ReplicationControllerSpec{Template: &t}},
		"Deployment":            &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Template: tmpl()}},
		"ReplicaSet":            &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Template: tmpl()}},
		"StatefulSet":           &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Template: tmpl()}},
		"DaemonSet":             &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Template: tmpl()}},
		"Job":                   &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{Template: tmpl()}},
		"CronJob":               &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl()}}}},
	}
}

// TestMutatedBareObjectsPass: every supported kind with no security
// settings at all passes the whole default policy once mutated, and a
// second mutation changes nothing.
func TestMutatedBareObjectsPass(t *testing.T) {
	e := enforcer(t, "")
	for kind, obj := range allKinds() {
		t.Run(kind, func(t *testing.T) {
			before, err := e.Validate(obj, policies.Attributes{Namespace: "apps"})
			if err != nil {
				t.Fatal(err)
			}
			if before.Allowed {
				t.Fatal("a bare object must be denied as given")
			}
			changes, err := e.Mutate(obj, policies.Attributes{Namespace: "apps"})
			if err != nil || len(changes) == 0 {
				t.Fatalf("mutate: %v, %d changes", err, len(changes))
			}
			after, err := e.Validate(obj, policies.Attributes{Namespace: "apps"})
			if err != nil {
				t.Fatal(err)
			}
			if !after.Allowed {
				t.Errorf("still denied after mutation: %+v", after.Violations)
			}
			// What stays is what no fix in force could remove: warn rules
			// without a fix, or whose mutate is off by default.
			for _, w := range after.Warnings {
				d, _ := rules.Lookup(w.Rule)
				if d.Action != v1alpha1.ActionWarn || (d.Fixable() && d.Mutate) {
					t.Errorf("unexpected warning after mutation: %+v", w)
				}
			}
			again, _ := e.Mutate(obj, policies.Attributes{Namespace: "apps"})
			if len(again) > 0 {
				t.Errorf("mutation is not idempotent: %v", again)
			}
		})
	}
}

func resourceMust(s string) resourceQuantity { return mustQuantity(s) }

func pod(mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps"}, Spec: bareSpec()}
	if mod != nil {
		mod(p)
	}
	return p
}

func rulesOf(fs []policies.Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.Rule) {
			out = append(out, f.Rule)
		}
	}
	slices.Sort(out)
	return out
}

func TestExemptions(t *testing.T) {
	privileged := func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	}
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.DateOnly)
	past := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		name     string
		policy   string
		attrs    policies.Attributes
		allowed  bool
		exempted bool
		expired  bool
		// violating rules expected when not allowed
		rules []string
	}{
		{name: "default exempts kube-system", policy: "", attrs: policies.Attributes{Namespace: "kube-system"}, allowed: true, exempted: true},
		{name: "default exempts own namespace", policy: "", attrs: policies.Attributes{Namespace: "podguard"}, allowed: true, exempted: true},
		{name: "explicit empty list exempts nothing", policy: header + "exemptions: []\n", attrs: policies.Attributes{Namespace: "kube-system"}, allowed: false},
		{name: "namespace glob", policy: header + "exemptions:\n- reason: legacy\n  namespaces: ['legacy-*']\n", attrs: policies.Attributes{Namespace: "legacy-billing"}, allowed: true, exempted: true},
		{name: "namespace glob no match", policy: header + "exemptions:\n- reason: legacy\n  namespaces: ['legacy-*']\n", attrs: policies.Attributes{Namespace: "apps"}, allowed: false},
		{name: "user", policy: header + "exemptions:\n- reason: ci\n  users: [ci-bot]\n", attrs: policies.Attributes{Namespace: "apps", User: "ci-bot"}, allowed: true, exempted: true},
		{name: "user needs a user", policy: header + "exemptions:\n- reason: ci\n  users: [ci-bot]\n", attrs: policies.Attributes{Namespace: "apps"}, allowed: false},
		{name: "group", policy: header + "exemptions:\n- reason: admins\n  groups: [system:masters]\n", attrs: policies.Attributes{Namespace: "apps", User: "a", Groups: []string{"x", "system:masters"}}, allowed: true, exempted: true},
		{name: "namespace and user must both match", policy: header + "exemptions:\n- reason: r\n  namespaces: [apps]\n  users: [ci-bot]\n", attrs: policies.Attributes{Namespace: "apps", User: "other"}, allowed: false},
		{name: "rule-limited", policy: header + "exemptions:\n- reason: r\n  namespaces: [apps]\n  rules: [privileged]\n", attrs: policies.Attributes{Namespace: "apps"}, allowed: false, exempted: true,
			rules: []string{"allowPrivilegeEscalation", "capabilities", "resources", "runAsGroup", "runAsNonRoot", "runAsUser", "seccompProfile"}},
		{name: "future expiry applies", policy: header + "exemptions:\n- reason: r\n  namespaces: [apps]\n  expires: '" + future + "'\n", attrs: policies.Attributes{Namespace: "apps"}, allowed: true, exempted: true},
		{name: "past expiry does not", policy: header + "exemptions:\n- reason: r\n  namespaces: [apps]\n  expires: '" + past + "'\n", attrs: policies.Attributes{Namespace: "apps"}, allowed: false, expired: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := enforcer(t, c.policy)
			res, err := e.Validate(pod(privileged), c.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if res.Allowed != c.allowed {
				t.Errorf("allowed = %v, want %v (violations %v)", res.Allowed, c.allowed, rulesOf(res.Violations))
			}
			if (len(res.Exempted) > 0) != c.exempted {
				t.Errorf("exempted = %+v, want %v", res.Exempted, c.exempted)
			}
			expired := slices.ContainsFunc(res.Warnings, func(f policies.Finding) bool { return strings.Contains(f.Message, "expired") })
			if expired != c.expired {
				t.Errorf("expired warning = %v, want %v", expired, c.expired)
			}
			if c.rules != nil && !slices.Equal(rulesOf(res.Violations), c.rules) {
				t.Errorf("violations %v, want %v", rulesOf(res.Violations), c.rules)
			}
		})
	}
}

// TestContainerExemption: an exemption by container name and image lifts
// the listed rules from that container only, and its fixes are not applied
// to it.
func TestContainerExemption(t *testing.T) {
	e := enforcer(t, header+`exemptions:
- reason: the mesh init container configures iptables as root
  rules: [runAsUser, runAsNonRoot, capabilities, allowPrivilegeEscalation]
  containerNames: [mesh-init]
  images: ["docker.io/istio/*"]
`)
	p := pod(func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{
			Name: "mesh-init", Image: "docker.io/istio/proxyv2:1.24",
			SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(false),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}}},
		}}
	})
	changes, err := e.Mutate(p, policies.Attributes{Namespace: "apps"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if strings.HasPrefix(c.Path.String(), "spec.initContainers[0]") && c.Rule != "resources" {
			t.Errorf("exempt container was mutated by %s: %s", c.Rule, c)
		}
	}
	res, _ := e.Validate(p, policies.Attributes{Namespace: "apps"})
	if !res.Allowed {
		t.Errorf("violations: %+v", res.Violations)
	}
	if len(res.Exempted) == 0 || res.Exempted[0].Reason == "" {
		t.Errorf("exempted not reported: %+v", res.Exempted)
	}
	// The same container under another image is not exempt.
	p.Spec.InitContainers[0].Image = "registry.example/other:1"
	res, _ = e.Validate(p, policies.Attributes{Namespace: "apps"})
	if res.Allowed {
		t.Error("a container matching the name but not the image must not be exempt")
	}
}

func TestAdmitWorkloads(t *testing.T) {
	e := enforcer(t, "")
	dep := allKinds()["Deployment"].(*appsv1.Deployment)
	orig := dep.DeepCopy()
	res, changes, err := e.Admit(dep, policies.Attributes{Namespace: "apps"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Allowed {
		t.Errorf("a fixable Deployment must be admitted: %+v", res.Violations)
	}
	if len(changes) == 0 || !slices.ContainsFunc(res.Warnings, func(f policies.Finding) bool {
		return f.Rule == "runAsUser" && strings.Contains(f.Message, "injects")
	}) {
		t.Errorf("expected a runAsUser warning saying what is injected, got %+v", res.Warnings)
	}
	if !equality.Semantic.DeepEqual(dep, orig) {
		t.Error("Admit changed the object it judged")
	}

	dep.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	res, _, _ = e.Admit(dep, policies.Attributes{Namespace: "apps"})
	if res.Allowed || !slices.Equal(rulesOf(res.Violations), []string{"allowPrivilegeEscalation", "privileged"}) {
		t.Errorf("privileged Deployment: allowed=%v violations %v", res.Allowed, rulesOf(res.Violations))
	}
}

func TestModeAndActions(t *testing.T) {
	p := pod(func(p *corev1.Pod) { p.Spec.HostNetwork = true })
	res, _ := enforcer(t, header+"mode: warn\n").Validate(p, policies.Attributes{Namespace: "apps"})
	if !res.Allowed || len(res.Violations) != 0 || !slices.Contains(rulesOf(res.Warnings), "hostNamespaces") {
		t.Errorf("mode warn: %+v", res)
	}
	res, _ = enforcer(t, header+"rules:\n  hostNamespaces:\n    action: audit\n").Validate(p, policies.Attributes{Namespace: "apps"})
	if !slices.Contains(rulesOf(res.Audits), "hostNamespaces") || slices.Contains(rulesOf(res.Violations), "hostNamespaces") {
		t.Errorf("audit action: %+v", res)
	}
	res, _ = enforcer(t, header+"rules:\n  hostNamespaces:\n    action: "+"off\n").Validate(p, policies.Attributes{Namespace: "apps"})
	if slices.Contains(rulesOf(append(append(res.Violations, res.Warnings...), res.Audits...)), "hostNamespaces") {
		t.Errorf("off action still reports: %+v", res)
	}
	// mutate: false keeps the rule but injects nothing.
	q := pod(nil)
	changes, _ := enforcer(t, header+"rules:\n  runAsUser:\n    mutate: false\n").Mutate(q, policies.Attributes{Namespace: "apps"})
	if slices.ContainsFunc(changes, func(c changeT) bool { return c.Rule == "runAsUser" }) {
		t.Error("runAsUser mutate: false still injected")
	}
}

// TestEphemeralContainersOnly: judging a new ephemeral container of a
// running pod looks at that container only, and its fix is container-level
// (the pod spec can no longer change) and has no resources.
func TestEphemeralContainersOnly(t *testing.T) {
	e := enforcer(t, "")
	p := pod(func(p *corev1.Pod) {
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "registry.example/debug:1"}}}
	})
	attrs := policies.Attributes{Namespace: "apps", EphemeralContainers: []string{"debugger"}}
	res, _ := e.Validate(p, attrs)
	// The bare debugger breaks the container-level rules, and only those:
	// the pod (bare too) is not judged again.
	wantRules := []string{"allowPrivilegeEscalation", "capabilities", "runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile"}
	var got []string
	for _, f := range append(res.Violations, res.Warnings...) {
		if !strings.HasPrefix(f.Field, "spec.ephemeralContainers[0]") {
			t.Errorf("finding outside the ephemeral container: %+v", f)
		}
		got = append(got, f.Rule)
	}
	for _, r := range wantRules {
		if !slices.Contains(got, r) {
			t.Errorf("the bare ephemeral container is not reported under %s (findings: %v)", r, got)
		}
	}
	changes, err := e.Mutate(p, attrs)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 {
		t.Fatal("nothing injected into the bare ephemeral container")
	}
	for _, c := range changes {
		if !strings.HasPrefix(c.Path.String(), "spec.ephemeralContainers[0].securityContext") {
			t.Errorf("change outside the ephemeral container's securityContext: %s", c)
		}
	}
	res, _ = e.Validate(p, attrs)
	if !res.Allowed {
		t.Errorf("mutated ephemeral container still denied: %+v", res.Violations)
	}
}
