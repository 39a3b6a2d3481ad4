package native

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"podguard.dev/podguard/policies/rules"
)

// A patch tree gathers the injections of every rule by the field they add,
// so that one JSON patch adds each missing subtree once, whole. Every
// operation is computed from the object as it arrives: they touch
// distinct fields, so their order does not matter. One mutation, not one
// per rule: kube-apiserver's cost per mutation (converting the object,
// applying the patch) dominates what the expressions cost.
type patchNode struct {
	children []*patchNode
	name     string
	// leaf, when set, is the injection that adds this field.
	leaf *leafInjection
}

type leafInjection struct {
	value, when string
	append      bool
}

func (n *patchNode) child(name string) *patchNode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	c := &patchNode{name: name}
	n.children = append(n.children, c)
	return c
}

func (n *patchNode) add(path []string, leaf *leafInjection) error {
	c := n.child(path[0])
	if len(path) == 1 {
		if c.leaf != nil || len(c.children) > 0 {
			return fmt.Errorf("two fixes inject %s", path[0])
		}
		c.leaf = leaf
		return nil
	}
	if c.leaf != nil {
		return fmt.Errorf("a fix injects inside %s, which another sets whole", path[0])
	}
	return c.add(path[1:], leaf)
}

// any is CEL for "something below n is added".
func (n *patchNode) any() string {
	if n.leaf != nil {
		return "(" + n.leaf.when + ")"
	}
	parts := make([]string, len(n.children))
	for i, c := range n.children {
		parts[i] = c.any()
	}
	return "(" + strings.Join(parts, " || ") + ")"
}

// whole is CEL for the value of n when its parent is absent: a map of what
// is added below it.
func (n *patchNode) whole() string {
	if n.leaf != nil {
		if n.leaf.append {
			return "[" + n.leaf.value + "]"
		}
		return n.leaf.value
	}
	entries := make([]string, len(n.children))
	for i, c := range n.children {
		entries[i] = fmt.Sprintf("?%s: %s ? optional.of(dyn(%s)) : optional.none()", strconv.Quote(c.name), c.any(), c.whole())
	}
	return "{" + strings.Join(entries, ", ") + "}"
}

// ops is CEL for the list of operations below n, at pointer at (a CEL
// string) where the object's current value is the optional cur.
func (n *patchNode) ops(at, cur string) string {
	parts := make([]string, len(n.children))
	for i, c := range n.children {
		p := at + " + " + strconv.Quote("/"+jsonPointerEscape(c.name))
		cc := cur + ".?" + c.name
		switch {
		case c.leaf != nil && c.leaf.append:
			parts[i] = fmt.Sprintf("(%s ? (%s.hasValue() ? [JSONPatch{op: 'add', path: %s + '/-', value: %s}] : [JSONPatch{op: 'add', path: %s, value: [%s]}]) : [])",
				c.any(), cc, p, c.leaf.value, p, c.leaf.value)
		case c.leaf != nil:
			parts[i] = fmt.Sprintf("((%s) && !%s.hasValue() ? [JSONPatch{op: 'add', path: %s, value: %s}] : [])", c.leaf.when, cc, p, c.leaf.value)
		default:
			parts[i] = fmt.Sprintf("(!%s.hasValue() ? (%s ? [JSONPatch{op: 'add', path: %s, value: %s}] : []) : %s)", cc, c.any(), p, c.whole(), c.ops(p, cc))
		}
	}
	return strings.Join(parts, " + ")
}

// needed is CEL for "ops below n, at cur, would add something".
func (n *patchNode) needed(cur string) string {
	parts := make([]string, len(n.children))
	for i, c := range n.children {
		cc := cur + ".?" + c.name
		switch {
		case c.leaf != nil && c.leaf.append:
			parts[i] = c.any()
		case c.leaf != nil:
			parts[i] = fmt.Sprintf("((%s) && !%s.hasValue())", c.leaf.when, cc)
		default:
			parts[i] = fmt.Sprintf("(!%s.hasValue() ? %s : %s)", cc, c.any(), c.needed(cc))
		}
	}
	return "(" + strings.Join(parts, " || ") + ")"
}

func jsonPointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// mutationExpression composes the injections of every rule with a fix in
// force into one JSON patch expression over a Pod, or "" when there are
// none, and the condition under which it adds anything.
func mutationExpression(injections map[string][]rules.Injection, order []string, ex []exportedExemption) (expr, needed string, err error) {
	pod, container := &patchNode{}, &patchNode{}
	for _, id := range order {
		for _, in := range injections[id] {
			when := in.When
			if when == "" {
				when = "true"
			}
			when = subst(when, id, ex)
			if hasLifted(id, ex) {
				when = fmt.Sprintf("!variables.%s && (%s)", liftedVar(id, ex), when)
			}
			root := pod
			if in.Container {
				root = container
			}
			if err := root.add(in.Path, &leafInjection{value: in.Value, when: when, append: in.Append}); err != nil {
				return "", "", fmt.Errorf("rule %s: %w", id, err)
			}
		}
	}
	var lists, conds []string
	if len(pod.children) > 0 {
		lists = append(lists, pod.ops("'/spec'", "optional.of(object.spec)"))
		conds = append(conds, pod.needed("optional.of(object.spec)"))
	}
	if len(container.children) > 0 {
		for _, list := range []string{"initContainers", "containers"} {
			lists = append(lists, fmt.Sprintf("object.spec.?%s.orValue([]).transformList(i, c, %s).flatten()", list,
				container.ops(fmt.Sprintf("'/spec/%s/' + string(i)", list), "optional.of(c)")))
			conds = append(conds, fmt.Sprintf("object.spec.?%s.orValue([]).exists(c, %s)", list, container.needed("optional.of(c)")))
		}
	}
	if len(lists) == 0 {
		return "", "", nil
	}
	return strings.Join(lists, " + "), strings.Join(conds, " || "), nil
}

var variableRE = regexp.MustCompile(`\bvariables\.(\w+)\b`)

// inline replaces variables by their expressions, for match conditions,
// which cannot refer to them.
func inline(expr string, vars []admissionregistrationv1.Variable) string {
	byName := map[string]string{}
	for _, v := range vars {
		byName[v.Name] = v.Expression
	}
	for range 8 {
		next := variableRE.ReplaceAllStringFunc(expr, func(m string) string {
			if e, ok := byName[m[len("variables."):]]; ok {
				return "(" + e + ")"
			}
			return m
		})
		if next == expr {
			break
		}
		expr = next
	}
	return expr
}
