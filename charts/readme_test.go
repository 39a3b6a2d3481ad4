package charts

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml3 "go.yaml.in/yaml/v3"
)

var updateReadme = flag.Bool("update-readme", false, "regenerate podguard/README.md from values.yaml's comments")

// valueDoc is one documented value: its dotted path, default and comment.
type valueDoc struct {
	path, def, doc string
}

// valueDocs walks values.yaml and returns every value, in file order,
// with the comment above it; a "# --" comment (the helm-docs convention)
// documents the value, other comments are notes for the file's reader.
// A mapping is listed by its leaves unless it is empty or commented.
func valueDocs(data []byte) ([]valueDoc, error) {
	var root yaml3.Node
	if err := yaml3.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml3.MappingNode {
		return nil, fmt.Errorf("values.yaml is not a mapping")
	}
	var out []valueDoc
	var walk func(prefix string, m *yaml3.Node)
	walk = func(prefix string, m *yaml3.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			path := prefix + k.Value
			doc := ""
			if c := strings.TrimSpace(k.HeadComment); c != "" {
				lines := strings.Split(c, "\n")
				// The documenting comment is the last block above the key.
				start := len(lines) - 1
				for start > 0 && strings.HasPrefix(lines[start], "#") && !strings.HasPrefix(lines[start], "# --") {
					start--
				}
				if strings.HasPrefix(lines[start], "# --") {
					var words []string
					for _, l := range lines[start:] {
						words = append(words, strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(l, "#"), " --"), " ")))
					}
					doc = strings.TrimSpace(strings.Join(words, " "))
				}
			}
			if v.Kind == yaml3.MappingNode && len(v.Content) > 0 && doc == "" {
				walk(path+".", v)
				continue
			}
			def, err := yaml3.Marshal(v)
			if err != nil {
				def = []byte("?")
			}
			out = append(out, valueDoc{path: path, def: strings.TrimSpace(string(def)), doc: doc})
			if v.Kind == yaml3.MappingNode && len(v.Content) > 0 && doc != "" {
				// A documented mapping is listed whole and by its documented leaves.
				for j := 0; j+1 < len(v.Content); j += 2 {
					if strings.Contains(v.Content[j].HeadComment, "# --") {
						walk(path+".", &yaml3.Node{Kind: yaml3.MappingNode, Content: v.Content[j : j+2]})
					}
				}
			}
		}
	}
	walk("", root.Content[0])
	return out, nil
}

// cell makes text safe in a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", "<br>")
}

func chartReadme(t *testing.T) string {
	t.Helper()
	values, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := valueDocs(values)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString(`# podguard Helm chart

<!-- Generated from values.yaml's comments by go test ./charts -update-readme; do not edit. -->

Least privilege for every pod: podguard's admission webhook, its background
audit and, optionally, the default policy as native admission policies. The
project's README (installation, the policy, exceptions, operations) is the
guide; this page lists the chart's values.

    helm install podguard charts/podguard -n podguard --create-namespace

Before an install or upgrade changes anything, the ` + "`policyCheck`" + ` hook runs
` + "`podguard policy check`" + ` on ` + "`values.policy`" + `, and values.schema.json refuses an
unknown rule, field or action word: a broken policy fails the install instead
of blocking pod creation.

## Values

| Key | Default | Description |
|-----|---------|-------------|
`)
	for _, d := range docs {
		def := d.def
		if strings.Contains(def, "\n") {
			def = "(see values.yaml)"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", cell(d.path), cell(def), cell(d.doc))
	}
	return b.String()
}

// TestChartReadmeInSync keeps the chart's README equal to what values.yaml's
// comments say, and makes every top-level value documented.
func TestChartReadmeInSync(t *testing.T) {
	want := chartReadme(t)
	path := filepath.Join(chart, "README.md")
	if *updateReadme {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s is stale (go test ./charts -update-readme regenerates it): %v", path, err)
	}
	values, _ := os.ReadFile(filepath.Join(chart, "values.yaml"))
	docs, _ := valueDocs(values)
	documented := map[string]bool{}
	for _, d := range docs {
		if d.doc != "" {
			documented[strings.SplitN(d.path, ".", 2)[0]] = true
		}
	}
	var root map[string]any
	if err := yaml3.Unmarshal(values, &root); err != nil {
		t.Fatal(err)
	}
	for k := range root {
		if !documented[k] {
			t.Errorf("values.yaml: %s and everything under it has no \"# --\" comment", k)
		}
	}
}
