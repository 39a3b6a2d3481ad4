package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// Changed reports whether a change was applied to the document.
func (d *Document) Changed() bool { return d.changed }

// Render returns the document's bytes: the original bytes when nothing was
// changed (or it could not be parsed), else the changed tree, as JSON for
// JSON input and as YAML, in the original's sequence indentation, otherwise.
func (d *Document) Render() ([]byte, error) {
	if !d.changed || d.Node == nil {
		return d.Raw, nil
	}
	if d.JSON {
		return renderJSON(d.Node, d.Raw)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if kyaml.DeriveSeqIndentStyle(string(d.Raw)) == string(kyaml.CompactSequenceStyle) {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(d.Node); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name(), err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name(), err)
	}
	return b.Bytes(), nil
}

// renderJSON writes a YAML tree parsed from JSON back as JSON, keeping key
// order (a Go map would sort it) and the original's indentation width.
func renderJSON(n *yaml.Node, raw []byte) ([]byte, error) {
	indent := "  "
	for _, l := range strings.Split(string(raw), "\n")[1:] {
		if t := strings.TrimLeft(l, " \t"); t != "" && len(t) < len(l) {
			indent = l[:len(l)-len(t)]
			break
		}
	}
	var b bytes.Buffer
	if err := writeJSON(&b, n, indent, 0); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, n *yaml.Node, indent string, depth int) error {
	nl := func(d int) {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat(indent, d))
	}
	switch n.Kind {
	case yaml.DocumentNode:
		return writeJSON(b, n.Content[0], indent, depth)
	case yaml.AliasNode:
		return writeJSON(b, n.Alias, indent, depth)
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			k, _ := json.Marshal(n.Content[i].Value)
			b.Write(k)
			b.WriteString(": ")
			if err := writeJSON(b, n.Content[i+1], indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte('}')
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			if err := writeJSON(b, c, indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			b.WriteString("null")
		case "!!bool", "!!int", "!!float":
			if _, err := strconv.ParseFloat(n.Value, 64); err == nil || n.ShortTag() == "!!bool" {
				b.WriteString(strings.ToLower(n.Value))
				return nil
			}
			v, _ := json.Marshal(n.Value)
			b.Write(v)
		default:
			v, _ := json.Marshal(n.Value)
			b.Write(v)
		}
	default:
		return fmt.Errorf("cannot write YAML node kind %d as JSON", n.Kind)
	}
	return nil
}
