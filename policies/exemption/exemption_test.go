package exemption_test

import (
	"fmt"
	"testing"

	"github.com/google/cel-go/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/exemption"
)

// celEnv is kube-apiserver's own CEL environment (the libraries an
// admission policy gets: optionals, regular expressions, two-variable
// comprehensions) with the variables a ValidatingAdmissionPolicy sees.
func celEnv(t *testing.T) *cel.Env {
	t.Helper()
	env, err := environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()).Env(environment.StoredExpressions)
	if err != nil {
		t.Fatal(err)
	}
	env, err = env.Extend(cel.Variable("request", cel.DynType), cel.Variable("object", cel.DynType),
		cel.Variable("variables", cel.DynType), cel.Variable("c", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func eval(t *testing.T, env *cel.Env, expr string, vars map[string]any) bool {
	t.Helper()
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatalf("compiling %s: %v", expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		t.Fatalf("%s is %T, not a bool", expr, out.Value())
	}
	return b
}

// Strings that differ between byte, rune and line semantics.
var hard = []string{"", "a", "é", "日本", "🚀", "a\nb", "\n", "\x1b[31m", "\u202e", "\u2028", "tab\there", "reg.io/app:vé", "reg.io/base/x\ny", "*", "?", "a.b", "a+b", "(x)"}

func TestGlobRegexpDecidesAsMatchGlob(t *testing.T) {
	env := celEnv(t)
	globs := []string{"*", "?", "??", "a*", "*b", "a?b", "reg.io/app:v?", "reg.io/base/*", "é?", "?🚀", "*\n*", "a.b", "(x)", "a+b", "\u202e*", "日?", "**", "*?*"}
	for _, g := range globs {
		for _, s := range append(hard, g) {
			want := exemption.MatchGlob(g, s)
			expr := exemption.GlobCEL("request.namespace", []string{g})
			got := eval(t, env, expr, map[string]any{"request": map[string]any{"namespace": s}})
			if got != want {
				t.Errorf("glob %q, string %q: Go %v, CEL %v (%s)", g, s, want, got, expr)
			}
		}
	}
	// The cases that differed before: ? matched a byte in Go and a
	// character in the regular expression; . did not match a newline.
	if !exemption.MatchGlob("reg.io/app:v?", "reg.io/app:vé") || !exemption.MatchGlob("reg.io/base/*", "reg.io/base/x\ny") {
		t.Error("? must match one character and * any run, line breaks included")
	}
	if exemption.MatchGlob("reg.io/app:v?", "reg.io/app:v") || exemption.MatchGlob("a?b", "a\xff\xfeb") {
		t.Error("? matches exactly one character")
	}
}

// TestRequestCELDecidesAsMatchesRequest evaluates every kind of exemption
// scope in Go and in CEL, on the same requests and objects.
func TestRequestCELDecidesAsMatchesRequest(t *testing.T) {
	env := celEnv(t)
	exemptions := []v1alpha1.Exemption{
		{Namespaces: []string{"team-*", "legacy"}},
		{Namespaces: []string{"é?"}},
		{Users: []string{"system:serviceaccount:ci:runner"}},
		{Groups: []string{"ci-admins"}},
		{Namespaces: []string{"apps"}, Workloads: []v1alpha1.WorkloadRef{{Kind: "Deployment", Name: "web"}}},
		{Workloads: []v1alpha1.WorkloadRef{{Kind: "CronJob", Name: "backup"}, {Kind: "StatefulSet", Name: "db"}}},
		{Workloads: []v1alpha1.WorkloadRef{{Kind: "DaemonSet", Name: "agent"}, {Kind: "Job", Name: "once"}, {Kind: "ReplicationController", Name: "old"}}},
		{Workloads: []v1alpha1.WorkloadRef{{Kind: "Pod", Name: "debug"}, {Kind: "ReplicaSet", Name: "rs"}, {Kind: "PodTemplate", Name: "tmpl"}}},
		{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"db", "cache"}},
			{Key: "env", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"prod"}},
			{Key: "team", Operator: metav1.LabelSelectorOpExists},
			{Key: "legacy", Operator: metav1.LabelSelectorOpDoesNotExist}}}},
		{Namespaces: []string{"apps"}, Users: []string{"dev"}, Groups: []string{"g"}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	compiled, err := exemption.Compile(exemptions)
	if err != nil {
		t.Fatal(err)
	}
	ctrl := func(apiVersion, kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, Controller: ptr.To(true)}}
	}
	notCtrl := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc"}}
	pod := schema.GroupKind{Kind: "Pod"}
	type object struct {
		name string
		o    exemption.Object
	}
	objects := []object{
		{"web deployment", exemption.Object{Kind: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Name: "web", PodLabels: map[string]string{"app": "web"}}},
		{"web replicaset", exemption.Object{Kind: schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, Name: "web-abc", Owners: ctrl("apps/v1", "Deployment", "web")}},
		{"web pod", exemption.Object{Kind: pod, Name: "web-abc-x", Owners: ctrl("apps/v1", "ReplicaSet", "web-abc"), PodLabels: map[string]string{"app": "web", "pod-template-hash": "abc"}}},
		{"web pod, wrong hash", exemption.Object{Kind: pod, Owners: ctrl("apps/v1", "ReplicaSet", "web-abc"), PodLabels: map[string]string{"pod-template-hash": "xyz"}}},
		{"web pod, no hash", exemption.Object{Kind: pod, Owners: ctrl("apps/v1", "ReplicaSet", "web-abc")}},
		{"web pod, owner not controller", exemption.Object{Kind: pod, Owners: notCtrl, PodLabels: map[string]string{"pod-template-hash": "abc"}}},
		{"web pod, owner of another group", exemption.Object{Kind: pod, Owners: ctrl("example.com/v1", "ReplicaSet", "web-abc"), PodLabels: map[string]string{"pod-template-hash": "abc"}}},
		{"a CRD named Deployment", exemption.Object{Kind: schema.GroupKind{Group: "example.com", Kind: "Deployment"}, Name: "web"}},
		{"webby deployment", exemption.Object{Kind: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Name: "webby"}},
		{"backup cronjob", exemption.Object{Kind: schema.GroupKind{Group: "batch", Kind: "CronJob"}, Name: "backup"}},
		{"backup job", exemption.Object{Kind: schema.GroupKind{Group: "batch", Kind: "Job"}, Name: "backup-29000000", Owners: ctrl("batch/v1", "CronJob", "backup")}},
		{"backup pod", exemption.Object{Kind: pod, Owners: ctrl("batch/v1", "Job", "backup-29000000")}},
		{"backup-x pod", exemption.Object{Kind: pod, Owners: ctrl("batch/v1", "Job", "backup-x")}},
		{"db pod", exemption.Object{Kind: pod, Owners: ctrl("apps/v1", "StatefulSet", "db"), PodLabels: map[string]string{"tier": "db", "team": "a"}}},
		{"agent pod", exemption.Object{Kind: pod, Owners: ctrl("apps/v1", "DaemonSet", "agent"), PodLabels: map[string]string{"tier": "cache", "env": "prod", "team": "a"}}},
		{"once pod", exemption.Object{Kind: pod, Owners: ctrl("batch/v1", "Job", "once"), PodLabels: map[string]string{"tier": "db", "team": "b", "legacy": "y"}}},
		{"old pod", exemption.Object{Kind: pod, Owners: ctrl("v1", "ReplicationController", "old")}},
		{"debug pod", exemption.Object{Kind: pod, Name: "debug"}},
		{"rs pod", exemption.Object{Kind: pod, Owners: ctrl("apps/v1", "ReplicaSet", "rs")}},
		{"template", exemption.Object{Kind: schema.GroupKind{Kind: "PodTemplate"}, Name: "tmpl"}},
		{"bare pod", exemption.Object{Kind: pod, PodLabels: map[string]string{"app": "other"}}},
	}
	requests := []exemption.Request{
		{Namespace: "apps"}, {Namespace: "team-a", User: "dev", Groups: []string{"g"}}, {Namespace: "legacy"}, {Namespace: "éx"},
		{Namespace: "apps", User: "system:serviceaccount:ci:runner"}, {Namespace: "apps", User: "dev", Groups: []string{"ci-admins", "g"}},
	}
	apiVersion := map[string]string{"": "v1", "apps": "apps/v1", "batch": "batch/v1", "example.com": "example.com/v1"}
	cases, matched := 0, 0
	for i, e := range compiled {
		expr := e.RequestCEL()
		for _, r := range requests {
			for _, o := range objects {
				want := e.MatchesRequest(r, o.o)
				owners := []any{}
				for _, ref := range o.o.Owners {
					m := map[string]any{"apiVersion": ref.APIVersion, "kind": ref.Kind, "name": ref.Name}
					if ref.Controller != nil {
						m["controller"] = *ref.Controller
					}
					owners = append(owners, m)
				}
				meta := map[string]any{"ownerReferences": owners}
				if o.o.Name != "" {
					meta["name"] = o.o.Name
				}
				podMeta := map[string]any{}
				if o.o.PodLabels != nil {
					podMeta["labels"] = o.o.PodLabels
				}
				groups := []any{}
				for _, g := range r.Groups {
					groups = append(groups, g)
				}
				vars := map[string]any{
					"request":   map[string]any{"namespace": r.Namespace, "userInfo": map[string]any{"username": r.User, "groups": groups}},
					"object":    map[string]any{"apiVersion": apiVersion[o.o.Kind.Group], "kind": o.o.Kind.Kind, "metadata": meta},
					"variables": map[string]any{"meta": podMeta},
				}
				got := eval(t, env, expr, vars)
				cases++
				if want {
					matched++
				}
				if got != want {
					t.Errorf("exemption %d, request %+v, %s: Go %v, CEL %v\n%s", i, r, o.name, want, got, expr)
				}
			}
		}
	}
	if matched == 0 || matched == cases {
		t.Fatalf("%d of %d cases matched: the table does not tell the forms apart", matched, cases)
	}
	t.Logf("%d cases, %d matched", cases, matched)
}

