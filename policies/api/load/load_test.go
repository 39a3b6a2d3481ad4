package load_test

import (
	"podguard.dev/podguard/policies/api/defaults"
	"reflect"
	"strings"
	"testing"

	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
)

func TestEmptyIsDefault(t *testing.T) {
	want := load.Default("podguard")
	for name, in := range map[string]string{"empty": "", "blank": "\n\n", "comments": "# nothing\n", "null": "null\n", "doc marker": "---\n"} {
		got, err := load.Bytes([]byte(in), name, "podguard")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: not the default policy", name)
		}
	}
}

// TestPrintedDefaultIsDefault pins `podguard policy default` to SetDefaults.
func TestPrintedDefaultIsDefault(t *testing.T) {
	for _, ns := range []string{"podguard", "security"} {
		got, err := load.Bytes(defaults.PolicyYAML(ns), "default", ns)
		if err != nil {
			t.Fatal(err)
		}
		if want := load.Default(ns); !reflect.DeepEqual(got, want) {
			t.Errorf("printed default policy for %s decodes to\n%+v\nwant\n%+v", ns, got, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	p := load.Default("")
	uids := p.Rules["runAsUser"].Params.(*rules.RunAsUserParams).AllowedUIDs
	gids := p.Rules["runAsGroup"].Params.(*rules.RunAsGroupParams).AllowedGIDs
	if uids[0] != v1alpha1.ID(1000) || gids[0] != v1alpha1.ID(1000) || len(uids) != 1 || len(gids) != 1 {
		t.Errorf("default UID/GID: %v %v", uids, gids)
	}
	if got := p.Rules["readOnlyRootFilesystem"]; got.Action != v1alpha1.ActionWarn || v1alpha1.Bool(got.Mutate) {
		t.Errorf("readOnlyRootFilesystem defaults: %+v", got)
	}
	if len(p.Exemptions) != 2 || p.Exemptions[1].Namespaces[0] != "podguard" {
		t.Errorf("default exemptions: %+v", p.Exemptions)
	}
	none, err := load.Bytes([]byte("apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions: []\n"), "x", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(none.Exemptions) != 0 {
		t.Errorf("exemptions: [] must replace the defaults, got %+v", none.Exemptions)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"unknown field", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  runAsUser:\n    allowedUID: [1000]\n",
			[]string{"line 5", `unknown field "rules.runAsUser.allowedUID"`}},
		{"unknown rule", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  noSuchRule: {}\n",
			[]string{"line 4", `unknown field "rules.noSuchRule"`}},
		{"duplicate field", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: warn\nmode: audit\n",
			[]string{"line 4", "mode"}},
		{"wrong type", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  runAsUser:\n    allowedUIDs: one\n",
			[]string{"rules.runAsUser.allowedUIDs"}},
		{"missing kind", "apiVersion: podguard.dev/v1alpha1\nmode: warn\n", []string{"kind", "Required"}},
		{"wrong kind", "apiVersion: podguard.dev/v1alpha1\nkind: Other\n", []string{"line 2", "kind", "Unsupported value"}},
		{"bad action", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  privileged:\n    action: deny\n",
			[]string{"line 5", "rules.privileged.action", `"deny"`}},
		{"mutate without fix", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  privileged:\n    mutate: true\n",
			[]string{"rules.privileged.mutate", "no fix"}},
		{"root uid", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  runAsUser:\n    allowedUIDs: [1000, 0]\n",
			[]string{"rules.runAsUser.allowedUIDs[1]", "root"}},
		{"exemption without reason", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions:\n- namespaces: [dev]\n",
			[]string{"line 4", "exemptions[0].reason", "Required"}},
		{"exemption bad expiry", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions:\n- reason: r\n  namespaces: [dev]\n  expires: next week\n",
			[]string{"line 6", "exemptions[0].expires"}},
		{"exemption unknown rule", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions:\n- reason: r\n  namespaces: [dev]\n  rules: [runAsRoot]\n",
			[]string{"exemptions[0].rules[0]", "runAsRoot"}},
		{"request above limit", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  resources:\n    defaultRequests: {cpu: '2'}\n",
			[]string{"rules.resources.defaultRequests[cpu]", "must not exceed"}},
		{"bad regexp", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  secretsInEnv:\n    namePatterns: ['(']\n",
			[]string{"rules.secretsInEnv.namePatterns[0]"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping"}},
		{"two documents", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\n---\nkind: Policy\n", []string{"one document"}},
		{"malformed", "apiVersion: [\n", []string{"policy.yaml"}},
		{"bad quantity", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  resources:\n    defaultLimits: {cpu: lots}\n",
			[]string{"line 5", "rules.resources.defaultLimits[cpu]", "quantities must match"}},
		{"action of the wrong type", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  privileged:\n    action: [warn]\n",
			[]string{"line 5", "rules.privileged.action", "an action is one of"}},
		{"help URL not http", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nhelpURL: javascript:alert(1)\n",
			[]string{"line 3", "helpURL", "absolute http or https"}},
		{"help URL with a line break", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nhelpURL: \"https://a.example/\\n---\"\n",
			[]string{"helpURL", "printable ASCII"}},
		{"help URL too long", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nhelpURL: https://a.example/" + strings.Repeat("x", 100) + "\n",
			[]string{"helpURL", "100"}},
		{"duplicate key", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  privileged: {}\n  privileged: {}\n",
			[]string{"line 5", "already defined at line 4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load.Bytes([]byte(c.in), "policy.yaml", "")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "policy.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestEveryErrorReported: a decoding error used to hide the others.
func TestEveryErrorReported(t *testing.T) {
	in := `apiVersion: podguard.dev/v1alpha1
kind: Policy
mode: sometimes
rules:
  privileged:
    action: [warn]
  resources:
    defaultLimits: {cpu: lots}
  runAsUser:
    allowedUIDs: [0]
    allowedUid: [5]
exemptions:
- namespaces: [dev]
`
	_, err := load.Bytes([]byte(in), "p.yaml", "")
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{"line 3: mode", "line 6: rules.privileged.action", "line 8: rules.resources.defaultLimits[cpu]", "line 8: rules.resources.defaultLimits[memory]: Required",
		"line 10: rules.runAsUser.allowedUIDs[0]", `line 11: unknown field "rules.runAsUser.allowedUid"`, "line 13: exemptions[0].reason"}
	lines := strings.Split(err.Error(), "\n")[1:]
	if len(lines) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if i < len(lines) && !strings.Contains(lines[i], w) {
			t.Errorf("problem %d: %q, want %q", i, lines[i], w)
		}
	}
}
