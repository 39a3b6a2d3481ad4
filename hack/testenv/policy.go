package testenv

import (
	"testing"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
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
