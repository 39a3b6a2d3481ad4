package schema_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/schema"
	"podguard.dev/podguard/policies/rules"
)

func validate(t *testing.T, s []byte, doc any) []string {
	t.Helper()
	res, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(s), gojsonschema.NewGoLoader(doc))
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, e := range res.Errors() {
		errs = append(errs, e.String())
	}
	return errs
}

func TestSchemaAcceptsWhatPodguardAccepts(t *testing.T) {
	s, err := schema.JSON(true)
	if err != nil {
		t.Fatal(err)
	}
	// The default policy, in its defaulted form (every rule, every parameter).
	b, err := json.Marshal(load.Default(""))
	if err != nil {
		t.Fatal(err)
	}
	var def map[string]any
	if err := json.Unmarshal(b, &def); err != nil {
		t.Fatal(err)
	}
	if errs := validate(t, s, def); len(errs) > 0 {
		t.Errorf("the default policy breaks the schema: %v", errs)
	}
	// Every sample policy, and every policy the rule fixtures run under.
	files, _ := filepath.Glob("../../../config/samples/policies/*.yaml")
	more, _ := filepath.Glob("../../rules/testdata/*/*/policy.yaml")
	files = append(files, more...)
	if len(files) < 2 {
		t.Fatalf("found %d sample policies", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := load.File(f, ""); err != nil {
			continue // a fixture of a refused policy
		}
		var doc map[string]any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if errs := validate(t, s, doc); len(errs) > 0 {
			t.Errorf("%s: podguard accepts it, the schema refuses it: %v", f, errs)
		}
	}
}

func TestSchemaRefusesShapesPodguardRefuses(t *testing.T) {
	s, err := schema.JSON(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, policy, want string }{
		{"misspelled rule", "rules: {runAsUsr: {action: warn}}", "runAsUsr"},
		{"wrong action word", "rules: {privileged: {action: deny}}", "action"},
		{"wrong mode", "mode: block", "mode"},
		{"unknown setting", "rules: {privileged: {actoin: warn}}", "actoin"},
		{"mutate on a rule without a fix", "rules: {hostNamespaces: {mutate: true}}", "mutate"},
		{"parameter of another rule", "rules: {privileged: {allowedUIDs: [1000]}}", "allowedUIDs"},
		{"ID that is not a number or range", "rules: {runAsUser: {allowedUIDs: [\"1000-65535\"]}}", "allowedUIDs"},
		{"range without max", "rules: {runAsUser: {allowedUIDs: [{min: 10}]}}", "max"},
		{"exemption of an unknown rule", "exemptions: [{reason: r, rules: [runAsUsr]}]", "rules"},
		{"exemption without reason", "exemptions: [{namespaces: [a]}]", "reason"},
		{"unknown top-level field", "exemption: []", "exemption"},
		{"wrong apiVersion", "apiVersion: podguard.dev/v1", "apiVersion"},
	} {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(tc.policy), &doc); err != nil {
			t.Fatal(err)
		}
		if _, err := load.Bytes([]byte("apiVersion: podguard.dev/v1alpha1\nkind: Policy\n"+tc.policy), "values.policy", ""); err == nil && tc.name != "wrong apiVersion" {
			t.Errorf("%s: podguard itself accepts %q: the case is wrong", tc.name, tc.policy)
		}
		errs := validate(t, s, doc)
		if len(errs) == 0 {
			t.Errorf("%s: the schema accepts %q", tc.name, tc.policy)
		} else if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
			t.Errorf("%s: the schema's refusal does not name %q: %v", tc.name, tc.want, errs)
		}
	}
}

func TestSchemaHasEveryRule(t *testing.T) {
	p, err := schema.Policy(false)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := p.Properties.Get("rules")
	for _, d := range rules.Definitions() {
		if _, ok := rs.Properties.Get(d.ID); !ok {
			t.Errorf("rule %s is not in the schema", d.ID)
		}
	}
}
