// Package schema writes the JSON schema of a podguard policy, generated from
// the policy's Go types and the rule registry, so that tools that know
// nothing of podguard (helm lint and helm install through the chart's
// values.schema.json, editors through yaml-language-server) refuse what
// podguard would refuse: an unknown rule, an unknown field, a wrong action.
//
// The schema checks shapes only; what needs podguard's own validation
// (globs, ID ranges that overlap, durations, CEL) is left to
// `podguard policy check`, which the chart runs before it installs.
package schema

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/invopop/jsonschema"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
)

// Policy returns the JSON schema (draft 2020-12, no references: every
// subschema written in place, which every JSON schema library reads) of a
// Policy document. With requireTypeMeta false, apiVersion and kind may be
// left out, as the chart's values.policy does.
func Policy(requireTypeMeta bool) (*jsonschema.Schema, error) {
	r := &jsonschema.Reflector{
		DoNotReference:             true,
		ExpandedStruct:             true,
		Anonymous:                  true,
		RequiredFromJSONSchemaTags: true,
		Mapper:                     mapType,
	}
	s := r.Reflect(&v1alpha1.Policy{})
	s.Version = ""
	props := s.Properties
	if props == nil {
		return nil, fmt.Errorf("policy schema has no properties")
	}
	props.Set("apiVersion", &jsonschema.Schema{Const: v1alpha1.SchemeGroupVersion.String()})
	props.Set("kind", &jsonschema.Schema{Const: "Policy"})
	props.Set("mode", actions(v1alpha1.ActionEnforce, v1alpha1.ActionWarn, v1alpha1.ActionAudit))
	if requireTypeMeta {
		s.Required = []string{"apiVersion", "kind"}
	}

	ruleProps := jsonschema.NewProperties()
	settings := r.Reflect(&v1alpha1.RuleSettings{})
	for _, d := range rules.Definitions() {
		rs := &jsonschema.Schema{
			Type:                 "object",
			Description:          d.Doc,
			Properties:           jsonschema.NewProperties(),
			AdditionalProperties: jsonschema.FalseSchema,
		}
		rs.Properties.Set("action", actions(v1alpha1.ActionEnforce, v1alpha1.ActionWarn, v1alpha1.ActionAudit, v1alpha1.ActionOff))
		if d.Fixable() {
			rs.Properties.Set("mutate", &jsonschema.Schema{Type: "boolean"})
		}
		if d.Params != nil {
			ps := r.ReflectFromType(reflect.TypeOf(d.Params()))
			for pair := ps.Properties.Oldest(); pair != nil; pair = pair.Next() {
				if _, clash := settings.Properties.Get(pair.Key); clash {
					return nil, fmt.Errorf("rule %s: parameter %q has the name of a rule setting", d.ID, pair.Key)
				}
				rs.Properties.Set(pair.Key, pair.Value)
			}
		}
		ruleProps.Set(d.ID, rs)
	}
	props.Set("rules", &jsonschema.Schema{
		Type:                 "object",
		Description:          "One entry per rule ID; a rule left out keeps its defaults.",
		Properties:           ruleProps,
		AdditionalProperties: jsonschema.FalseSchema,
	})
	exemptions, _ := props.Get("exemptions")
	if exemptions == nil || exemptions.Items == nil {
		return nil, fmt.Errorf("policy schema has no exemptions list")
	}
	exemptions.Items.Required = []string{"reason"}
	// Rule names in lists: the ones the registry knows.
	var ids []any
	for _, d := range rules.Definitions() {
		ids = append(ids, d.ID)
	}
	exceptions, _ := props.Get("exceptions")
	for _, list := range []*jsonschema.Schema{exemptions.Items, exceptions} {
		if list == nil {
			return nil, fmt.Errorf("policy schema lacks exemptions or exceptions")
		}
		if rl, ok := list.Properties.Get("rules"); ok && rl.Items != nil {
			rl.Items.Enum = ids
		}
	}
	if w, ok := exemptions.Items.Properties.Get("workloads"); ok && w.Items != nil {
		w.Items.Required = []string{"kind", "name"}
	}
	return s, nil
}

// JSON returns Policy's schema as indented JSON.
func JSON(requireTypeMeta bool) ([]byte, error) {
	s, err := Policy(requireTypeMeta)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(s, "", "  ")
}

func actions(words ...v1alpha1.Action) *jsonschema.Schema {
	enum := make([]any, len(words))
	for i, w := range words {
		enum[i] = string(w)
	}
	return &jsonschema.Schema{Type: "string", Enum: enum}
}

// mapType writes the types whose JSON form is not their Go shape.
func mapType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeOf(v1alpha1.IDRange{}):
		// A single ID (1000) or an inclusive range ({min: 10000, max: 65535}).
		rng := &jsonschema.Schema{
			Type:                 "object",
			Properties:           jsonschema.NewProperties(),
			Required:             []string{"min", "max"},
			AdditionalProperties: jsonschema.FalseSchema,
		}
		rng.Properties.Set("min", &jsonschema.Schema{Type: "integer", Minimum: "0"})
		rng.Properties.Set("max", &jsonschema.Schema{Type: "integer", Minimum: "0"})
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{{Type: "integer", Minimum: "0"}, rng}}
	case reflect.TypeOf(resource.Quantity{}):
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{{Type: "string"}, {Type: "number"}}}
	case reflect.TypeOf(v1alpha1.Action("")):
		return actions(v1alpha1.ActionEnforce, v1alpha1.ActionWarn, v1alpha1.ActionAudit, v1alpha1.ActionOff)
	case reflect.TypeOf(metav1.Time{}):
		return &jsonschema.Schema{Type: "string", Format: "date-time"}
	}
	return nil
}
