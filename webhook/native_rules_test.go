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
	"encoding/json"
	"fmt"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"podguard.dev/podguard/policies/change"
	"reflect"
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
	"../policies/rules/testdata/imageDigest/fail/ephemeral-container-tag.yaml":   "ephemeral containers cannot be set on create (the pods/ephemeralcontainers subresource is webhook-only)",
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
	prevRule, prevProbe, prevProbeName := "", -1, ""
	tested := 0
	type round struct {
		d      *rules.Definition
		mutate *bool
		// policy is a fixture variant's policy file ("" for the default
		// policy), and variant its folder.
		policy, variant string
	}
	var rounds []round
	for _, d := range rules.Definitions() {
		// A fixable rule is sent with its fix on (the MAP injects it)
		// and off: mutation fixes its fail fixtures before validation.
		rounds = append(rounds, round{d: d, mutate: ptr.To(false)})
		if d.Fixable() {
			rounds = append(rounds, round{d: d, mutate: ptr.To(true)})
		}
	}
	// Each variant folder's policy (its parameters, its settings) too, on
	// the rule fixtures.
	seenVariant := map[string]bool{}
	for _, in := range inputs {
		if in.variant != "" && !seenVariant[in.policyF] {
			seenVariant[in.policyF] = true
			d, _ := rules.Lookup(in.rule)
			rounds = append(rounds, round{d: d, policy: in.policyF, variant: in.variant})
		}
	}
	tried := map[string]bool{}
	for _, r := range rounds {
		d := r.d
		p := load.Default("podguard")
		if r.policy != "" {
			var err error
			if p, err = load.File(r.policy, "podguard"); err != nil {
				t.Fatal(err)
			}
		}
		for id, rc := range p.Rules {
			if id != d.ID {
				rc.Action = v1alpha1.ActionOff
				continue
			}
			rc.Action = v1alpha1.ActionEnforce
			if d.Fixable() && r.mutate != nil {
				rc.Mutate = r.mutate
			}
		}
		variant := d.ID
		switch {
		case r.variant != "":
			variant += "/" + r.variant
		case d.Fixable():
			variant += map[bool]string{true: " (fix on)", false: " (fix off)"}[*r.mutate]
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
		// A variant's round judges the rule fixtures only: the PSA
		// fixtures and generated pods test the default policy.
		inputs, objs := inputs, objs
		if r.policy != "" {
			inputs, objs = ruleFixtures(inputs, objs)
		}
		want := make([]bool, len(inputs)) // denied by the engine
		probe := -1
		for i, in := range inputs {
			res, _, err := e.Admit(objs[i], policies.Attributes{Namespace: equivNS})
			if err != nil {
				t.Fatalf("%s: %v", in.name, err)
			}
			want[i] = !res.Allowed
			if probe < 0 && want[i] && in.rule == d.ID && in.fixture == "fail" && in.variant == r.variant && refusedOnCreate[in.name] == "" {
				probe = i
			}
		}
		if probe < 0 {
			// Nothing denied to tell the policy is loaded by: the other
			// variant of the rule must have one. A fix in force is
			// still checked, once the mutation shows.
			if rules.FixInForce(p, d.ID) {
				deleteExport(t, c)
				createExport(t, c, exported)
				if msgs := checkNativeFixes(t, c, e, d.ID, r.variant, inputs, objs, 20*time.Second); len(msgs) > 0 {
					for _, m := range msgs {
						t.Errorf("rule %s alone: %s", variant, m)
					}
				} else {
					t.Logf("rule %s: no fail fixture is denied; its fix fixtures get the engine's values natively", variant)
				}
				prevRule, prevProbe, prevProbeName = "", -1, ""
				continue
			}
			t.Logf("rule %s: no fail fixture is denied", variant)
			continue
		}
		tried[d.ID] = true
		if prevProbe >= len(inputs) || (prevProbe >= 0 && prevProbeName != inputs[min(prevProbe, len(inputs)-1)].name) {
			prevProbe = -1 // the previous round judged other inputs
		}

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
		prevRule, prevProbe, prevProbeName = d.ID, probe, inputs[probe].name
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
		// Where the rule's fix is exported, the natively admitted fix
		// fixtures hold every value the engine's fix injects.
		if rules.FixInForce(p, d.ID) {
			problems = append(problems, checkNativeFixes(t, c, e, d.ID, r.variant, inputs, objs, 0)...)
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

// ruleFixtures keeps the inputs that are rule fixtures, with their objects.
func ruleFixtures(inputs []input, objs []runtime.Object) ([]input, []runtime.Object) {
	var ins []input
	var os []runtime.Object
	for i, in := range inputs {
		if in.rule != "" {
			ins = append(ins, in)
			os = append(os, objs[i])
		}
	}
	return ins, os
}

// storedHas checks that the stored object (the judged part, as JSON) holds
// what a change of the engine's fix injects: its value at its path, or,
// for an appended list element, that element in the list. "" when it does.
func storedHas(stored string, c change.Change) string {
	var v any
	if err := json.Unmarshal([]byte(stored), &v); err != nil {
		return "stored object unreadable: " + err.Error()
	}
	for _, seg := range c.Path {
		switch {
		case seg.Field != "":
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Sprintf("left %s out (no %s)", c, seg.Field)
			}
			v = m[seg.Field]
		default:
			l, ok := v.([]any)
			if !ok || seg.Index >= len(l) {
				return fmt.Sprintf("left %s out (no item %d)", c, seg.Index)
			}
			v = l[seg.Index]
		}
	}
	want, _ := json.Marshal(c.Value)
	var w any
	_ = json.Unmarshal(want, &w)
	switch c.Op {
	case change.Remove:
		return ""
	case change.Append:
		if l, ok := v.([]any); ok && slices.ContainsFunc(l, func(x any) bool { return reflect.DeepEqual(normalizeQuantities(x), normalizeQuantities(w)) }) {
			return ""
		}
	default:
		if reflect.DeepEqual(normalizeQuantities(v), normalizeQuantities(w)) {
			return ""
		}
	}
	got, _ := json.Marshal(v)
	return fmt.Sprintf("injected %s where the engine injects %s (%s)", got, want, c.Path)
}

// normalizeQuantities reads strings that are resource quantities as their
// canonical form, so "1024Mi" and "1Gi" compare equal.
func normalizeQuantities(v any) any {
	switch x := v.(type) {
	case string:
		if q, err := resource.ParseQuantity(x); err == nil {
			return q.String()
		}
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalizeQuantities(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeQuantities(e)
		}
		return out
	}
	return v
}

// checkNativeFixes admits the Pod fix fixtures of a rule (and variant)
// natively and returns where the stored object lacks a value the engine's
// fix injects. With wait, it retries until the exported mutation shows or
// wait passes (kube-apiserver loads a new policy in the background).
func checkNativeFixes(t *testing.T, c *cluster, e *policies.Enforcer, rule, variant string, inputs []input, objs []runtime.Object, wait time.Duration) []string {
	t.Helper()
	var idx []int
	for i, in := range inputs {
		// Pods: the exported mutation fills in Pods, never templates.
		if in.rule == rule && in.fixture == "fix" && in.variant == variant && refusedOnCreate[in.name] == "" && in.obj.GetKind() == "Pod" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	batch := make([]input, len(idx))
	for j, i := range idx {
		batch[j] = inputs[i]
	}
	deadline := time.Now().Add(wait)
	for {
		var problems []string
		for j, g := range admitAll(t, c.Config, batch) {
			i := idx[j]
			if !g.allowed {
				// Refused natively: right only where the engine, its fix
				// applied, denies too (what no fix can remove).
				if res, _, err := e.Admit(objs[i], policies.Attributes{Namespace: equivNS}); err == nil && res.Allowed {
					problems = append(problems, inputs[i].name+": refused natively, admitted by the engine once fixed: "+g.msg)
				}
				continue
			}
			changes, err := e.Mutate(objs[i].DeepCopyObject(), policies.Attributes{Namespace: equivNS})
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range changes {
				if msg := storedHas(g.stored, ch); msg != "" {
					problems = append(problems, inputs[i].name+": the native mutation "+msg)
				}
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			return problems
		}
		time.Sleep(300 * time.Millisecond)
	}
}
