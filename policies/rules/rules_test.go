package rules_test

import (
	"flag"
	"maps"
	"os"
	"path/filepath"
	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/fixtures"
	"reflect"
	sigsyaml "sigs.k8s.io/yaml"
	"slices"
	"sort"
	"strings"
	"testing"

	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/manifest"
	"podguard.dev/podguard/policies/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files of fix fixtures")

// TestRegistryMatchesFilesAndFixtures proves the rule set is complete and
// consistent: the registry, the rule_<ID>.go files, the testdata/<ID>
// folders and the rules of the defaulted policy name the same rules, and a
// rule has a fix exactly when its definition says it is fixable.
func TestRegistryMatchesFilesAndFixtures(t *testing.T) {
	registry := rules.IDs()

	files, _ := filepath.Glob("rule_*.go")
	var fromFiles []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		// rule_<ID>.go, and rule_<ID>_<part>.go for a rule in several files.
		id, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(f, "rule_"), ".go"), "_")
		if !slices.Contains(fromFiles, id) {
			fromFiles = append(fromFiles, id)
		}
	}
	sort.Strings(fromFiles)

	sets := fixtureSets(t)
	var fromFixtures []string
	for _, s := range sets {
		if s.Variant == "" {
			fromFixtures = append(fromFixtures, s.Rule)
		}
	}

	fromPolicy := slices.Sorted(maps.Keys(load.Default("").Rules))
	for name, got := range map[string][]string{"rule files": fromFiles, "fixture folders": fromFixtures, "defaulted policy": fromPolicy} {
		if !slices.Equal(registry, got) {
			t.Errorf("registry %v != %s %v", registry, name, got)
		}
	}

	p := load.Default("")
	for _, rule := range rules.Build(p) {
		d, _ := rules.Lookup(rule.ID)
		if fixable := rule.Fix != nil; fixable != d.Fixable() {
			t.Errorf("rule %s: has fix = %v, but its definition says fixable = %v", rule.ID, fixable, d.Fixable())
		}
		if d, _ := rules.Lookup(rule.ID); strings.TrimSpace(d.Doc) == "" || d.Order == 0 {
			t.Errorf("rule %s has no policy-file comment or no order", rule.ID)
		}
		def := defaultSet(t, sets, rule.ID)
		for _, kind := range []string{fixtures.Pass, fixtures.Fail} {
			n := len(def.Files[kind])
			if kind == fixtures.Fail && d.Example != "" {
				// A rule that checks nothing until a policy fills its
				// parameters in (it prints an Example) fails under a
				// variant's policy only.
				for _, s := range sets {
					if s.Rule == rule.ID {
						n += len(s.Files[kind])
					}
				}
			}
			if n == 0 {
				t.Errorf("rule %s has no %s fixtures", rule.ID, kind)
			}
		}
		if rule.Fix != nil && len(def.Files[fixtures.Fix]) == 0 {
			t.Errorf("rule %s has a fix but no fix fixtures", rule.ID)
		}
		if rule.Summary == "" {
			t.Errorf("rule %s has no summary", rule.ID)
		}
	}
}

// fixtureSets are the rules' fixture folders: each rule's under the
// default policy and its variants, each under its own policy.yaml.
func fixtureSets(t *testing.T) []fixtures.Set {
	t.Helper()
	sets, err := fixtures.Find("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return sets
}

func defaultSet(t *testing.T, sets []fixtures.Set, id string) fixtures.Set {
	t.Helper()
	for _, s := range sets {
		if s.Rule == id && s.Variant == "" {
			return s
		}
	}
	t.Fatalf("rule %s has no fixture folder", id)
	return fixtures.Set{}
}

// allFixtureFiles lists every fixture of every set.
func allFixtureFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range fixtures.All(fixtureSets(t)) {
		out = append(out, f.Path)
	}
	return out
}

func TestFixtures(t *testing.T) {
	for _, set := range fixtureSets(t) {
		t.Run(set.Name(), func(t *testing.T) { fixtures.Check(t, set, *update) })
	}
}

// TestEveryParameterHasAFixture: every parameter of every rule is set by
// the policy.yaml of at least one of its variant folders, so every
// parameter's effect is a fixture (and, through the native equivalence
// test, proven on the API server).
func TestEveryParameterHasAFixture(t *testing.T) {
	set := map[string]bool{}
	for _, s := range fixtureSets(t) {
		if s.Policy == "" {
			continue
		}
		data, err := os.ReadFile(s.Policy)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Rules map[string]map[string]any `json:"rules"`
		}
		if err := sigsyaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", s.Policy, err)
		}
		for id, entry := range doc.Rules {
			for k := range entry {
				set[id+"."+k] = true
			}
		}
	}
	for _, d := range rules.Definitions() {
		if d.Params == nil {
			continue
		}
		typ := reflect.TypeOf(d.Params()).Elem()
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !set[d.ID+"."+name] {
				t.Errorf("parameter %s.%s has no fixture: add testdata/%s/<variant>/policy.yaml setting it, with pass, fail or fix cases", d.ID, name, d.ID)
			}
		}
	}
}

