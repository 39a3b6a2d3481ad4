package change

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"podguard.dev/podguard/policies/podspec"
)

// JSONPatch renders applied changes as an RFC 6902 JSON patch against the
// object as it was before the changes. A change becomes an "add" at its
// leaf when its parents exist, or of the whole missing subtree at the first
// absent parent; a change below a subtree that an earlier operation of the
// same patch adds is merged into that operation's value. So a container
// without a securityContext gets one operation holding everything injected
// there, not one per field: the patch stays small and linear in the
// containers. Changes must have been applied, in order, with Apply; that is
// how their absent parents are known without a second decoding of the
// object. It writes the JSON itself, since it runs on the admission hot
// path and reflection-based marshalling dominated it.
func JSONPatch(changes []Change) ([]byte, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	var ops []*patchOp
	// created maps the JSON pointer of every subtree an operation adds
	// (and of every object and list inside it) to its node.
	created := map[string]*node{}
	for i := range changes {
		c := &changes[i]
		if !c.applied {
			return nil, fmt.Errorf("change %s was not applied", c)
		}
		if c.Op == Remove {
			ops = append(ops, &patchOp{op: "remove", path: c.Path.JSONPointer()})
			continue
		}
		if c.Op == Pin {
			// The field exists: "replace" (an "add" would too, but says less).
			ops = append(ops, &patchOp{op: "replace", path: c.Path.JSONPointer(), value: &node{leaf: c.Value}})
			continue
		}
		leaf := &node{leaf: c.Value}
		if c.missing >= len(c.Path) { // append to an existing list
			ptr := c.Path.JSONPointer()
			if n, ok := created[ptr]; ok && n.list {
				n.items = append(n.items, leaf)
				continue
			}
			ops = append(ops, &patchOp{op: "add", path: ptr + "/-", value: leaf})
			continue
		}
		// The deepest prefix that this patch adds already, if any.
		base, at := (*node)(nil), 0
		for k := c.missing + 1; k > 0; k-- {
			if n, ok := created[c.Path[:k].JSONPointer()]; ok {
				base, at = n, k
				break
			}
		}
		value := leaf
		if c.Op == Append {
			value = &node{list: true, items: []*node{leaf}}
		}
		if base == nil {
			root := c.Path[:c.missing+1]
			top := value
			for j := len(c.Path) - 1; j > c.missing; j-- {
				top = &node{keys: []string{c.Path[j].Field}, fields: map[string]*node{c.Path[j].Field: top}}
			}
			ops = append(ops, &patchOp{op: "add", path: root.JSONPointer(), value: top})
			index(created, root, top)
			continue
		}
		// Walk down the added subtree, creating objects, and set the leaf.
		n := base
		for j := at; j < len(c.Path)-1; j++ {
			seg := c.Path[j]
			if seg.Field == "" {
				if !n.list || seg.Index >= len(n.items) {
					return nil, fmt.Errorf("change %s: no list element %d in the added subtree", c, seg.Index)
				}
				n = n.items[seg.Index]
				continue
			}
			next, ok := n.fields[seg.Field]
			if !ok {
				next = &node{fields: map[string]*node{}}
				n.set(seg.Field, next)
				created[c.Path[:j+1].JSONPointer()] = next
			}
			n = next
		}
		last := c.Path[len(c.Path)-1].Field
		if existing, ok := n.fields[last]; ok && existing.list && c.Op == Append {
			existing.items = append(existing.items, leaf)
			continue
		}
		n.set(last, value)
		index(created, c.Path, value)
	}
	b := bytes.NewBuffer(make([]byte, 0, 128*len(ops)))
	b.WriteByte('[')
	for i, op := range ops {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"op":"` + op.op + `","path":`)
		writeString(b, op.path)
		if op.value != nil {
			b.WriteString(`,"value":`)
			if err := op.value.write(b); err != nil {
				return nil, err
			}
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// patchOp is one operation ("add" with its value as a tree, or "remove").
type patchOp struct {
	op    string
	path  string
	value *node
}

// node is a JSON value being built: an object (keys in order), a list, or
// a leaf Go value.
type node struct {
	keys   []string
	fields map[string]*node
	list   bool
	items  []*node
	leaf   any
}

func (n *node) set(key string, v *node) {
	if n.fields == nil {
		n.fields = map[string]*node{}
	}
	if _, ok := n.fields[key]; !ok {
		n.keys = append(n.keys, key)
	}
	n.fields[key] = v
}

// index records the pointers of an added value and of the objects and lists
// inside it, so later changes below them merge in.
func index(created map[string]*node, at podspec.Path, n *node) {
	if n.fields == nil && !n.list {
		return
	}
	created[at.JSONPointer()] = n
	for _, k := range n.keys {
		index(created, at.Child(k), n.fields[k])
	}
}

func (n *node) write(b *bytes.Buffer) error {
	switch {
	case n.list:
		b.WriteByte('[')
		for i, it := range n.items {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := it.write(b); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case n.fields != nil:
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := n.fields[k].write(b); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return writeValue(b, n.leaf)
	}
	return nil
}

func writeValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		writeString(b, x)
	case corev1.Capability:
		writeString(b, string(x))
	case corev1.PodFSGroupChangePolicy:
		writeString(b, string(x))
	case resource.Quantity:
		writeString(b, x.String())
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(raw)
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			raw, _ := json.Marshal(s)
			b.Write(raw)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
