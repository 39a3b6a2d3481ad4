package v1alpha1

import (
	"bytes"
	_ "embed"
	"text/template"
)

//go:embed default-policy.yaml.tmpl
var defaultPolicyTemplate string

var defaultPolicy = template.Must(template.New("default-policy").Parse(defaultPolicyTemplate))

// DefaultPolicyYAML returns the default policy as a commented policy file.
// A test decodes it and compares it with SetDefaults, so the two cannot drift.
func DefaultPolicyYAML(ownNamespace string) []byte {
	if ownNamespace == "" {
		ownNamespace = DefaultNamespace
	}
	var b bytes.Buffer
	// The template and its data are fixed: execution cannot fail.
	_ = defaultPolicy.Execute(&b, struct {
		Namespace      string
		SecretPatterns []string
	}{ownNamespace, DefaultSecretNamePatterns})
	return b.Bytes()
}
