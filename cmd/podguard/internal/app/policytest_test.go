package app_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleTests = "../../../../config/samples/tests"

// TestPolicyTestsShipped: the tests shipped for the default policy and the
// sample policies pass.
func TestPolicyTestsShipped(t *testing.T) {
	r := podguard(t, "", "test", sampleTests)
	if r.code != 0 || !strings.Contains(r.out, "0 failed") || strings.Contains(r.out, "FAIL") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, name := range []string{"default policy", "platform policy", "rollout in warn mode", "legacy exemption expired"} {
		if !strings.Contains(r.out, name) {
			t.Errorf("test %q did not run:\n%s", name, r.out)
		}
	}
}

// writeTest writes a test directory: the test file and the resources.
func writeTest(t *testing.T, test string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["podguard-test.yaml"] = test
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const rootPodYAML = `apiVersion: v1
kind: Pod
metadata:
  name: "p\u001b[31m<x>&"
spec:
  securityContext: {runAsUser: 0}
  containers:
  - {name: c, image: "c:1"}
`

func TestPolicyTestFailures(t *testing.T) {
	dir := writeTest(t, `apiVersion: podguard.dev/v1alpha1
kind: PolicyTest
name: "hostile \u001b]0;title\u0007 <name> & \"quotes\""
resources: [pod.yaml]
results:
- {resource: "Pod/p\u001b[31m<x>&", rule: runAsUser, result: pass}
- {resource: "Pod/p\u001b[31m<x>&", rule: privileged, result: pass}
- {resource: "Pod/p\u001b[31m<x>&", mutated: expected.yaml}
`, map[string]string{"pod.yaml": rootPodYAML, "expected.yaml": rootPodYAML})
	r := podguard(t, "", "test", dir)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (a case failed)\n%s%s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.out, "3 cases: 1 passed, 2 failed") || !strings.Contains(r.out, "runAsUser: spec.securityContext.runAsUser") ||
		!strings.Contains(r.out, "spec.securityContext.runAsNonRoot: got true, want null") {
		t.Errorf("the report does not say what failed and why:\n%s", r.out)
	}
	if strings.ContainsAny(r.out, "\x1b\x07") {
		t.Errorf("control characters from the test file reach the terminal:\n%q", r.out)
	}
	// JUnit: well-formed XML holding the same cases, the hostile name escaped.
	j := podguard(t, "", "test", "-o", "junit", dir)
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(j.out), &suites); err != nil {
		t.Fatalf("JUnit output is not XML: %v\n%s", err, j.out)
	}
	if j.code != 1 || suites.Tests != 3 || suites.Failures != 2 || len(suites.Suites) != 1 || !strings.Contains(suites.Suites[0].Name, `<name> & "quotes"`) {
		t.Errorf("JUnit (exit %d): %+v\n%s", j.code, suites, j.out)
	}
}

func TestPolicyTestBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, test, want string }{
		{"unknown field", "apiVersion: podguard.dev/v1alpha1\nkind: PolicyTest\nresources: [pod.yaml]\nresult: []\n", `unknown field "result"`},
		{"unknown rule", "apiVersion: podguard.dev/v1alpha1\nkind: PolicyTest\nresources: [pod.yaml]\nresults: [{resource: Pod/p, rule: runAsUsr, result: pass}]\n", `results[0].rule: Unsupported value: "runAsUsr"`},
		{"unknown verdict", "apiVersion: podguard.dev/v1alpha1\nkind: PolicyTest\nresources: [pod.yaml]\nresults: [{resource: Pod/p, rule: runAsUser, result: denied}]\n", `results[0].result: Unsupported value: "denied"`},
		{"no expectations", "apiVersion: podguard.dev/v1alpha1\nkind: PolicyTest\nresources: [pod.yaml]\nresults: []\n", "checks nothing"},
		{"resource matching nothing", "apiVersion: podguard.dev/v1alpha1\nkind: PolicyTest\nresources: [pod.yaml]\nresults: [{resource: Pod/q, rule: runAsUser, result: deny}]\n", `"Pod/q" matches 0 objects`},
		{"missing policy", "apiVersion: podguard.dev/v1alpha1\nkind: PolicyTest\npolicy: nope.yaml\nresources: [pod.yaml]\nresults: [{resource: Pod/p, rule: runAsUser, result: deny}]\n", "nope.yaml"},
	} {
		dir := writeTest(t, tc.test, map[string]string{"pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: 'c:1'}]}\n"})
		r := podguard(t, "", "test", dir)
		if r.code != 2 || !strings.Contains(r.err, tc.want) || !strings.Contains(r.err, "podguard-test.yaml") {
			t.Errorf("%s: exit %d, want 2 naming the file and %q:\n%s", tc.name, r.code, tc.want, r.err)
		}
	}
}

// TestValidateJUnit: validate -o junit is XML a CI system reads, one
// testcase per judged object, failed exactly when the object is denied.
func TestValidateJUnit(t *testing.T) {
	r := podguard(t, "", "validate", "-o", "junit", "-f", "../../../../config/samples/workloads/")
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(r.out), &suites); err != nil {
		t.Fatalf("not XML: %v\n%s", err, r.out)
	}
	denied := map[string]bool{}
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			denied[c.Name] = c.Failure != nil
		}
	}
	want := map[string]bool{"Deployment api": false, "Deployment web": true, "Pod hello": true, "Pod node-shell": true}
	if r.code != 1 || suites.Tests != 4 || suites.Failures != 3 || fmt.Sprint(denied) != fmt.Sprint(want) {
		t.Errorf("exit %d, %d tests, %d failures, %v\n%s", r.code, suites.Tests, suites.Failures, denied, r.out)
	}
}
