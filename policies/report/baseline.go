package report

import (
	"bytes"
	"fmt"
	"maps"
	"podguard.dev/podguard/policies/api/defaults"
	"regexp"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"podguard.dev/podguard/policies/api/v1alpha1"
)

// containerField finds the container a finding's field is in.
var containerField = regexp.MustCompile(`^(.*\.(?:initContainers|containers|ephemeralContainers)\[\d+\])`)

// Baseline returns the exemptions under which every subject the policy
// denies today would pass, each as narrow as the findings allow: scoped to
// the subject's namespace and to the subject itself (the workload, which
// covers the Pods it controls, or the bare Pod), lifting only the rules it
// breaks, and for findings inside containers only from those containers,
// by name. Nothing taken from a cluster object becomes a glob: an image
// named "*" once turned into an exemption of every image.
// Each entry names its subject in its reason and ends at expires (an
// exemption's expires: a date or an RFC 3339 timestamp), so a team can
// enforce for everything new at once and burn the list down.
func Baseline(r *Report, expires string) []v1alpha1.Exemption {
	var out []v1alpha1.Exemption
	for _, ns := range r.Namespaces {
		for _, s := range ns.Subjects {
			if s.Result != Fail {
				continue
			}
			podRules := map[string]bool{}
			containerRules := map[string]map[string]bool{} // container name -> rules
			for _, f := range s.Violations {
				name := ""
				if m := containerField.FindStringSubmatch(f.Field); m != nil {
					name = s.containers[m[1]]
				}
				if name == "" {
					podRules[f.Rule] = true
					continue
				}
				if containerRules[name] == nil {
					containerRules[name] = map[string]bool{}
				}
				containerRules[name][f.Rule] = true
			}
			base := v1alpha1.Exemption{
				Reason:     fmt.Sprintf("baseline of %s: covers %s/%s/%s", r.Generated.Format(time.DateOnly), ns.Name, s.Kind, s.Name),
				Namespaces: []string{ns.Name},
				Workloads:  []v1alpha1.WorkloadRef{{Kind: s.Kind, Name: s.Name}},
				Expires:    expires,
			}
			if len(podRules) > 0 {
				e := base
				e.Rules = slices.Sorted(maps.Keys(podRules))
				out = append(out, e)
			}
			// Containers that need the same rules share one entry.
			byRules := map[string][]string{}
			for name, rs := range containerRules {
				key := strings.Join(slices.Sorted(maps.Keys(rs)), ",")
				byRules[key] = append(byRules[key], name)
			}
			for _, key := range slices.Sorted(maps.Keys(byRules)) {
				e := base
				e.Rules = strings.Split(key, ",")
				e.ContainerNames = slices.Sorted(slices.Values(byRules[key]))
				out = append(out, e)
			}
		}
	}
	return out
}

// MergeExemptions appends exemptions to a policy file, keeping its
// comments and layout: a comment-preserving YAML tree, not a re-encoding
// of the decoded policy. A policy without an exemptions list gets one
// holding the default exemptions first (an explicit list replaces the
// defaults). An empty file is the default policy file.
func MergeExemptions(policyYAML []byte, add []v1alpha1.Exemption, ownNamespace string) ([]byte, error) {
	if len(bytes.TrimSpace(policyYAML)) == 0 {
		policyYAML = defaults.PolicyYAML(ownNamespace)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(policyYAML, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the policy is not a mapping")
	}
	root := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "exemptions" {
			list = root.Content[i+1]
		}
	}
	if list == nil || (list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, d := range defaults.DefaultExemptions(ownNamespace) {
			n, err := exemptionNode(d)
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, n)
		}
		if list == nil {
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "exemptions",
				HeadComment: "The default exemptions, written out: an exemptions list replaces them."}, seq)
		} else {
			*list = *seq
		}
		list = seq
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("exemptions is not a list")
	}
	for i, e := range add {
		n, err := exemptionNode(e)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			n.HeadComment = "Baseline written by podguard audit --baseline: what today's cluster needs to pass.\nEach expires; burn the list down."
		}
		list.Content = append(list.Content, n)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func exemptionNode(e v1alpha1.Exemption) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	key := func(k string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k} }
	add := func(k string, v *yaml.Node) { m.Content = append(m.Content, key(k), v) }
	// Every string is double-quoted: the emitter escapes what YAML cannot
	// hold raw, and no value reads back as a boolean, number or null.
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	}
	list := func(items []string) *yaml.Node {
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, it := range items {
			n.Content = append(n.Content, str(it))
		}
		return n
	}
	add("reason", str(e.Reason))
	for _, l := range []struct {
		k string
		v []string
	}{{"rules", e.Rules}, {"namespaces", e.Namespaces}, {"users", e.Users}, {"groups", e.Groups}, {"images", e.Images}, {"containerNames", e.ContainerNames}} {
		if len(l.v) > 0 {
			add(l.k, list(l.v))
		}
	}
	if len(e.Workloads) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, w := range e.Workloads {
			seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle, Content: []*yaml.Node{
				key("kind"), str(w.Kind), key("name"), str(w.Name)}})
		}
		add("workloads", seq)
	}
	if e.Selector != nil {
		var n yaml.Node
		if err := n.Encode(e.Selector); err != nil {
			return nil, err
		}
		add("selector", &n)
	}
	if e.Expires != "" {
		// Quoted: an unquoted date is a YAML timestamp, not a string.
		n := str(e.Expires)
		n.Style = yaml.DoubleQuotedStyle
		add("expires", n)
	}
	return m, nil
}