var updateReadme = flag.Bool("update-readme", false, "rewrite the README's rules table from the registry")

// TestReadmeRulesTable keeps the README's table of rules generated from the
// rules themselves: a new rule appears there by running
// go test ./policies/rules -update-readme, not by hand.
func TestReadmeRulesTable(t *testing.T) {
	testenv.GeneratedSection(t, "../../README.md", "<!-- rules table: generated by go test ./policies/rules -update-readme -->\n",
		"<!-- end of rules table -->\n", rules.MarkdownTable(), *updateReadme, "go test ./policies/rules -update-readme")
}

// TestEveryRuleIsComplete: every rule has its controls' checklist item and
// a native form (CEL, or the reason it has none).
func TestEveryRuleIsComplete(t *testing.T) {
	p := load.Default("")
	for _, d := range rules.Definitions() {
		if d.Checklist.ID == "" || d.Checklist.Title == "" {
			t.Errorf("rule %s names no checklist item", d.ID)
		}
		if d.Native == nil {
			t.Errorf("rule %s has no native form", d.ID)
			continue
		}
		for _, mode := range []rules.NativeMode{rules.AsSubmitted, rules.AsAdmitted} {
			n := d.Native(p, mode)
			if n.WebhookOnly == "" && n.Pod == "" && n.Container == "" {
				t.Errorf("rule %s: a native form with no CEL and no reason", d.ID)
			}
		}
	}
}

// TestKubectlDebugHint: an ephemeral container that adds SYS_PTRACE (what
// kubectl debug's default profile does) is told to use the restricted
// profile; a regular container is not.
func TestKubectlDebugHint(t *testing.T) {
	pod := `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: app, image: a:1, securityContext: {capabilities: {add: [SYS_PTRACE]}}}
  ephemeralContainers:
  - {name: debugger, image: busybox:1.36, securityContext: {capabilities: {add: [SYS_PTRACE]}}}
`
	docs, err := manifest.Split("p.yaml", []byte(pod))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := docs[0].Objects()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rules.Get(load.Default(""), "capabilities")
	hints := map[string]bool{}
	for _, f := range r.Check(fixtures.Target(t, objs[0].Typed)) {
		if strings.HasSuffix(f.Field, ".add[0]") {
			hints[f.Field] = f.Fix == rules.KubectlDebugHint
		}
	}
	if !hints["spec.ephemeralContainers[0].securityContext.capabilities.add[0]"] || hints["spec.containers[0].securityContext.capabilities.add[0]"] {
		t.Errorf("the kubectl debug hint: %v", hints)
	}
}

// TestUserNamespacesFixOnlyWhereAccepted: hostUsers: false is injected
// only into pods the API server accepts it on (1.37: not with hostNetwork,
// hostPID, hostIPC or a container's volumeDevices; not on Windows); the
// others are reported with what stands in the way.
func TestUserNamespacesFixOnlyWhereAccepted(t *testing.T) {
	p := load.Default("")
	r, _ := rules.Get(p, "userNamespaces")
	pod := func(spec string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + spec + "  containers:\n  - name: c\n    image: c:1\n"
	}
	cases := map[string]struct {
		spec    string
		fixed   bool
		blocker string
	}{
		"bare":          {"", true, ""},
		"hostNetwork":   {"  hostNetwork: true\n", false, "hostNetwork"},
		"hostPID":       {"  hostPID: true\n", false, "hostPID"},
		"hostIPC":       {"  hostIPC: true\n", false, "hostIPC"},
		"volumeDevices": {"  volumes: [{name: d, persistentVolumeClaim: {claimName: d}}]\n  initContainers: [{name: i, image: i:1, volumeDevices: [{name: d, devicePath: /dev/xvda}]}]\n", false, "volumeDevices"},
		"windows":       {"  os: {name: windows}\n", false, ""},
	}
	for name, c := range cases {
		docs, err := manifest.Split(name, []byte(pod(c.spec)))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := docs[0].Objects()
		if err != nil {
			t.Fatal(err)
		}
		tg := fixtures.Target(t, objs[0].Typed)
		changes := r.Fix(tg)
		if (len(changes) > 0) != c.fixed {
			t.Errorf("%s: fix %v, want fixed %v", name, changes, c.fixed)
		}
		fs := r.Check(tg)
		if c.blocker != "" && (len(fs) != 1 || !strings.Contains(fs[0].Fix, c.blocker) || !strings.Contains(fs[0].Fix, "exempt")) {
			t.Errorf("%s: the finding does not name what stands in the way: %+v", name, fs)
		}
		if name == "windows" && len(fs) > 0 {
			t.Errorf("a Windows pod is judged: %+v", fs)
		}
	}
}
