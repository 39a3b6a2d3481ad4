// Package load turns a policy file into a validated policy: strict decoding
// (unknown and duplicate fields are errors), then defaulting, then semantic
// validation, as Kubernetes loads its component configs.
package load

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsyaml "sigs.k8s.io/yaml"

	"podguard.dev/podguard/policies/api/defaults"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/api/validation"
	"podguard.dev/podguard/policies/safetext"
	"podguard.dev/podguard/policies/yamlpath"
)

// Error lists every problem of one policy file, each with its line where known.
type Error struct {
	// Source names the file.
	Source string
	// Problems are "line N: path: message" strings, in file order.
	Problems []string
}

// Error is one line per problem under a header; the file's name and each
// problem are kept on their own line (safetext), so the only line breaks
// are these.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = safetext.Line(p)
	}
	return fmt.Sprintf("policy %s is invalid:\n  %s", safetext.Line(e.Source), strings.Join(lines, "\n  "))
}

// Default returns the default policy.
func Default(ownNamespace string) *v1alpha1.Policy {
	p := &v1alpha1.Policy{}
	defaults.SetDefaults(p, ownNamespace)
	return p
}

// MaxPolicyBytes caps a policy file: a real one is a few kilobytes (a
// ConfigMap holds at most 1 MiB), and the cap keeps a wrong path such as
// /dev/zero from exhausting memory.
const MaxPolicyBytes = 4 << 20

// File loads a policy file. An empty path means the default policy.
func File(path, ownNamespace string) (*v1alpha1.Policy, error) {
	if path == "" {
		return Default(ownNamespace), nil
	}
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Bytes(data, path, ownNamespace)
}

// ReadFile reads a policy file, refusing one above MaxPolicyBytes and
// anything but a regular file (a FIFO would block the reader forever).
func ReadFile(path string) ([]byte, error) {
	if info, err := os.Stat(path); err == nil && !info.Mode().IsRegular() {
		return nil, fmt.Errorf("reading policy %s: not a regular file (%s)", path, info.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading policy %s: %w", path, err)
	}
	if len(data) > MaxPolicyBytes {
		return nil, fmt.Errorf("reading policy %s: larger than %d bytes; a policy file is a few kilobytes", path, MaxPolicyBytes)
	}
	return data, nil
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// Bytes decodes, defaults and validates a policy. source names it in errors.
// An empty document (or one holding only comments) is the default policy.
func Bytes(data []byte, source, ownNamespace string) (*v1alpha1.Policy, error) {
	fail := func(problems ...string) error { return &Error{Source: source, Problems: problems} }

	var node yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&node); err != nil && !errors.Is(err, io.EOF) {
		return nil, fail(err.Error())
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil && extra.Kind != 0 {
		return nil, fail(fmt.Sprintf("line %d: a policy file holds one document; found another", extra.Line))
	}
	if node.Kind == 0 || (len(node.Content) == 1 && node.Content[0].Tag == "!!null") {
		return Default(ownNamespace), nil
	}
	if len(node.Content) != 1 || node.Content[0].Kind != yaml.MappingNode {
		return nil, fail(fmt.Sprintf("line %d: a policy must be a mapping with apiVersion: %s and kind: %s", node.Line, v1alpha1.APIVersion, v1alpha1.PolicyKind))
	}

	if dups := duplicateKeys(node.Content[0]); len(dups) > 0 {
		return nil, fail(dups...)
	}
	js, err := sigsyaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fail(yamlProblem(strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")))
	}
	p := &v1alpha1.Policy{}
	errs := decodeStrict(js, p)
	if p.APIVersion == "" {
		errs = append(errs, field.Required(field.NewPath("apiVersion"), "set apiVersion: "+v1alpha1.APIVersion))
	}
	if p.Kind == "" {
		errs = append(errs, field.Required(field.NewPath("kind"), "set kind: "+v1alpha1.PolicyKind))
	}
	// Validate what did decode too, so one run reports every problem; a
	// field that did not decode is not judged again.
	broken := map[string]bool{}
	for _, e := range errs {
		broken[e.Field] = true
	}
	defaults.SetDefaults(p, ownNamespace)
	for _, e := range validation.ValidatePolicy(p) {
		if !broken[e.Field] && !(e.Field == "apiVersion" && p.APIVersion == v1alpha1.APIVersion) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, fail(fieldProblems(errs, &node)...)
	}
	return p, nil
}

// duplicateKeys reports every key defined twice in a mapping, with both
// lines: decoders disagree on which one wins.
func duplicateKeys(n *yaml.Node) []string {
	var out []string
	if n.Kind == yaml.MappingNode {
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if first, dup := seen[k.Value]; dup {
				out = append(out, fmt.Sprintf("line %d: key %q already defined at line %d", k.Line, k.Value, first))
			} else {
				seen[k.Value] = k.Line
			}
		}
	}
	for _, c := range n.Content {
		out = append(out, duplicateKeys(c)...)
	}
	return out
}

// yamlProblem keeps every line number of a YAML error ("mapping key
// already defined at line 3") and puts the first one in front.
func yamlProblem(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil && !strings.HasPrefix(msg, "line ") {
		return "line " + m[1] + ": " + msg
	}
	return msg
}

func withLine(node *yaml.Node, path, msg string) string {
	if l := yamlpath.LineOf(node, path); l > 0 {
		if strings.Contains(msg, path) {
			return fmt.Sprintf("line %d: %s", l, msg)
		}
		return fmt.Sprintf("line %d: %s: %s", l, path, msg)
	}
	return path + ": " + msg
}

func fieldProblems(errs field.ErrorList, node *yaml.Node) []string {
	type problem struct {
		line int
		text string
	}
	ps := make([]problem, 0, len(errs))
	for _, e := range errs {
		body := e.ErrorBody()
		if e.Type == field.ErrorTypeNotSupported && e.BadValue == (field.OmitValueType{}) {
			body = e.Detail // an unknown field: the detail says it all
		}
		ps = append(ps, problem{yamlpath.LineOf(node, e.Field), withLine(node, e.Field, body)})
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].line < ps[j].line })
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.text
	}
	return out
}
