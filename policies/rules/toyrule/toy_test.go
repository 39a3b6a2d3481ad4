// Package toyrule_test proves CONTRIBUTING.md's claim that a rule is one
// file and one fixture folder: a rule defined here alone, with a
// parameter, a fix and a CEL form, registers, is in the printed default
// policy, validates its parameter, runs its fixtures through the harness
// every rule runs through, exports, and is in the README's rules table,
// with no other file of podguard touched. It is its own test binary, so
// the extra rule is seen by no other test.
package toyrule_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/hack/testenv/fixtures"
	"podguard.dev/podguard/policies/api/defaults"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/native"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/rules"
)

// The toy rule: containers set terminationMessagePolicy to the policy's
// value (default FallbackToLogsOnError); the fix sets it where unset.
// Everything below is what a rule file holds.

const toyID = "toyTerminationMessage"

func init() {
	rules.Register(rules.Definition{
		ID: toyID, Order: 900, Action: v1alpha1.ActionWarn, Mutate: true,
		Checklist: rules.ChecklistItem{ID: "toyDiagnostics", Title: "Crash messages reach kubectl describe", Order: 900},
		Reads:     podspec.Fields{"*containers.terminationMessagePolicy"},
		Doc:       "Containers set terminationMessagePolicy (default FallbackToLogsOnError), so a crash's last log lines reach kubectl describe.",
		Params:    func() v1alpha1.RuleParams { return &toyParams{} },
		New:       newToy,
		Native:    nativeToy,
	})
}

type toyParams struct {
	// Policy is the terminationMessagePolicy containers must set.
	Policy corev1.TerminationMessagePolicy `json:"policy,omitempty"`
}

func (p *toyParams) Default() {
	if p.Policy == "" {
		p.Policy = corev1.TerminationMessageFallbackToLogsOnError
	}
}

func (p *toyParams) Validate(path *field.Path) field.ErrorList {
	valid := []string{string(corev1.TerminationMessageReadFile), string(corev1.TerminationMessageFallbackToLogsOnError)}
	if !slices.Contains(valid, string(p.Policy)) {
		return field.ErrorList{field.NotSupported(path.Child("policy"), p.Policy, valid)}
	}
	return nil
}

func newToy(p *v1alpha1.Policy) rules.Rule {
	want := p.Rules[toyID].Params.(*toyParams).Policy
	return rules.Rule{
		ID:      toyID,
		Summary: fmt.Sprintf("containers set terminationMessagePolicy: %s", want),
		Check: func(t *podspec.Target) []rules.Finding {
			var out []rules.Finding
			for _, c := range t.Containers {
				if c.TerminationMessagePolicy != want {
					p := c.Path().Child("terminationMessagePolicy")
					out = append(out, rules.Finding{Type: field.ErrorTypeRequired, Field: p.String(),
						Message: fmt.Sprintf("container %q does not set terminationMessagePolicy: %s", c.Name, want),
						Fix:     fmt.Sprintf("set %s: %s", p, want)})
				}
			}
			return out
		},
		Fix: func(t *podspec.Target) []change.Change {
			var out []change.Change
			for _, c := range t.Containers {
				if c.TerminationMessagePolicy == "" {
					out = append(out, change.Change{Op: change.Set, Path: c.Path().Child("terminationMessagePolicy"), Value: want})
				}
			}
			return out
		},
	}
}

func nativeToy(p *v1alpha1.Policy, mode rules.NativeMode) rules.Native {
	want := string(p.Rules[toyID].Params.(*toyParams).Policy)
	n := rules.Native{
		Container:        fmt.Sprintf("c.?terminationMessagePolicy.orValue('') == %q", want),
		ContainerMessage: fmt.Sprintf("%q", "do not set terminationMessagePolicy: "+want),
	}
	if rules.FixInForce(p, toyID) {
		n.Inject = []rules.Injection{{Container: true, Path: []string{"terminationMessagePolicy"}, Value: fmt.Sprintf("%q", want)}}
	}
	return n
}

// compliant is a pod every real rule passes; {{tmp}} is replaced by the
// toy's field.
const compliant = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
  automountServiceAccountToken: false
  containers:
  - name: app
    image: registry.example/app:1.0
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    resources: {limits: {cpu: 500m, memory: 512Mi}, requests: {cpu: 100m, memory: 128Mi}}
    livenessProbe: {httpGet: {path: /healthz, port: 8080}}
    readinessProbe: {httpGet: {path: /readyz, port: 8080}}
%s`

func TestToyRuleIsOneFile(t *testing.T) {
	d, ok := rules.Lookup(toyID)
	if !ok || !d.Fixable() {
		t.Fatalf("the toy rule is not registered as fixable: %v", ok)
	}

	// The printed default policy names it, with its parameter, and reads back.
	printed := string(defaults.PolicyYAML(""))
	if !strings.Contains(printed, "  "+toyID+":\n") || !strings.Contains(printed, "policy: FallbackToLogsOnError") || !strings.Contains(printed, "so a crash's last log lines") {
		t.Errorf("policy default does not show the toy rule:\n%s", printed)
	}
	if _, err := load.Bytes([]byte(printed), "default", ""); err != nil {
		t.Errorf("the printed default policy does not load: %v", err)
	}
	// Its parameter is validated, and named in the error.
	bad := "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  " + toyID + ":\n    policy: Sometimes\n"
	if _, err := load.Bytes([]byte(bad), "bad.yaml", ""); err == nil || !strings.Contains(err.Error(), "rules."+toyID+".policy") {
		t.Errorf("a bad parameter: %v", err)
	}

	// Its fixtures run through the same harness as every rule's.
	dir := filepath.Join(t.TempDir(), toyID)
	write := func(kind, name, extra, wants string) {
		p := filepath.Join(dir, kind, name+".yaml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(wants+fmt.Sprintf(compliant, name, extra)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("pass", "set", "    terminationMessagePolicy: FallbackToLogsOnError\n", "")
	write("fail", "other", "    terminationMessagePolicy: File\n", "# want: Required spec.containers[0].terminationMessagePolicy\n")
	write("fix", "unset", "", "")
	sets, err := fixtures.Find(filepath.Dir(dir))
	if err != nil || len(sets) != 1 {
		t.Fatalf("fixture sets: %v %v", sets, err)
	}
	fixtures.Check(t, sets[0], true) // writes the fix case's golden file
	fixtures.Check(t, sets[0], false)
	golden, _ := os.ReadFile(filepath.Join(dir, "fix", "unset.golden"))
	if !strings.Contains(string(golden), "spec.containers[0].terminationMessagePolicy: FallbackToLogsOnError") {
		t.Errorf("the fix's golden file:\n%s", golden)
	}

	// It exports: its CEL in the enforced policies, its fix in the mutating one.
	e, err := native.Build(load.Default(""), native.Options{})
	if err != nil {
		t.Fatal(err)
	}
	y, err := e.YAML()
	if err != nil {
		t.Fatal(err)
	}
	mutating := string(y[strings.Index(string(y), "kind: MutatingAdmissionPolicy\n"):])
	if !strings.Contains(string(y), `c.?terminationMessagePolicy.orValue('') == "FallbackToLogsOnError"`) || !strings.Contains(mutating, "terminationMessagePolicy") {
		t.Errorf("the export lacks the toy rule's CEL or fix:\n%s", y)
	}

	// It is in the README's table of rules.
	if !strings.Contains(rules.MarkdownTable(), "| `"+toyID+"` | warn, mutate true |") {
		t.Errorf("the rules table lacks the toy rule:\n%s", rules.MarkdownTable())
	}
}
