package webhook_test

// Rule by rule proof of the native form. kube-apiserver names only the
// first failing validation of a denying policy, and some rules are always
// shadowed by another one in a whole policy (a privileged container always
// fails allowPrivilegeEscalation first, since the API server refuses
// privileged with allowPrivilegeEscalation: false). So each rule is also
// exported alone, in a policy where every other rule is off, and every
// fixture is sent through it: the API server must decide like the engine
// under that same policy, and name the rule.

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/native"
	"podguard.dev/podguard/policies/rules"
)

// refusedOnCreate lists the rule fixtures the API server's own validation
// refuses on create whatever podguard does, with why; the webhook judges
// these fields on other paths.
var refusedOnCreate = map[string]string{
	"../policies/rules/testdata/capabilities/fail/ephemeral.yaml":                "ephemeral containers cannot be set on create (the pods/ephemeralcontainers subresource is webhook-only)",
	"../policies/rules/testdata/resources/fail/request-above-limit.yaml":         "the API server itself refuses a request above its limit",
	"../policies/rules/testdata/runAsUser/fail/windows-root.yaml":                "the API server itself refuses runAsUser on a Windows pod",
	"../policies/rules/testdata/resources/pass/ephemeral-without-resources.yaml": "ephemeral containers cannot be set on create",
}

// podSpecOf returns the pod spec inside an object, by kind.
func podSpecOf(u *unstructured.Unstructured) map[string]any {
	var path []string
	switch u.GetKind() {
	case "Pod":
		path = []string{"spec"}
	case "PodTemplate":
		path = []string{"template", "spec"}
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	default:
		path = []string{"spec", "template", "spec"}
	}
	m, _, _ := unstructured.NestedMap(u.Object, path...)
	if m == nil {
		return nil
	}
	// NestedMap copies: write the spec back through the returned map.
	_ = unstructured.SetNestedMap(u.Object, m, path...)
	got, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	spec, _ := got.(map[string]any)
	return spec
}

// apiValid makes a fixture acceptable to the API server's own validation
// where that does not change what the fixture tests: fixtures are written
// for the engine, and a few of their combinations are refused on create
// before admission runs (a name with '_', a privileged container that also
// sets allowPrivilegeEscalation: false, procMount Unmasked without a user
// namespace, a Windows hostProcess pod without hostNetwork).
func apiValid(u *unstructured.Unstructured) {
	u.SetName(strings.ToLower(strings.ReplaceAll(u.GetName(), "_", "-")))
	spec := podSpecOf(u)
	if spec == nil {
		return
	}
	windows, _, _ := unstructured.NestedString(spec, "os", "name")
	hostProcess := func(sc map[string]any) bool {
		hp, _, _ := unstructured.NestedBool(sc, "windowsOptions", "hostProcess")
		return hp
	}
	if sc, ok := spec["securityContext"].(map[string]any); ok && hostProcess(sc) {
		spec["hostNetwork"] = true
	}
	for _, list := range []string{"initContainers", "containers"} {
		cs, _ := spec[list].([]any)
		for _, c := range cs {
			cm, _ := c.(map[string]any)
			sc, _ := cm["securityContext"].(map[string]any)
			if sc == nil {
				continue
			}
			privileged, _ := sc["privileged"].(bool)
			adds, _, _ := unstructured.NestedStringSlice(sc, "capabilities", "add")
			if (privileged || slices.Contains(adds, "SYS_ADMIN") || slices.Contains(adds, "CAP_SYS_ADMIN")) && sc["allowPrivilegeEscalation"] == false {
				delete(sc, "allowPrivilegeEscalation")
			}
			if sc["procMount"] == "Unmasked" && windows != "windows" {
				spec["hostUsers"] = false
			}
			if hostProcess(sc) {
				spec["hostNetwork"] = true
			}
		}
	}
}

