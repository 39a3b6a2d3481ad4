package defaults

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"strings"
	"text/template"

	yaml "go.yaml.in/yaml/v3"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
)

//go:embed default-policy.yaml.tmpl
var defaultPolicyTemplate string

// The template writes the namespace through yamlString: it comes from a
// flag or the environment and is data, never YAML text.
var defaultPolicy = template.Must(template.New("default-policy").Funcs(template.FuncMap{"yamlString": yamlString}).Parse(defaultPolicyTemplate))

// yamlString writes s as a YAML flow scalar that reads back as s: a JSON
// string, which YAML's double-quoted style reads the same way.
func yamlString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// PolicyYAML returns the default policy as a commented policy file: the
// rules section is written from the rule registry (each rule's comment,
// controls, defaults and parameters), so it cannot drift from it. A test
// decodes it and compares it with SetDefaults.
func PolicyYAML(ownNamespace string) []byte {
	if ownNamespace == "" {
		ownNamespace = v1alpha1.DefaultNamespace
	}
	p := &v1alpha1.Policy{}
	SetDefaults(p, ownNamespace)
	var out strings.Builder
	for _, d := range rules.Definitions() {
		doc := strings.TrimSpace(d.Doc) + "\nControls: " + d.Controls()
		for _, l := range strings.Split(doc, "\n") {
			out.WriteString(strings.TrimRight("  # "+l, " ") + "\n")
		}
		out.WriteString("  " + d.ID + ":\n")
		out.WriteString(indent(ruleYAML(p.Rules[d.ID]), "    "))
		if ex := strings.Trim(d.Example, "\n"); ex != "" {
			out.WriteString("    # For example:\n")
			for _, l := range strings.Split(ex, "\n") {
				out.WriteString(strings.TrimRight("    # "+l, " ") + "\n")
			}
		}
	}
	var b bytes.Buffer
	// The template and its data are fixed: execution cannot fail.
	_ = defaultPolicy.Execute(&b, struct {
		Namespace, Rules, ExceptionRules, MaxDuration string
	}{ownNamespace, strings.TrimRight(out.String(), "\n"), "[" + strings.Join(p.Exceptions.Rules, ", ") + "]", p.Exceptions.MaxDuration})
	return b.Bytes()
}

// ruleYAML writes a rule's entry in block style, with lists of scalars in
// flow style ([1000]) as people write them.
func ruleYAML(c *v1alpha1.RuleConfig) string {
	js, err := json.Marshal(c)
	if err != nil {
		panic(err) // rule parameters are plain data
	}
	var n yaml.Node
	if err := yaml.Unmarshal(js, &n); err != nil {
		panic(err)
	}
	// JSON object keys come back sorted from the map in MarshalJSON; put
	// action and mutate first.
	style(&n)
	m := n.Content[0]
	front := func(key string) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key && i > 0 {
				k, v := m.Content[i], m.Content[i+1]
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
				m.Content = append([]*yaml.Node{k, v}, m.Content...)
				return
			}
		}
	}
	front("mutate")
	front("action")
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		panic(err)
	}
	return b.String()
}

func style(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.SequenceNode {
		flow, width := true, 0
		for _, c := range n.Content {
			width += len(c.Value) + 2
			if c.Kind != yaml.ScalarNode {
				flow = false
			}
		}
		flow = flow && width < 60
		if flow {
			n.Style = yaml.FlowStyle
		}
	}
	for _, c := range n.Content {
		if c.Kind == yaml.ScalarNode {
			c.Style = 0
			if c.Tag == "!!str" && needsQuotes(c.Value) {
				c.Style = yaml.SingleQuotedStyle
			}
			continue
		}
		style(c)
	}
}

// needsQuotes keeps strings that YAML would read as something else, or
// that hold regular-expression syntax, quoted.
func needsQuotes(s string) bool {
	return strings.ContainsAny(s, "()[]{}?*|\\:#,'\"&!%@`") || s == "" || strings.TrimSpace(s) != s
}

func indent(s, by string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(by + l + "\n")
	}
	return b.String()
}
