package manifest

import (
	"encoding/json"
	"fmt"

	yaml "go.yaml.in/yaml/v3"

	"podguard.dev/podguard/policies/yamlpath"

	"podguard.dev/podguard/policies/change"
)

// Apply performs changes on the object's YAML tree: missing mappings and
// lists are created, injected keys are appended after the existing ones,
// and nothing that is set is touched. The document then renders changed.
func (o *Object) Apply(changes []change.Change) error {
	for _, c := range changes {
		if err := applyNode(o.node, c); err != nil {
			return fmt.Errorf("%s: %w", o.Source(), err)
		}
		o.Doc.changed = true
	}
	return nil
}

func applyNode(n *yaml.Node, c change.Change) error {
	for i, seg := range c.Path {
		last := i == len(c.Path)-1
		if n.Kind == yaml.AliasNode {
			return fmt.Errorf("%s: cannot inject through a YAML alias", c.Path)
		}
		if seg.Field == "" {
			if n.Kind != yaml.SequenceNode || seg.Index >= len(n.Content) {
				return fmt.Errorf("%s: no list element %d", c.Path, seg.Index)
			}
			if last && c.Op == change.Remove {
				n.Content = append(n.Content[:seg.Index], n.Content[seg.Index+1:]...)
				return nil
			}
			n = n.Content[seg.Index]
			continue
		}
		if isNull(n) {
			// "securityContext:" or "securityContext: null" holds nothing: make it a mapping.
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, HeadComment: n.HeadComment, LineComment: n.LineComment}
		}
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: %s is not a mapping", c.Path, c.Path[:i])
		}
		_, v := yamlpath.MapEntry(n, seg.Field)
		if last {
			value, err := valueNode(c.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Path, err)
			}
			switch {
			case c.Op == change.Pin:
				next, _ := c.Value.(string)
				if v == nil || v.Kind != yaml.ScalarNode {
					return fmt.Errorf("%s: no image reference to pin", c.Path)
				}
				if err := change.CheckPin(v.Value, next); err != nil {
					return fmt.Errorf("%s: %w", c.Path, err)
				}
				v.Value = next // style and comments kept
			case c.Op == change.Set && v != nil && !isNull(v):
				return fmt.Errorf("%s: refusing to overwrite a set value", c.Path)
			case c.Op == change.Set && v != nil:
				*v = *value
			case c.Op == change.Set:
				appendEntry(n, seg.Field, value)
			case v == nil:
				appendEntry(n, seg.Field, &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{value}})
			case isNull(v):
				*v = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{value}}
			case v.Kind == yaml.SequenceNode:
				v.Content = append(v.Content, value)
			default:
				return fmt.Errorf("%s: not a list", c.Path)
			}
			return nil
		}
		if v == nil {
			v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			appendEntry(n, seg.Field, v)
		}
		n = v
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || (n.Tag == "" && (n.Value == "" || n.Value == "null" || n.Value == "~")))
}

func appendEntry(m *yaml.Node, key string, v *yaml.Node) {
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	m.Content = append(m.Content, k, v)
}

// valueNode turns an API value into a block-style YAML node, via its JSON
// form so the field names and formats are the API's own.
func valueNode(v any) (*yaml.Node, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	n := doc.Content[0]
	plain(n)
	return n, nil
}

// plain drops the flow and quoting styles JSON parsing leaves behind; the
// encoder quotes again only the strings that need it.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}
