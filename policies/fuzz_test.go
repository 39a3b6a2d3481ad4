package policies_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/change"
)

func addFixtureSeeds(f *testing.F) {
	files, _ := filepath.Glob("rules/testdata/*/*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			f.Fatal(err)
		}
		var p corev1.Pod
		if json.Unmarshal(js, &p) == nil && p.Kind == "Pod" {
			f.Add(js)
		}
	}
	f.Add([]byte(`{"spec":{"containers":[{"name":"a"}]}}`))
	f.Add([]byte(`{"spec":{"securityContext":null,"containers":[{"name":"a","securityContext":{"capabilities":{"drop":null}},"resources":{}}]}}`))
}

// FuzzValidateMutate: on any pod that decodes, Validate and Mutate do not
// panic, mutation is idempotent, never adds a violation, and its JSON patch
// applied to the original gives the mutated object.
func FuzzValidateMutate(f *testing.F) {
	addFixtureSeeds(f)
	e := enforcer(f, noExemptions)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p corev1.Pod
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		attrs := policies.Attributes{Namespace: "apps"}
		before, err := e.Validate(&p, attrs)
		if err != nil {
			t.Fatal(err)
		}
		original, _ := json.Marshal(&p)
		changes, err := e.Mutate(&p, attrs)
		if err != nil {
			t.Fatalf("mutate: %v", err)
		}
		after, _ := e.Validate(&p, attrs)
		for _, v := range after.Violations {
			if !slices.ContainsFunc(before.Violations, func(b policies.Finding) bool { return b.Rule == v.Rule && b.Field == v.Field }) {
				t.Errorf("mutation added a violation: %+v", v)
			}
		}
		if again, _ := e.Mutate(&p, attrs); len(again) > 0 {
			t.Errorf("mutation is not idempotent: %v", again)
		}
		if len(changes) == 0 {
			return
		}
		patch, err := change.JSONPatch(changes)
		if err != nil {
			t.Fatal(err)
		}
		dp, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			t.Fatalf("bad patch %s: %v", patch, err)
		}
		patched, err := dp.Apply(original)
		if err != nil {
			t.Fatalf("patch %s does not apply to %s: %v", patch, original, err)
		}
		var fromPatch corev1.Pod
		if err := json.Unmarshal(patched, &fromPatch); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(&fromPatch)
		b, _ := json.Marshal(&p)
		if string(a) != string(b) {
			t.Errorf("patch result differs from the mutated object\n patch %s\n typed %s", a, b)
		}
	})
}