func TestContainerCELDecidesAsMatchesContainer(t *testing.T) {
	env := celEnv(t)
	compiled, err := exemption.Compile([]v1alpha1.Exemption{
		{Images: []string{"docker.io/istio/proxyv2:*", "reg/?é"}},
		{ContainerNames: []string{"istio-init"}},
		{Images: []string{"*\n*"}, ContainerNames: []string{"a\nb", "é"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"istio-init", "a\nb", "é", "other"}
	images := append([]string{"docker.io/istio/proxyv2:1.20", "reg/xé", "reg/日é", "x\ny"}, hard...)
	for i, e := range compiled {
		for _, n := range names {
			for _, img := range images {
				want := e.MatchesContainer(n, img)
				got := eval(t, env, e.ContainerCEL("c"), map[string]any{"c": map[string]any{"name": n, "image": img}})
				if got != want {
					t.Errorf("exemption %d, container %q image %q: Go %v, CEL %v", i, n, img, want, got)
				}
			}
		}
	}
}

func Example() {
	e, _ := exemption.Compile([]v1alpha1.Exemption{{Namespaces: []string{"apps"}, Workloads: []v1alpha1.WorkloadRef{{Kind: "StatefulSet", Name: "db"}}}})
	fmt.Println(e[0].MatchesRequest(exemption.Request{Namespace: "apps"}, exemption.Object{Kind: schema.GroupKind{Kind: "Pod"},
		Owners: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: ptr.To(true)}}}))
	// Output: true
}
