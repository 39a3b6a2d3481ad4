package load_test

import (
	"fmt"

	"podguard.dev/podguard/policies/api/load"
)

func ExampleBytes() {
	_, err := load.Bytes([]byte(`apiVersion: podguard.dev/v1alpha1
kind: Policy
rules:
  privileged:
    action: deny
exemptions:
- namespaces: [dev]
`), "policy.yaml", "")
	fmt.Println(err)
	// Output:
	// policy policy.yaml is invalid:
	//   line 5: rules.privileged.action: Unsupported value: "deny": supported values: "enforce", "warn", "audit", "off"
	//   line 7: exemptions[0].reason: Required value: say why the exemption exists; it is logged whenever it applies
}
