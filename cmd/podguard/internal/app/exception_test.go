package app_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestExceptionCreateFromDenial: the exceptions written from a manifest's
// denials make validate --exceptions admit it; rules the policy keeps out
// of reach are named, not excepted; a hand-written exception the policy
// does not allow is ignored with a note.
func TestExceptionCreateFromDenial(t *testing.T) {
	argo := filepath.Join("testdata", "corpus", "argoproj__argo-cd__install.yaml")
	dir := t.TempDir()
	r := podguard(t, "", "exception", "create", "--from-denial", "-f", argo, "-n", "argocd", "--reason", "images built for their own users", "--expires", "30d")
	if r.code != 0 || strings.Count(r.out, "kind: PodGuardException") != 2 {
		t.Fatalf("exception create: exit %d\n%s%s", r.code, r.out, r.err)
	}
	exceptions := write(t, dir, "exceptions.yaml", r.out)
	before, _ := judge(t, "validate", "--mutate", "--target-namespace", "argocd", "-f", argo)
	after, run := judge(t, "validate", "--mutate", "--target-namespace", "argocd", "--exceptions", exceptions, "-f", argo)
	if len(deniedNames(before)) != 2 || len(deniedNames(after)) != 0 || run.code != 0 {
		t.Errorf("denied before %v, after %v (exit %d)\n%s", deniedNames(before), deniedNames(after), run.code, run.err)
	}
	var rep struct {
		Results []struct {
			Name     string
			Exempted []struct{ Rule, Exception string }
		}
	}
	_ = json.Unmarshal([]byte(run.out), &rep)
	named := 0
	for _, res := range rep.Results {
		for _, x := range res.Exempted {
			if x.Exception == "argocd/deployment-"+res.Name {
				named++
			}
		}
	}
	if named != 2 {
		t.Errorf("the results do not name the exceptions that applied (%d of 2)", named)
	}
	// In another namespace the same exceptions do nothing.
	if other, _ := judge(t, "validate", "--mutate", "--target-namespace", "shop", "--exceptions", exceptions, "-f", argo); len(deniedNames(other)) != 2 {
		t.Errorf("exceptions of argocd applied in shop: denied %v", deniedNames(other))
	}
	// Out of reach: capabilities is a PSS baseline rule.
	cass := filepath.Join(filepath.Dir(argo), "kubernetes__examples__cassandra-statefulset.yaml")
	if r := podguard(t, "", "exception", "create", "--from-denial", "-f", cass, "-n", "db", "--reason", "x"); r.code != 1 || !strings.Contains(r.err, "does not let capabilities be excepted") {
		t.Errorf("a baseline rule: exit %d\n%s%s", r.code, r.out, r.err)
	}
	bad := write(t, dir, "bad.yaml", `apiVersion: podguard.dev/v1alpha1
kind: PodGuardException
metadata: {name: priv, namespace: argocd}
spec:
  rules: [privileged]
  workloads: [{kind: Deployment, name: argocd-redis}]
  reason: please
  expires: "2027-01-01"
`)
	if r := podguard(t, "", "validate", "--exceptions", bad, "-f", argo, "--target-namespace", "argocd"); !strings.Contains(r.err, "PodGuardException argocd/priv is ignored") {
		t.Errorf("an exception the policy does not allow is not reported as ignored:\n%s", r.err)
	}
	typo := write(t, dir, "typo.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: PodGuardException\nmetadata: {name: x, namespace: a}\nspec:\n  rulez: [runAsUser]\n")
	if r := podguard(t, "", "validate", "--exceptions", typo, "-f", argo); r.code != 2 || !strings.Contains(r.err, "rulez") || !strings.Contains(r.err, "typo.yaml") {
		t.Errorf("an unknown field in an exception: exit %d\n%s", r.code, r.err)
	}
}
