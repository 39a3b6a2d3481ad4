package rules_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"podguard.dev/podguard/hack/testenv/fixtures"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"reflect"
	"regexp"
	sigsyaml "sigs.k8s.io/yaml"
	"slices"
	"sort"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/manifest"
	"podguard.dev/podguard/policies/podspec"
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
			if n := len(def.Files[kind]); n == 0 {
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

// policyOf loads a set's policy: its policy.yaml, or the default policy.
func policyOf(t *testing.T, s fixtures.Set) *v1alpha1.Policy {
	t.Helper()
	if s.Policy == "" {
		return load.Default("")
	}
	p, err := load.File(s.Policy, "")
	if err != nil {
		t.Fatalf("%s: %v", s.Policy, err)
	}
	return p
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

type fixture struct {
	path  string
	obj   *manifest.Object
	wants []string
}

var wantRE = regexp.MustCompile(`(?m)^# want: (\S+) (\S+)\s*$`)

func readFixture(t *testing.T, path string) fixture {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := manifest.Split(path, data)
	if err != nil || len(docs) != 1 {
		t.Fatalf("%s: want one document: %v", path, err)
	}
	objs, err := docs[0].Objects()
	if err != nil || len(objs) != 1 || !objs[0].Supported() {
		t.Fatalf("%s: want one supported object: %v", path, err)
	}
	f := fixture{path: path, obj: objs[0]}
	for _, m := range wantRE.FindAllStringSubmatch(string(data), -1) {
		f.wants = append(f.wants, m[1]+" "+m[2])
	}
	return f
}

func target(t *testing.T, obj runtime.Object) *podspec.Target {
	t.Helper()
	tg, ok := podspec.Find(obj)
	if !ok {
		t.Fatalf("no pod spec in %T", obj)
	}
	return tg
}

func short(typ field.ErrorType) string {
	switch typ {
	case field.ErrorTypeRequired:
		return "Required"
	case field.ErrorTypeInvalid:
		return "Invalid"
	case field.ErrorTypeForbidden:
		return "Forbidden"
	case field.ErrorTypeNotSupported:
		return "NotSupported"
	}
	return string(typ)
}

func findings(rule rules.Rule, tg *podspec.Target) []string {
	var out []string
	for _, f := range rule.Check(tg) {
		out = append(out, short(f.Type)+" "+f.Field)
		if f.Message == "" || f.Fix == "" {
			out = append(out, "EMPTY MESSAGE OR FIX at "+f.Field)
		}
	}
	return out
}

// othersFindings returns the findings of every rule but id.
func othersFindings(all []rules.Rule, id string, tg *podspec.Target) []string {
	var out []string
	for _, r := range all {
		if r.ID == id {
			continue
		}
		for _, f := range findings(r, tg) {
			out = append(out, r.ID+": "+f)
		}
	}
	return out
}

// TestFixtures runs every rule over its fixtures: pass cases pass every
// rule; fail cases fail exactly where their "# want:" lines say, on this
// rule only; fix cases are fixed cleanly (the rule passes afterwards, no
// other rule gains a finding), idempotently, and the JSON patch and the
// YAML edit of the same changes give the same object as the typed edit.
func TestFixtures(t *testing.T) {
	for _, set := range fixtureSets(t) {
		t.Run(set.Name(), func(t *testing.T) {
			p := policyOf(t, set)
			all := rules.Build(p)
			rule, ok := rules.Get(p, set.Rule)
			if !ok {
				t.Fatalf("no rule %s", set.Rule)
			}
			if set.Variant != "" && len(set.Files[fixtures.Pass])+len(set.Files[fixtures.Fail])+len(set.Files[fixtures.Fix]) == 0 {
				t.Errorf("%s: a variant folder without fixtures", set.Dir)
			}
			for _, path := range set.Files[fixtures.Pass] {
				f := readFixture(t, path)
				if got := findings(rule, target(t, f.obj.Typed)); len(got) > 0 {
					t.Errorf("%s: pass fixture has findings: %v", path, got)
				}
				if got := othersFindings(all, rule.ID, target(t, f.obj.Typed)); len(got) > 0 {
					t.Errorf("%s: pass fixture fails other rules: %v", path, got)
				}
				// The Rule contract: a fix changes nothing the check accepts.
				if rule.Fix != nil {
					if c := rule.Fix(target(t, f.obj.Typed)); len(c) > 0 {
						t.Errorf("%s: the fix changes a pod the check accepts: %v", path, c)
					}
				}
			}
			for _, path := range set.Files[fixtures.Fail] {
				f := readFixture(t, path)
				if len(f.wants) == 0 {
					t.Errorf("%s: fail fixture without # want: lines", path)
				}
				got := findings(rule, target(t, f.obj.Typed))
				if !slices.Equal(got, f.wants) {
					t.Errorf("%s:\n got  %q\n want %q", path, got, f.wants)
				}
				if others := othersFindings(all, rule.ID, target(t, f.obj.Typed)); len(others) > 0 {
					t.Errorf("%s: not isolated, other rules fail too: %v", path, others)
				}
			}
			for _, path := range set.Files[fixtures.Fix] {
				checkFix(t, all, rule, path)
			}
		})
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

func checkFix(t *testing.T, all []rules.Rule, rule rules.Rule, path string) {
	t.Helper()
	f := readFixture(t, path)
	original, err := json.Marshal(f.obj.Typed)
	if err != nil {
		t.Fatal(err)
	}
	before := othersFindings(all, rule.ID, target(t, f.obj.Typed))
	if len(findings(rule, target(t, f.obj.Typed))) == 0 {
		t.Errorf("%s: fix fixture has nothing to fix", path)
	}

	changes := rule.Fix(target(t, f.obj.Typed))
	if len(changes) == 0 {
		t.Fatalf("%s: no changes", path)
	}
	for i := range changes {
		changes[i].Rule = rule.ID
		if err := changes[i].Apply(f.obj.Typed); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	// A fix fixture's "# want:" lines name what no fix can remove.
	if got := findings(rule, target(t, f.obj.Typed)); !slices.Equal(got, f.wants) {
		t.Errorf("%s: after the fix\n got  %q\n want %q", path, got, f.wants)
	}
	if again := rule.Fix(target(t, f.obj.Typed)); len(again) > 0 {
		t.Errorf("%s: fix is not idempotent, second pass changes %v", path, again)
	}
	after := othersFindings(all, rule.ID, target(t, f.obj.Typed))
	for _, a := range after {
		if !slices.Contains(before, a) {
			t.Errorf("%s: the fix added a finding of another rule: %s", path, a)
		}
	}

	// The JSON patch, applied to the original, must give the typed result.
	patch, err := change.JSONPatch(changes)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("%s: bad patch %s: %v", path, patch, err)
	}
	patched, err := decoded.Apply(original)
	if err != nil {
		t.Fatalf("%s: patch %s does not apply: %v", path, patch, err)
	}
	want, _ := json.Marshal(f.obj.Typed)
	if !jsonEqual(t, patched, want) {
		t.Errorf("%s: JSON patch result differs from the typed fix\n patched %s\n typed   %s", path, patched, want)
	}

	// The YAML edit of the same changes must decode to the typed result.
	if err := f.obj.Apply(changes); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rendered, err := f.obj.Doc.Render()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := manifest.Split(path, rendered)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := docs[0].Objects()
	if err != nil {
		t.Fatalf("%s: rendered YAML does not decode: %v\n%s", path, err, rendered)
	}
	fromYAML, _ := json.Marshal(objs[0].Typed)
	if !jsonEqual(t, fromYAML, want) {
		t.Errorf("%s: YAML edit differs from the typed fix\n yaml  %s\n typed %s", path, fromYAML, want)
	}

	var golden strings.Builder
	golden.WriteString("# changes\n")
	for _, c := range changes {
		golden.WriteString(c.String() + "\n")
	}
	fmt.Fprintf(&golden, "# json patch\n%s\n# yaml\n%s", patch, rendered)
	goldenPath := strings.TrimSuffix(path, ".yaml") + ".golden"
	if *update {
		if err := os.WriteFile(goldenPath, []byte(golden.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantGolden, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./policies/rules -update)", err)
	}
	if string(wantGolden) != golden.String() {
		t.Errorf("%s: golden output differs (go test ./policies/rules -update rewrites it)\n--- got\n%s--- want\n%s", path, golden.String(), wantGolden)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

var updateReadme = flag.Bool("update-readme", false, "rewrite the README's rules table from the registry")

// TestReadmeRulesTable keeps the README's table of rules generated from the
// rules themselves: a new rule appears there by running
// go test ./policies/rules -update-readme, not by hand.
func TestReadmeRulesTable(t *testing.T) {
	var b strings.Builder
	b.WriteString("| rule | default | controls | requires; what mutation injects |\n|---|---|---|---|\n")
	for _, d := range rules.Definitions() {
		def := string(d.Action)
		if d.Fixable() {
			def += fmt.Sprintf(", mutate %v", d.Mutate)
		}
		doc := strings.Join(strings.Fields(d.Doc), " ")
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.ID, def, d.Controls(), strings.ReplaceAll(doc, "|", `\|`))
	}
	const begin, end = "<!-- rules table: generated by go test ./policies/rules -update-readme -->\n", "<!-- end of rules table -->\n"
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no generated rules table (markers %q ... %q)", begin, end)
	}
	got := s[i+len(begin) : j]
	if *updateReadme {
		if err := os.WriteFile("../../README.md", []byte(s[:i+len(begin)]+b.String()+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != b.String() {
		t.Errorf("the README's rules table is stale: go test ./policies/rules -update-readme\n--- README\n%s--- registry\n%s", got, b.String())
	}
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
	for _, f := range r.Check(target(t, objs[0].Typed)) {
		if strings.HasSuffix(f.Field, ".add[0]") {
			hints[f.Field] = f.Fix == rules.KubectlDebugHint
		}
	}
	if !hints["spec.ephemeralContainers[0].securityContext.capabilities.add[0]"] || hints["spec.containers[0].securityContext.capabilities.add[0]"] {
		t.Errorf("the kubectl debug hint: %v", hints)
	}
}
