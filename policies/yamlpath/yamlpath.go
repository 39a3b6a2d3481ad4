// Package yamlpath finds values in a YAML tree by the field paths podguard
// reports (spec.containers[0].securityContext), so errors and findings can
// name the line they are on.
package yamlpath

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// LineOf returns the line (1-based, within the node's document) of the value
// at a field path such as "spec.containers[0].securityContext" or
// "rules.resources.defaultLimits[cpu]", or of its closest existing parent.
// It returns 0 when nothing of the path is found.
func LineOf(node *yaml.Node, path string) int {
	if node == nil {
		return 0
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	line := node.Line
	for _, seg := range splitPath(path) {
		next := child(node, seg)
		if next == nil {
			return line
		}
		node = next
		line = node.Line
	}
	return line
}

func child(n *yaml.Node, seg string) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		if k, v := MapEntry(n, seg); k != nil {
			// Point at the key's line: that is the field people read.
			if v.Kind == yaml.ScalarNode || v.Line == k.Line {
				return v
			}
			c := *v
			c.Line = k.Line
			return &c
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i]
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			return child(n.Alias, seg)
		}
	}
	return nil
}

// MapEntry returns the key and value nodes of a mapping entry, or nils.
func MapEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// splitPath turns "a.b[0].c[key]" into ["a" "b" "0" "c" "key"].
func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				out = append(out, part)
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part[i:], ']')
			if j < 0 {
				out = append(out, part[i+1:])
				break
			}
			out = append(out, part[i+1:i+j])
			part = part[i+j+1:]
		}
	}
	return out
}
