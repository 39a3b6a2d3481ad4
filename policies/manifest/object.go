package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"podguard.dev/podguard/policies/yamlpath"

	"podguard.dev/podguard/policies/podspec"
)

// Object is one Kubernetes object of a document: the document itself, or
// an item of a List.
type Object struct {
	// Doc is the document holding the object.
	Doc *Document
	// Item is the object's index in its List, or -1.
	Item int
	// APIVersion, Kind, Namespace and Name are read from the object.
	APIVersion, Kind, Namespace, Name string
	// GroupKind is parsed from APIVersion and Kind.
	GroupKind schema.GroupKind
	// Typed is the decoded object for kinds podguard judges; nil otherwise.
	Typed runtime.Object
	// node is the object's mapping in Doc.Node.
	node *yaml.Node
}

// Source names the object in reports: "<path>#<doc>" or "<path>#<doc>/<item>".
func (o *Object) Source() string {
	if o.Item >= 0 {
		return fmt.Sprintf("%s/%d", o.Doc.Name(), o.Item)
	}
	return o.Doc.Name()
}

// Position returns the line and column in the input file of the field at
// a finding's path (its key), or of its closest existing parent (a missing
// field is reported where it belongs); 0, 0 when unknown.
func (o *Object) Position(field string) (line, column int) {
	l, c := yamlpath.PositionOf(o.node, field)
	if l == 0 {
		return 0, 0
	}
	return o.Doc.Line + l - 1, c
}

// UTF16Column converts a column of the input (1-based, in characters, as
// Position returns it) on a line of the file into UTF-16 code units, the
// column SARIF counts by default: a character beyond U+FFFF (an emoji)
// takes two. 0 when the line is not in the object's document.
func (o *Object) UTF16Column(line, column int) int {
	idx := line - o.Doc.Line
	if idx < 0 || column <= 0 {
		return 0
	}
	raw := o.Doc.Raw
	for ; idx > 0; idx-- {
		nl := bytes.IndexByte(raw, '\n')
		if nl < 0 {
			return 0
		}
		raw = raw[nl+1:]
	}
	if nl := bytes.IndexByte(raw, '\n'); nl >= 0 {
		raw = raw[:nl]
	}
	units, chars := 0, 0
	for _, r := range string(raw) {
		if chars == column-1 {
			break
		}
		chars++
		units++
		if r > 0xFFFF {
			units++
		}
	}
	return units + (column - 1 - chars) + 1
}

// Supported reports whether podguard judges the object's kind.
func (o *Object) Supported() bool { return o.Typed != nil }

// Objects returns the objects of a document: the document itself, or the
// items of a List (kind List or any kind ending in List with items). It
// fails on a document that is not a Kubernetes object, and on a supported
// kind whose fields do not decode into the API types.
func (d *Document) Objects() ([]*Object, error) {
	objs, err := d.objects()
	if err != nil && bytes.Contains(d.Raw, []byte("{{")) {
		// The commonest cause of a broken document: a chart's template
		// passed as it is, whose {{ }} actions are not YAML.
		var ie *InputError
		if errors.As(err, &ie) {
			ie.Err = fmt.Errorf("%w; the document holds {{ }}: is it a Helm or Go template? Render it first (helm template CHART | podguard validate -f -)", ie.Err)
			return nil, ie
		}
	}
	return objs, err
}

func (d *Document) objects() ([]*Object, error) {
	if d.Err != nil {
		line, msg := d.yamlError(d.Err)
		return nil, &InputError{Source: d.Source, Doc: d.Index, Line: line, Err: errors.New(msg)}
	}
	root := d.Node.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, d.errorf(root.Line, "not a Kubernetes object: the document is a YAML %s, not a mapping with apiVersion and kind", kindName(root.Kind))
	}
	obj, err := d.object(root, -1)
	if err != nil {
		return nil, err
	}
	_, items := yamlpath.MapEntry(root, "items")
	if !strings.HasSuffix(obj.Kind, "List") || items == nil || obj.Typed != nil {
		return []*Object{obj}, nil
	}
	if items.Kind == yaml.ScalarNode && items.Tag == "!!null" {
		return nil, nil
	}
	if items.Kind != yaml.SequenceNode {
		return nil, d.errorf(items.Line, "%s: items must be a list", obj.Kind)
	}
	out := make([]*Object, 0, len(items.Content))
	for i, it := range items.Content {
		if it.Kind != yaml.MappingNode {
			return nil, d.errorf(it.Line, "%s item %d is not a Kubernetes object (a mapping with apiVersion and kind)", obj.Kind, i)
		}
		o, err := d.object(it, i)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (d *Document) object(n *yaml.Node, item int) (*Object, error) {
	o := &Object{Doc: d, Item: item, node: n}
	where := ""
	if item >= 0 {
		where = fmt.Sprintf("item %d: ", item)
	}
	var err error
	if o.APIVersion, err = scalarField(n, "apiVersion"); err != nil {
		return nil, d.errorf(n.Line, "%s%v", where, err)
	}
	if o.Kind, err = scalarField(n, "kind"); err != nil {
		return nil, d.errorf(n.Line, "%s%v", where, err)
	}
	if o.APIVersion == "" || o.Kind == "" {
		return nil, d.errorf(n.Line, "%snot a Kubernetes object: apiVersion and kind are required", where)
	}
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return nil, d.errorf(n.Line, "%sapiVersion %q: %v", where, o.APIVersion, err)
	}
	o.GroupKind = schema.GroupKind{Group: gv.Group, Kind: o.Kind}
	if _, meta := yamlpath.MapEntry(n, "metadata"); meta != nil && meta.Kind == yaml.MappingNode {
		o.Name, _ = scalarField(meta, "name")
		o.Namespace, _ = scalarField(meta, "namespace")
	}
	typed, ok := podspec.NewObject(o.GroupKind)
	if !ok {
		return o, nil
	}
	// kubectl keeps the last of two equal keys; the API server in strict
	// mode refuses them: refused here, so no reader can pick another.
	if err := duplicateKey(n); err != nil {
		line, msg := d.yamlError(err)
		return nil, &InputError{Source: d.Source, Doc: d.Index, Line: line, Err: fmt.Errorf("%s%s", where, msg)}
	}
	js, err := d.objectJSON(item)
	if err != nil {
		return nil, d.errorf(n.Line, "%s%v", where, err)
	}
	// What kubectl sends must be what the API server and podguard read:
	// the identity of the object must not change between the two readers.
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil || head.APIVersion != o.APIVersion || head.Kind != o.Kind {
		return nil, d.errorf(n.Line, "%sapiVersion and kind read differently as kubectl sends them (%q %q): refusing to judge it", where, head.APIVersion, head.Kind)
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, typed); err != nil {
		return nil, d.errorf(d.lineOfJSONError(n, err), "%s%s", where, cleanJSONError(err))
	}
	o.Typed = typed
	return o, nil
}

