package testenv

import (
	"testing"

	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/rules"
)

// Enforcer builds the enforcer of a policy file's content written in a test
// (defaulted and validated as the webhook loads it, in namespace podguard),
// failing the test if it does not load.
func Enforcer(t testing.TB, policy string) *policies.Enforcer {
	t.Helper()
	p, err := load.Bytes([]byte(policy), "test-policy", "podguard")
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ImageSignaturesPolicy is the content of a policy file whose
// imageSignatures rule has these parameters, the rest defaulted.
func ImageSignaturesPolicy(t testing.TB, ps rules.ImageSignaturesParams) string {
	t.Helper()
	b, err := yaml.Marshal(map[string]any{"apiVersion": "podguard.dev/v1alpha1", "kind": "Policy", "rules": map[string]any{"imageSignatures": ps}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
