package report

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"podguard.dev/podguard/policies/api/v1alpha1"
)

// containerField finds the container a finding's field is in.
var containerField = regexp.MustCompile(`^(.*\.(?:initContainers|containers|ephemeralContainers)\[\d+\])`)

// imageGlob is the narrowest glob that keeps matching an image across
// releases of the same repository: any tag (or any digest).
func imageGlob(image string) string {
	repo, _, hasDigest := strings.Cut(image, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		return repo[:i] + ":*"
	}
	if hasDigest {
		return repo + "@*"
	}
	return image
}

// Baseline returns the exemptions under which every subject the policy
// denies today would pass, each as narrow as the findings allow: the rules
// it lifts and the images of the containers that need them; the namespace
// where a finding is at pod level (an image exemption never covers pod
// fields). Each names the subjects it covers in its reason and expires at
// expires, so a team can enforce for everything new at once and burn the
// list down.
func Baseline(r *Report, expires time.Time) []v1alpha1.Exemption {
	type scope struct{ namespace, image string }
	type entry struct {
		rules    map[string]bool
		subjects map[string]bool
	}
	found := map[scope]*entry{}
	for _, ns := range r.Namespaces {
		for _, s := range ns.Subjects {
			if s.Result != Fail {
				continue
			}
			for _, f := range s.Violations {
				sc := scope{namespace: ns.Name}
				if m := containerField.FindStringSubmatch(f.Field); m != nil {
					if img, ok := s.images[m[1]]; ok && img != "" {
						sc = scope{image: imageGlob(img)}
					}
				}
				e := found[sc]
				if e == nil {
					e = &entry{rules: map[string]bool{}, subjects: map[string]bool{}}
					found[sc] = e
				}
				e.rules[f.Rule] = true
				e.subjects[fmt.Sprintf("%s/%s/%s", ns.Name, s.Kind, s.Name)] = true
			}
		}
	}
	keys := make([]scope, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	// Image-scoped exemptions first (the narrow ones), then namespaces.
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i].image == "") != (keys[j].image == "") {
			return keys[i].image != ""
		}
		if keys[i].image != keys[j].image {
			return keys[i].image < keys[j].image
		}
		return keys[i].namespace < keys[j].namespace
	})
	out := make([]v1alpha1.Exemption, 0, len(keys))
	for _, k := range keys {
		e := found[k]
		ex := v1alpha1.Exemption{Rules: slices.Sorted(maps.Keys(e.rules)), Expires: expires.UTC().Format(time.DateOnly)}
		subjects := slices.Sorted(maps.Keys(e.subjects))
		what := strings.Join(subjects, ", ")
		if len(subjects) > 5 {
			what = strings.Join(subjects[:5], ", ") + fmt.Sprintf(" and %d more", len(subjects)-5)
		}
		ex.Reason = fmt.Sprintf("baseline of %s: covers %s", r.Generated.Format(time.DateOnly), what)
		if k.image != "" {
			ex.Images = []string{k.image}
		} else {
			ex.Namespaces = []string{k.namespace}
		}
		out = append(out, ex)
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
		policyYAML = v1alpha1.DefaultPolicyYAML(ownNamespace)
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
		for _, d := range v1alpha1.DefaultExemptions(ownNamespace) {
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
	add := func(k string, v *yaml.Node) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
	}
	str := func(s string) *yaml.Node {
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
		if strings.ContainsAny(s, ":#*{}[],&!|>'\"%@`") || s != strings.TrimSpace(s) {
			n.Style = yaml.DoubleQuotedStyle
		}
		return n
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
	if e.Expires != "" {
		// Quoted: an unquoted date is a YAML timestamp, not a string.
		n := str(e.Expires)
		n.Style = yaml.DoubleQuotedStyle
		add("expires", n)
	}
	return m, nil
}
