package report_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	sigsyaml "sigs.k8s.io/yaml"

	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/policies/yamlenc"
)

// hostile is every kind of text that can leave the place it is printed
// in: a line break and a YAML document marker, terminal escapes, a
// carriage return, a bidirectional override, the line separator, DEL, and
// HTML.
const hostile = "x\n---\nkind: ClusterRoleBinding\n\r\x1b[31mred\x1b[2J\x1b]0;t\x07\u202egnp\u2028\x7f<script>alert(1)</script>"

// TestHostileStringsInReports renders an audit of objects whose names,
// images, env var names and annotations are hostile, in every format, and
// reads each back: text without control characters, HTML whose only
// script is the report's own, JSON, YAML and the report objects that
// decode to the same data, and a baseline that merges into a policy that
// loads with the same exemptions.
func TestHostileStringsInReports(t *testing.T) {
	spec := compliantSpec("c")
	spec.Containers[0].Name = "c" + hostile
	spec.Containers[0].Image = "registry.example/" + hostile
	spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
	spec.Containers[0].Env = []corev1.EnvVar{{Name: hostile + "_PASSWORD", Value: "hunter2"}}
	dep := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns" + hostile, Name: "d" + hostile, UID: "u1", Annotations: map[string]string{hostile: hostile}},
		Spec:       appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: spec}}}
	r := report.Build(enforcer(t, ""), report.Input{Objects: []runtime.Object{dep}, Cluster: "c" + hostile, Now: now})
	if r.Summary.Fail != 1 {
		t.Fatalf("the hostile Deployment is not denied: %+v", r.Summary)
	}

	var text bytes.Buffer
	if err := r.Text(&text); err != nil {
		t.Fatal(err)
	}
	for i, c := range text.String() {
		if c != '\n' && c != ' ' && (!unicode.IsPrint(c) || unicode.Is(unicode.Cf, c)) {
			t.Fatalf("text: %U at byte %d reaches the terminal raw", c, i)
		}
	}

	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(page.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var scripts []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" && n.FirstChild != nil && strings.Contains(n.FirstChild.Data, "alert(1)") {
			scripts = append(scripts, n.FirstChild.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(scripts) > 0 || !strings.Contains(page.String(), "&lt;script&gt;") {
		t.Errorf("HTML: the object's <script> is not escaped (%d scripts)", len(scripts))
	}

	var js, ys bytes.Buffer
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := r.YAML(&ys); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	var fromJSON, fromYAML map[string]any
	if err := json.Unmarshal(js.Bytes(), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.Unmarshal(ys.Bytes(), &fromYAML); err != nil {
		t.Fatalf("YAML does not read back: %v", err)
	}
	if fromJSON["cluster"] != "c"+hostile || !reflect.DeepEqual(normalizeJSON(t, fromJSON), normalizeJSON(t, fromYAML)) {
		t.Error("the YAML report differs from the JSON report")
	}

	for _, k := range []report.ObjectKind{report.OpenReports, report.PolicyReport} {
		obj, _ := r.Namespaces[0].Object(k, now)
		y, err := yamlenc.Marshal(obj)
		if err != nil {
			t.Fatalf("%s: %v", k.Kind, err)
		}
		var back map[string]any
		if err := sigsyaml.Unmarshal(y, &back); err != nil {
			t.Fatalf("%s does not read back: %v", k.Kind, err)
		}
		if !reflect.DeepEqual(normalizeJSON(t, obj), normalizeJSON(t, back)) {
			t.Errorf("%s reads back differently", k.Kind)
		}
	}

	// The baseline's YAML holds the same exemptions, however hostile the
	// names (the API server would refuse these names; the encoding must
	// not depend on it).
	ex := report.Baseline(r, "2027-01-01")
	merged, err := report.MergeExemptions(nil, ex, "podguard")
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Exemptions []json.RawMessage `json:"exemptions"`
	}
	if err := sigsyaml.Unmarshal(merged, &back); err != nil {
		t.Fatalf("the baseline does not read back: %v\n%s", err, merged)
	}
	got := back.Exemptions[len(back.Exemptions)-len(ex):]
	for i := range ex {
		if !reflect.DeepEqual(normalizeJSON(t, json.RawMessage(got[i])), normalizeJSON(t, ex[i])) {
			t.Errorf("baseline exemption %d reads back as %s, want %+v", i, got[i], ex[i])
		}
	}
	if _, err := load.Bytes(merged, "merged", "podguard"); err == nil || !strings.Contains(err.Error(), "workloads[0].name") {
		t.Errorf("a workload name the API server would refuse must be refused by the policy too: %v", err)
	}
}

func normalizeJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
