package charts

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
)

// TestExemptUsersAreCELLiterals: webhook.exemptUsers reaches the webhooks'
// matchConditions as CEL string literals: a user name with a quote, a
// backslash or a line break stays a name (the old template swapped JSON's
// double quotes for single ones, so a quote in a value ended the literal
// and the rest became CEL). Evaluated with cel-go, as kube-apiserver does.
func TestExemptUsersAreCELLiterals(t *testing.T) {
	users := []string{"system:serviceaccount:ci:deployer", "a'] || true || ['", `b\\c`, "line\nbreak", `it's`}
	js, _ := json.Marshal(users)
	out, stderr, err := helm(t, "template", "podguard", chart, "--set-json", "webhook.exemptUsers="+string(js), "--show-only", "templates/webhooks.yaml")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	var exprs []string
	for _, o := range objects(t, out) {
		hooks, _ := o["webhooks"].([]any)
		for _, h := range hooks {
			for _, mc := range h.(map[string]any)["matchConditions"].([]any) {
				exprs = append(exprs, mc.(map[string]any)["expression"].(string))
			}
		}
	}
	if len(exprs) != 2 {
		t.Fatalf("%d matchConditions, want one per webhook:\n%s", len(exprs), out)
	}
	env, err := cel.NewEnv(cel.Variable("request", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range exprs {
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatalf("%q does not compile: %v", expr, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range append(users, "mallory", "a", "") {
			v, _, err := prg.Eval(map[string]any{"request": map[string]any{"userInfo": map[string]any{"username": u}}})
			if err != nil {
				t.Fatalf("%q with user %q: %v", expr, u, err)
			}
			exempt := v.Value() == false
			want := false
			for _, x := range users {
				want = want || x == u
			}
			if exempt != want {
				t.Errorf("user %q: exempt %v, want %v (expression %s)", u, exempt, want, expr)
			}
		}
		if strings.Contains(expr, "|| true") && !strings.Contains(expr, `'a\'] || true || [\''`) {
			t.Errorf("a value became CEL: %s", expr)
		}
	}
}
