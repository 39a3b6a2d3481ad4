package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"podguard.dev/podguard/cmd/podguard/internal/app"
)

type run struct {
	code     int
	out, err string
}

func podguard(t *testing.T, stdin string, args ...string) run {
	t.Helper()
	var out, errOut bytes.Buffer
	code := app.Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return run{code, out.String(), errOut.String()}
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const samples = "../../../../config/samples/workloads/"

const compliantPod = `apiVersion: v1
kind: Pod
metadata:
  name: ok
  namespace: apps
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
  automountServiceAccountToken: false
  containers:
  - name: c
    image: registry.example/c:1
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    resources: {limits: {cpu: 100m, memory: 64Mi}}
    livenessProbe: {tcpSocket: {port: 80}}
    readinessProbe: {tcpSocket: {port: 80}}
`

const privilegedPod = `apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
  - name: c
    image: registry.example/c:1
    securityContext: {privileged: true}
`

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	ok := write(t, dir, "ok.yaml", compliantPod)
	bad := write(t, dir, "bad.yaml", privilegedPod)
	warnOnly := write(t, dir, "warn.yaml", strings.Replace(compliantPod, "registry.example/c:1", "nginx", 1))
	cases := []struct {
		name string
		args []string
		code int
		out  []string
		err  []string
	}{
		{"allowed", []string{"validate", "-f", ok}, 0, []string{"1 object judged", "0 denied"}, nil},
		{"allowed with warnings", []string{"validate", "-f", warnOnly}, 0, []string{"warn  imageTag: spec.containers[0].image (line 11)", "1 warning"}, nil},
		{"denied", []string{"validate", "-f", bad}, 1, []string{"Pod bad [" + bad + "#0]: denied (9 violations, 4 warnings)\n",
			"  deny  privileged: spec.containers[0].securityContext.privileged (line 8)\n        container \"c\" is privileged: it has every capability and access to all host devices; fix: set it to false\n"}, nil},
		{"denied, one line per finding", []string{"validate", "-f", bad, "-o", "lines"}, 1, []string{"bad.yaml#0 Pod/bad: privileged: spec.containers[0].securityContext.privileged:", "(fix: set spec.containers[0].securityContext.privileged: false)"}, nil},
		{"denied beats allowed", []string{"validate", "-f", ok, "-f", bad}, 1, []string{"2 objects judged", "1 denied"}, nil},
		{"missing path", []string{"validate", "-f", filepath.Join(dir, "nope.yaml")}, 2, nil, []string{"nope.yaml", "no such file"}},
		{"no -f", []string{"validate"}, 2, nil, []string{"no input"}},
		{"unknown flag", []string{"validate", "--frobnicate"}, 2, nil, []string{"unknown flag"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{"unknown command"}},
		{"bad output format", []string{"validate", "-f", ok, "-o", "xml"}, 2, nil, []string{"xml"}},
		{"version", []string{"version"}, 0, []string{"podguard", "kubernetes: 1.37"}, nil},
		{"policy default", []string{"policy", "default"}, 0, []string{"apiVersion: podguard.dev/v1alpha1", "kind: Policy", "allowedUIDs: [1000]"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := podguard(t, "", c.args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.out, r.err)
			}
			for _, w := range c.out {
				if !strings.Contains(r.out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.out)
				}
			}
			for _, w := range c.err {
				if !strings.Contains(r.err, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.err)
				}
			}
		})
	}
}

