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
	// bare is when without the rule's request-level exemption test, for
	// a condition that tests it once for every injection.
	bare   string
	append bool
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
func (n *patchNode) any() string { return n.anyOf(false) }

// anyOf is any, with the leaves' bare conditions when bare is set.
func (n *patchNode) anyOf(bare bool) string {
	if n.leaf != nil {
		if bare {
			return "(" + n.leaf.bare + ")"
		}
		return "(" + n.leaf.when + ")"
	}
	parts := make([]string, len(n.children))
	for i, c := range n.children {
		parts[i] = c.anyOf(bare)
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

// needed is CEL for "ops below n, at cur, would add something", with the
// leaves' bare conditions when bare is set.
func (n *patchNode) needed(cur string, bare bool) string {
	parts := make([]string, len(n.children))
	for i, c := range n.children {
		cc := cur + ".?" + c.name
		switch {
		case c.leaf != nil && c.leaf.append:
			parts[i] = c.anyOf(bare)
		case c.leaf != nil:
			when := c.leaf.when
			if bare {
				when = c.leaf.bare
			}
			parts[i] = fmt.Sprintf("((%s) && !%s.hasValue())", when, cc)
		default:
			parts[i] = fmt.Sprintf("(!%s.hasValue() ? %s : %s)", cc, c.anyOf(bare), c.needed(cc, bare))
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
	// The request-level exemptions of every rule with a fix: when they
	// are the same (the default policy's cover every rule), the condition
	// tests them once instead of once per injected field.
	lifted := map[string]bool{}
	for _, id := range order {
		for _, in := range injections[id] {
			when := in.When
			if when == "" {
				when = "true"
			}
			bare := subst(when, id, ex)
			when = bare
			if hasLifted(id, ex) {
				lifted[liftedVar(id, ex)] = true
				when = fmt.Sprintf("!variables.%s && (%s)", liftedVar(id, ex), bare)
			} else {
				lifted[""] = true
			}
			root := pod
			if in.Container {
				root = container
			}
			if err := root.add(in.Path, &leafInjection{value: subst(in.Value, id, ex), when: when, bare: bare, append: in.Append}); err != nil {
				return "", "", fmt.Errorf("rule %s: %w", id, err)
			}
		}
	}
	hoisted := ""
	if len(lifted) == 1 {
		for v := range lifted {
			hoisted = v
		}
	}
	bare := hoisted != ""
	var lists, conds []string
	if len(pod.children) > 0 {
		lists = append(lists, pod.ops("'/spec'", "optional.of(object.spec)"))
		conds = append(conds, pod.needed("optional.of(object.spec)", bare))
	}
	if len(container.children) > 0 {
		for _, list := range []string{"initContainers", "containers"} {
			lists = append(lists, fmt.Sprintf("object.spec.?%s.orValue([]).transformList(i, c, %s).flatten()", list,
				container.ops(fmt.Sprintf("'/spec/%s/' + string(i)", list), "optional.of(c)")))
			conds = append(conds, fmt.Sprintf("object.spec.?%s.orValue([]).exists(c, %s)", list, container.needed("optional.of(c)", bare)))
		}
	}
	if len(lists) == 0 {
		return "", "", nil
	}
	needed = strings.Join(conds, " || ")
	if bare {
		needed = fmt.Sprintf("!variables.%s && (%s)", hoisted, needed)
	}
	return strings.Join(lists, " + "), needed, nil
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