// objectJSON returns the object as kubectl sends it to the API server: a
// YAML document converted by sigs.k8s.io/yaml (YAML 1.1, so hostPID: yes
// is true and 0644 is 420, as kubectl reads them), a JSON document as it
// is; for a List item, that item of it. The API server then decodes it
// case-sensitively (sigs.k8s.io/json), dropping unknown fields such as a
// case variant of a known one ("hostpid"): podguard decodes the same
// bytes the same way, so it judges exactly what the API server keeps.
func (d *Document) objectJSON(item int) ([]byte, error) {
	if d.json == nil {
		if d.JSON {
			d.json = d.Raw
		} else {
			js, err := sigsyaml.YAMLToJSON(d.Raw)
			if err != nil {
				return nil, fmt.Errorf("as kubectl reads it: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
			}
			d.json = js
		}
	}
	if item < 0 {
		return d.json, nil
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(d.json, &list); err != nil || item >= len(list.Items) {
		return nil, fmt.Errorf("the List's items read differently as kubectl sends them")
	}
	return list.Items[item], nil
}

// duplicateKey finds a key given twice in one mapping below n.
func duplicateKey(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		var seen map[string]int
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode && k.Value != "<<" {
				if seen == nil {
					seen = make(map[string]int, len(n.Content)/2)
				}
				if at, dup := seen[k.Value]; dup {
					return fmt.Errorf("line %d: mapping key %q already defined at line %d", k.Line, k.Value, at)
				}
				seen[k.Value] = k.Line
			}
			if err := duplicateKey(n.Content[i+1]); err != nil {
				return err
			}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if err := duplicateKey(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Document) errorf(line int, format string, args ...any) error {
	l := 0
	if line > 0 {
		l = d.Line + line - 1
	}
	return &InputError{Source: d.Source, Doc: d.Index, Line: l, Err: fmt.Errorf(format, args...)}
}

var jsonFieldRE = regexp.MustCompile(`Go struct field [A-Za-z0-9]+\.([^ ]+) of type`)

func (d *Document) lineOfJSONError(n *yaml.Node, err error) int {
	if m := jsonFieldRE.FindStringSubmatch(err.Error()); m != nil {
		return yamlpath.LineOf(n, m[1])
	}
	return n.Line
}

func cleanJSONError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if m := jsonFieldRE.FindStringSubmatch(err.Error()); m != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return fmt.Sprintf("field %s: cannot use a %s here (want %s)", m[1], ute.Value, ute.Type)
		}
	}
	return msg
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlError rewrites a YAML error for people: every "line N" (counted in
// the document) becomes the line in the file, the first one is returned to
// head the message, and yaml.v3's prefixes go.
func (d *Document) yamlError(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:")
	first := 0
	msg = yamlLineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(m[len("line "):])
		l := d.Line + n - 1
		if first == 0 {
			first = l
		}
		return "line " + strconv.Itoa(l)
	})
	msg = strings.Join(strings.Fields(msg), " ")
	if first > 0 {
		// The first line heads the message already.
		msg = strings.TrimPrefix(msg, fmt.Sprintf("line %d: ", first))
	}
	return first, "malformed YAML: " + msg
}

func scalarField(n *yaml.Node, key string) (string, error) {
	_, v := yamlpath.MapEntry(n, key)
	if v == nil || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		return "", nil
	}
	if v.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s must be a string", key)
	}
	return v.Value, nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "node"
}

// DecodeStrict decodes the object, as kubectl sends it, into v: case
// sensitive, refusing unknown and duplicate fields, as the API server's
// strict field validation does. For kinds podguard reads besides pod specs
// (PodGuardException).
func (o *Object) DecodeStrict(v any) error {
	if err := duplicateKey(o.node); err != nil {
		line, msg := o.Doc.yamlError(err)
		return &InputError{Source: o.Doc.Source, Doc: o.Doc.Index, Line: line, Err: errors.New(msg)}
	}
	js, err := o.Doc.objectJSON(o.Item)
	if err != nil {
		return o.Doc.errorf(o.node.Line, "%v", err)
	}
	strictErrs, err := sigsjson.UnmarshalStrict(js, v, sigsjson.DisallowUnknownFields)
	if err != nil {
		return o.Doc.errorf(o.Doc.lineOfJSONError(o.node, err), "%s", cleanJSONError(err))
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return o.Doc.errorf(o.node.Line, "%s", strings.Join(msgs, "; "))
	}
	return nil
}