var (
	nativeRuleRE  = regexp.MustCompile(`podguard ([A-Za-z]+):`)
	webhookRuleRE = regexp.MustCompile(`\(podguard rule ([A-Za-z]+)\)`)
)

// nativeRule is the rule a native denial names.
func nativeRule(msg string) string {
	if m := nativeRuleRE.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

// webhookRules are the rules a webhook denial names.
func webhookRules(msg string) []string {
	var out []string
	for _, m := range webhookRuleRE.FindAllStringSubmatch(msg, -1) {
		out = append(out, m[1])
	}
	return out
}

// typed decodes an input into its API type, in the test namespace.
func typed(t *testing.T, in input) runtime.Object {
	t.Helper()
	obj, err := scheme.Scheme.New(in.obj.GroupVersionKind())
	if err != nil {
		t.Fatalf("%s: %v", in.name, err)
	}
	u := in.obj.DeepCopy()
	u.SetNamespace(equivNS)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		t.Fatalf("%s: %v", in.name, err)
	}
	return obj
}

// deleteExport removes every exported object from the API server.
func deleteExport(t *testing.T, c *cluster) {
	t.Helper()
	ctx := context.Background()
	ar := c.cs.AdmissionregistrationV1()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=podguard-export"}
	for _, err := range []error{
		ar.ValidatingAdmissionPolicyBindings().DeleteCollection(ctx, metav1.DeleteOptions{}, sel),
		ar.ValidatingAdmissionPolicies().DeleteCollection(ctx, metav1.DeleteOptions{}, sel),
		ar.MutatingAdmissionPolicyBindings().DeleteCollection(ctx, metav1.DeleteOptions{}, sel),
		ar.MutatingAdmissionPolicies().DeleteCollection(ctx, metav1.DeleteOptions{}, sel),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// nativeRuleByRule exports each rule alone and checks the API server
// decides every fixture like the engine does under the same policy.
// Called by TestNativeEquivalence, on its cluster, with podguard stopped.
func nativeRuleByRule(t *testing.T, c *cluster, all []input) {
	var inputs []input
	for _, in := range all {
		if in.rule != "" || strings.HasPrefix(in.name, "psa ") {
			inputs = append(inputs, in)
		}
	}
	objs := make([]runtime.Object, len(inputs))
	for i, in := range inputs {
		objs[i] = typed(t, in)
	}
	prevRule, prevProbe := "", -1
	tested := 0
	type round struct {
		d      *rules.Definition
		mutate bool
	}
	var rounds []round
	for _, d := range rules.Definitions() {
		// A fixable rule is sent with its fix on (the MAP injects it)
		// and off: mutation fixes its fail fixtures before validation.
		rounds = append(rounds, round{d, false})
		if d.Fixable() {
			rounds = append(rounds, round{d, true})
		}
	}
	tried := map[string]bool{}
	for _, r := range rounds {
		d := r.d
		p := load.Default("podguard")
		for id, rc := range p.Rules {
			rc.Action = v1alpha1.ActionOff
			if id == d.ID {
				rc.Action = v1alpha1.ActionEnforce
				if d.Fixable() {
					rc.Mutate = &r.mutate
				}
			}
		}
		variant := d.ID
		if d.Fixable() {
			variant += map[bool]string{true: " (fix on)", false: " (fix off)"}[r.mutate]
		}
		n := d.Native(p, rules.AsSubmitted)
		if n.WebhookOnly != "" {
			t.Logf("rule %s: webhook-only (%s)", d.ID, n.WebhookOnly)
			continue
		}
		if n.MutationWebhookOnly != "" {
			// Declared, and listed by podguard export: natively the
			// rule judges what the webhook would have filled in.
			t.Logf("rule %s: its fix is webhook-only (%s)", variant, n.MutationWebhookOnly)
			continue
		}
		e, err := policies.New(p)
		if err != nil {
			t.Fatal(err)
		}
		exported, err := native.Build(p, native.Options{ExcludeNamespaces: []string{"kube-system", "podguard"}, OptOutLabel: "podguard.dev/ignore"})
		if err != nil {
			t.Fatal(err)
		}
		want := make([]bool, len(inputs)) // denied by the engine
		probe := -1
		for i, in := range inputs {
			res, _, err := e.Admit(objs[i], policies.Attributes{Namespace: equivNS})
			if err != nil {
				t.Fatalf("%s: %v", in.name, err)
			}
			want[i] = !res.Allowed
			if probe < 0 && want[i] && in.rule == d.ID && in.fixture == "fail" && refusedOnCreate[in.name] == "" {
				probe = i
			}
		}
		if probe < 0 {
			// Nothing to tell the policy is loaded by: the other
			// variant of the rule must have one.
			t.Logf("rule %s: no fail fixture is denied", variant)
			continue
		}
		tried[d.ID] = true

		deleteExport(t, c)
		createExport(t, c, exported)
		// Enforced once the rule's probe is denied in its name and the
		// previous rule's probe no longer is.
		probes := []input{inputs[probe]}
		if prevProbe >= 0 && prevRule != d.ID {
			probes = append(probes, inputs[prevProbe])
		}
		deadline := time.Now().Add(20 * time.Second)
		enforced := false
		for !enforced {
			got := admitAll(t, c.Config, probes)
			enforced = nativeRule(got[0].msg) == d.ID && (len(got) == 1 || nativeRule(got[1].msg) != prevRule)
			if !enforced && time.Now().After(deadline) {
				t.Errorf("rule %s alone: %s, which the engine denies, is not denied in the rule's name after 20 s: %s", variant, probes[0].name, orAllowed(got[0]))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		prevRule, prevProbe = d.ID, probe
		if !enforced {
			continue
		}

		// kube-apiserver syncs each policy on its own: a difference that
		// goes away on a second try was a policy not yet (un)loaded.
		pending := make([]int, len(inputs))
		for i := range pending {
			pending[i] = i
		}
		var problems, untested []string
		refused := 0
		for try := 0; try < 4 && len(pending) > 0; try++ {
			if try > 0 {
				time.Sleep(time.Second)
			}
			batch := make([]input, len(pending))
			for j, i := range pending {
				batch[j] = inputs[i]
			}
			got := admitAll(t, c.Config, batch)
			var again []int
			problems = nil
			for j, i := range pending {
				in, g := inputs[i], got[j]
				switch {
				case !g.allowed && !deniedByPodguard(g.msg):
					refused++
					if in.rule == d.ID && in.fixture == "fail" && refusedOnCreate[in.name] == "" {
						untested = append(untested, in.name+": refused by the API server's own validation, so the rule goes untested on it: "+g.msg)
					}
				case want[i] != !g.allowed:
					again = append(again, i)
					problems = append(problems, in.name+": engine denied="+boolString(want[i])+", native: "+orAllowed(g))
				case !g.allowed && nativeRule(g.msg) != d.ID:
					again = append(again, i)
					problems = append(problems, in.name+": the native denial does not name "+d.ID+": "+g.msg)
				}
			}
			pending = again
		}
		for _, pr := range append(untested, problems...) {
			t.Errorf("rule %s alone: %s", variant, pr)
		}
		tested++
		t.Logf("rule %s alone: %d inputs, %d refused by the API server's own validation", variant, len(inputs), refused)
	}
	for _, d := range rules.Definitions() {
		if !tried[d.ID] && d.Native(load.Default("podguard"), rules.AsSubmitted).WebhookOnly == "" {
			t.Errorf("rule %s: no fail fixture the engine denies and the API server can take, with its fix on or off: its native form goes untested alone", d.ID)
		}
	}
	if tested == 0 {
		t.Error("no rule tested alone")
	}
	deleteExport(t, c)
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func orAllowed(o outcome) string {
	if o.allowed {
		return "allowed"
	}
	return "denied: " + o.msg
}