// TestBadInput: every kind of bad input exits 2 with a message naming the
// file, the document and the line where known, never panics, and never
// drops the good objects around it.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, content string
		code                int
		err                 []string
	}{
		{"malformed YAML", "m.yaml", privilegedPod + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: x\n  spec: [\n", 2, []string{"m.yaml (document 1, line", "malformed YAML"}},
		{"not an object", "list.yaml", privilegedPod + "---\n- a\n- b\n", 2, []string{"list.yaml (document 1, line 10)", "not a Kubernetes object"}},
		{"scalar document", "s.yaml", "just a string\n", 2, []string{"s.yaml (document 0, line 1)", "not a Kubernetes object"}},
		{"no kind", "nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n", 2, []string{"nokind.yaml (document 0, line 1)", "apiVersion and kind are required"}},
		{"wrong field type", "type.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: nope\n", 2, []string{"type.yaml (document 0, line 5)", "spec.containers"}},
		{"binary file", "bin.yaml", "\x00\x01\x02\xff\xfe", 2, []string{"bin.yaml", "binary file"}},
		{"duplicate key", "dup.yaml", "apiVersion: v1\nkind: Pod\nkind: Pod\n", 2, []string{"dup.yaml (document 0", "already defined"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := write(t, dir, c.file, c.content)
			good := write(t, dir, "good-"+c.file, compliantPod)
			for _, cmd := range []string{"validate", "mutate"} {
				r := podguard(t, "", cmd, "-f", good, "-f", path, "-o", "json")
				if cmd == "mutate" {
					r = podguard(t, "", cmd, "-f", good, "-f", path)
				}
				if r.code != c.code {
					t.Errorf("%s: exit %d, want %d; stderr %s", cmd, r.code, c.code, r.err)
				}
				for _, w := range c.err {
					if !strings.Contains(r.err, w) {
						t.Errorf("%s: stderr lacks %q: %s", cmd, w, r.err)
					}
				}
				if strings.Contains(r.err, "panic") {
					t.Errorf("%s panicked: %s", cmd, r.err)
				}
				if !strings.Contains(r.out, "name: ok") && !strings.Contains(r.out, `"name": "ok"`) {
					t.Errorf("%s lost the good object:\n%s", cmd, r.out)
				}
			}
		})
	}
}

func TestNothingToJudge(t *testing.T) {
	dir := t.TempDir()
	empty := write(t, dir, "empty.yaml", "# nothing here\n---\n")
	emptyDir := filepath.Join(dir, "nomanifests")
	write(t, emptyDir, "README.md", "not a manifest")
	unknown := write(t, dir, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: podguard.dev/v1alpha1\nkind: Policy\n")
	for _, p := range []string{empty, emptyDir} {
		r := podguard(t, "", "validate", "-f", p)
		if r.code != 0 || !strings.Contains(r.err, "no Kubernetes objects") {
			t.Errorf("%s: exit %d, stderr %q", p, r.code, r.err)
		}
	}
	r := podguard(t, "", "validate", "-f", unknown)
	if r.code != 0 || !strings.Contains(r.out, "0 objects judged") || !strings.Contains(r.out, "2 objects of other kinds skipped") {
		t.Errorf("unknown kinds: exit %d\n%s", r.code, r.out)
	}
}

func TestPolicyFlag(t *testing.T) {
	dir := t.TempDir()
	bad := write(t, dir, "bad.yaml", privilegedPod)
	unknownField := write(t, dir, "p1.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  privileged:\n    actoin: warn\n")
	r := podguard(t, "", "validate", "-f", bad, "--policy", unknownField)
	if r.code != 2 || !strings.Contains(r.err, "p1.yaml") || !strings.Contains(r.err, "line 5") || !strings.Contains(r.err, "rules.privileged.actoin") {
		t.Errorf("unknown policy field: exit %d, stderr %s", r.code, r.err)
	}
	r = podguard(t, "", "policy", "check", "-f", unknownField)
	if r.code != 2 || !strings.Contains(r.err, "unknown field") {
		t.Errorf("policy check: exit %d, stderr %s", r.code, r.err)
	}
	warn := write(t, dir, "p2.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: warn\n")
	r = podguard(t, "", "validate", "-f", bad, "--policy", warn)
	if r.code != 0 || !strings.Contains(r.out, "  warn  privileged: spec.containers[0].securityContext.privileged (line 8)\n        container \"c\" is privileged") {
		t.Errorf("mode warn: exit %d\n%s", r.code, r.out)
	}
	r = podguard(t, "", "policy", "check", "-f", warn)
	if r.code != 0 || !strings.Contains(r.out, "warn (mode)") {
		t.Errorf("policy check: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestJSONShape pins the JSON contract: keys, sources of documents and List
// items, stdin naming and empty lists rather than nulls.
func TestJSONShape(t *testing.T) {
	list := `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: s}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: d, namespace: web}
  spec:
    template:
      spec:
        containers: [{name: c, image: "c:1"}]
`
	r := podguard(t, compliantPod+"---\n"+list, "validate", "-f", "-", "-o", "json")
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	var raw struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.out), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Results) != 2 {
		t.Fatalf("%d results", len(raw.Results))
	}
	want := []string{"allowed", "apiVersion", "audits", "exempted", "kind", "name", "namespace", "source", "violations", "warnings"}
	for _, res := range raw.Results {
		var keys []string
		for k := range res {
			keys = append(keys, k)
		}
		if strings.Join(slices.Sorted(slices.Values(keys)), ",") != strings.Join(want, ",") {
			t.Errorf("keys %v, want %v", slices.Sorted(slices.Values(keys)), want)
		}
		for _, k := range []string{"violations", "warnings", "audits", "exempted"} {
			if string(res[k]) == "null" {
				t.Errorf("%s is null, want []", k)
			}
		}
	}
	var rep struct {
		Results []struct {
			Source, APIVersion, Kind, Namespace, Name string
			Allowed                                   bool
			Violations                                []map[string]string
		}
	}
	_ = json.Unmarshal([]byte(r.out), &rep)
	a, b := rep.Results[0], rep.Results[1]
	if a.Source != "-#0" || a.Kind != "Pod" || a.Namespace != "apps" || !a.Allowed {
		t.Errorf("first result %+v", a)
	}
	if b.Source != "-#1/1" || b.APIVersion != "apps/v1" || b.Namespace != "web" || b.Allowed {
		t.Errorf("second result %+v", b)
	}
	for _, v := range b.Violations {
		for _, k := range []string{"rule", "field", "message", "fix"} {
			if v[k] == "" {
				t.Errorf("violation without %s: %v", k, v)
			}
		}
		if !strings.HasPrefix(v["field"], "spec.template.spec.") {
			t.Errorf("field not from the object root: %s", v["field"])
		}
	}
}

// TestMutateOutput: unchanged documents come out byte-identical, changed
// ones keep comments and order, JSON stays JSON, Lists stay Lists, and the
// output judged with validate passes.
func TestMutateOutput(t *testing.T) {
	dir := t.TempDir()
	in := "# leading comment\n" + privilegedPod + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:   {name: keep}   # odd spacing kept\ndata: {a: \"1\"}\n---\n" +
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d # the name\nspec:\n  template:\n    spec:\n      containers:\n      - name: c # first\n        image: c:1\n"
	f := write(t, dir, "in.yaml", in)
	r := podguard(t, "", "mutate", "-f", f)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	docs := strings.Split(r.out, "---\n")
	if len(docs) != 3 {
		t.Fatalf("%d documents:\n%s", len(docs), r.out)
	}
	if docs[1] != "apiVersion: v1\nkind: ConfigMap\nmetadata:   {name: keep}   # odd spacing kept\ndata: {a: \"1\"}\n" {
		t.Errorf("unchanged document not byte-identical: %q", docs[1])
	}
	for _, w := range []string{"# leading comment", "privileged: true", "runAsUser: 1000"} {
		if !strings.Contains(docs[0], w) {
			t.Errorf("first document lacks %q:\n%s", w, docs[0])
		}
	}
	for _, w := range []string{"name: d # the name", "- name: c # first", "runAsNonRoot: true", "memory: 512Mi"} {
		if !strings.Contains(docs[2], w) {
			t.Errorf("third document lacks %q:\n%s", w, docs[2])
		}
	}
	if strings.Index(docs[2], "image: c:1") > strings.Index(docs[2], "securityContext") {
		t.Errorf("injected keys must come after existing ones:\n%s", docs[2])
	}
	out := write(t, dir, "out.yaml", docs[2])
	if v := podguard(t, "", "validate", "-f", out); v.code != 0 {
		t.Errorf("mutated Deployment still denied:\n%s", v.out)
	}

	jsonIn := write(t, dir, "rc.json", "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ReplicationController\",\n  \"metadata\": {\"name\": \"rc\"},\n  \"spec\": {\"template\": {\"spec\": {\"containers\": [{\"name\": \"c\", \"image\": \"c:1\"}]}}}\n}\n")
	r = podguard(t, "", "mutate", "-f", jsonIn)
	var js map[string]any
	if err := json.Unmarshal([]byte(r.out), &js); err != nil {
		t.Errorf("JSON in must give JSON out: %v\n%s", err, r.out)
	}
	if !strings.Contains(r.out, `"runAsUser": 1000`) || strings.Index(r.out, `"apiVersion"`) > strings.Index(r.out, `"kind"`) {
		t.Errorf("JSON output:\n%s", r.out)
	}

	r = podguard(t, "", "mutate", "-f", f, "--diff")
	if r.code != 0 || !strings.Contains(r.out, "+    runAsUser: 1000") || strings.Contains(r.out, "ConfigMap") {
		t.Errorf("--diff output:\n%s", r.out)
	}
}

func TestSamples(t *testing.T) {
	r := podguard(t, "", "validate", "-f", samples+"deployment-compliant.yaml")
	if r.code != 0 || strings.Contains(r.out, "warning:") {
		t.Errorf("compliant sample: exit %d\n%s", r.code, r.out)
	}
	r = podguard(t, "", "validate", "--mutate", "-f", samples)
	if r.code != 1 || !strings.Contains(r.out, "1 denied") || !strings.Contains(r.out, "node-shell") {
		t.Errorf("samples --mutate: exit %d\n%s", r.code, r.out)
	}
	for _, p := range []string{"policy-platform.yaml", "policy-rollout-warn.yaml"} {
		if r := podguard(t, "", "policy", "check", "-f", "../../../../config/samples/policies/"+p); r.code != 0 {
			t.Errorf("%s: %s", p, r.err)
		}
	}
}

// TestTargetNamespace: --target-namespace puts objects without a namespace
// where kubectl apply -n would, so a namespace exemption decides offline as
// it does in the cluster; an object naming another namespace is refused, as
// kubectl refuses it.
func TestTargetNamespace(t *testing.T) {
	dir := t.TempDir()
	bad := write(t, dir, "bad.yaml", privilegedPod)
	policy := write(t, dir, "policy.yaml", `apiVersion: podguard.dev/v1alpha1
kind: Policy
exemptions:
- reason: the legacy team's namespace, until it moves
  namespaces: [legacy]
`)
	if r := podguard(t, "", "validate", "--policy", policy, "-f", bad); r.code != 1 {
		t.Errorf("without --target-namespace: exit %d, want 1 (no namespace, no exemption)\n%s%s", r.code, r.out, r.err)
	}
	r := podguard(t, "", "validate", "--policy", policy, "--target-namespace", "legacy", "-f", bad, "-o", "json")
	if r.code != 0 {
		t.Errorf("--target-namespace legacy: exit %d, want 0 (exempt)\n%s%s", r.code, r.out, r.err)
	}
	var out struct {
		Results []struct {
			Namespace string `json:"namespace"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.out), &out); err != nil || len(out.Results) != 1 || out.Results[0].Namespace != "legacy" {
		t.Errorf("the result does not name the target namespace: %v %s", err, r.out)
	}
	if r := podguard(t, "", "mutate", "--policy", policy, "--target-namespace", "legacy", "-f", bad); r.code != 0 || strings.Contains(r.out, "runAsNonRoot") {
		t.Errorf("mutate --target-namespace legacy: exit %d, the exempt pod must stay as written\n%s%s", r.code, r.out, r.err)
	}
	named := write(t, dir, "named.yaml", compliantPod) // namespace: apps
	if r := podguard(t, "", "validate", "--target-namespace", "legacy", "-f", named); r.code != 2 || !strings.Contains(r.err, `"apps" does not match --target-namespace "legacy"`) || !strings.Contains(r.err, "named.yaml") {
		t.Errorf("an object of another namespace: exit %d, want 2 naming the file and both namespaces\n%s", r.code, r.err)
	}
	if r := podguard(t, "", "validate", "--target-namespace", "apps", "-f", named); r.code != 0 {
		t.Errorf("an object of the target namespace: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := podguard(t, "", "validate", "--target-namespace", "Not_A_Namespace", "-f", named); r.code != 2 || !strings.Contains(r.err, "not a namespace name") {
		t.Errorf("a bad --target-namespace: exit %d\n%s", r.code, r.err)
	}
	// The old name of --podguard-namespace still works, deprecated.
	if r := podguard(t, "", "policy", "default", "--namespace", "platform"); r.code != 0 || !strings.Contains(r.out, "platform") || !strings.Contains(r.err, "deprecated") {
		t.Errorf("--namespace (deprecated): exit %d\n%s", r.code, r.err)
	}
}
