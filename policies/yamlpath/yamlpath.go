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
	line, _ := PositionOf(node, path)
	return line
}

// PositionOf returns the line and column (1-based, within the node's
// document) of the field at path (its key, for a mapping entry: the field
// people read), or of its closest existing parent; 0, 0 when nothing of the
// path is found.
func PositionOf(node *yaml.Node, path string) (line, column int) {
	if node == nil {
		return 0, 0
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	line, column = node.Line, node.Column
	for _, seg := range splitPath(path) {
		next, key := child(node, seg)
		if next == nil {
			return line, column
		}
		node = next
		line, column = node.Line, node.Column
		if key != nil {
			line, column = key.Line, key.Column
		}
	}
	return line, column
}

// child returns the value at seg and, for a mapping entry, its key.
func child(n *yaml.Node, seg string) (value, key *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		if k, v := MapEntry(n, seg); k != nil {
			return v, k
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i], nil
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			return child(n.Alias, seg)
		}
	}
	return nil, nil
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
