package app_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The corpus holds 25 public manifests (Apache-2.0; sources, licences and
// expected verdicts in testdata/corpus/SOURCES.md). Verdicts are for a
// policy without exemptions, as SOURCES.md states them.
var corpus = []struct {
	file string
	// objects is the number of judged (pod-bearing) objects.
	objects int
	// deniedAsGiven and deniedAfter count denied objects without and with --mutate.
	deniedAsGiven, deniedAfter int
	// deniedNamesAfter, when set, are the objects still denied after mutation.
	deniedNamesAfter []string
	// warnRules must appear among the warnings (as given).
	warnRules map[string]int
}{
	{file: "GoogleCloudPlatform__microservices-demo__kubernetes-manifests.yaml", objects: 12, deniedAsGiven: 12, deniedAfter: 0},
	{file: "kubernetes__examples__guestbook-all-in-one.yaml", objects: 3, deniedAsGiven: 3, deniedAfter: 0, warnRules: map[string]int{"readOnlyRootFilesystem": 3, "probes": 6}},
	{file: "kubernetes__examples__cassandra-statefulset.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 1},
	{file: "kubernetes__examples__mysql-galera-pxc-node1.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0, warnRules: map[string]int{"secretsInEnv": 3, "readOnlyRootFilesystem": 1, "probes": 2}},
	{file: "kubernetes__examples__mysql-cinder-pd.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 1, warnRules: map[string]int{"secretsInEnv": 1, "imageTag": 1}},
	{file: "kubernetes__examples__meteor-controller.json", objects: 1, deniedAsGiven: 1, deniedAfter: 0, warnRules: map[string]int{"imageTag": 1}},
	{file: "kubernetes__examples__newrelic-infra-daemonset.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 1},
	{file: "kubernetes-sigs__metrics-server__base-deployment.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0},
	{file: "kubernetes__ingress-nginx__deploy-cloud.yaml", objects: 3, deniedAsGiven: 3, deniedAfter: 3},
	{file: "cert-manager__cert-manager__cert-manager-v0.6.yaml", objects: 4, deniedAsGiven: 4, deniedAfter: 0},
	{file: "argoproj__argo-cd__install.yaml", objects: 7, deniedAsGiven: 7, deniedAfter: 2, deniedNamesAfter: []string{"argocd-dex-server", "argocd-redis"}, warnRules: map[string]int{"imageTag": 8}},
	{file: "prometheus-operator__kube-prometheus__nodeExporter-daemonset.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 1},
	{file: "kubernetes__kube-state-metrics__deployment.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 1},
	{file: "kubernetes-sigs__descheduler__cronjob.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0},
	{file: "istio__istio__pod-injected.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 1},
	{file: "kubernetes-sigs__sig-windows-tools__kube-proxy-windows.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 1},
	{file: "kubernetes__kubernetes__pss-restricted-base.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0},
	{file: "kubernetes__kubernetes__pss-restricted-base-windows.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0},
	{file: "kubernetes__kubernetes__list.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0, warnRules: map[string]int{"imageTag": 1}},
	{file: "kubernetes__kubernetes__multi-resource-rclist.json", objects: 2, deniedAsGiven: 2, deniedAfter: 0},
	{file: "kubernetes__kubernetes__frontend-replicaset.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0},
	{file: "kubernetes__kubernetes__pod-restricted-runtime-default.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0, warnRules: map[string]int{"imageTag": 1, "readOnlyRootFilesystem": 1}},
	{file: "kubernetes__pod-security-admission__webhook-deployment.yaml", objects: 1, deniedAsGiven: 1, deniedAfter: 0},
	{file: "kyverno__policies__block-ephemeral-containers.yaml", objects: 6, deniedAsGiven: 6, deniedAfter: 0},
	{file: "open-policy-agent__gatekeeper__gatekeeper.yaml", objects: 2, deniedAsGiven: 2, deniedAfter: 2},
}

type jsonReport struct {
	Results []struct {
		Source, Kind, Name, Namespace string
		Allowed                       bool
		Violations, Warnings          []struct{ Rule, Field, Message, Fix string }
		Exempted                      []struct{ Rule, Reason string }
	}
}

func judge(t *testing.T, args ...string) (jsonReport, run) {
	t.Helper()
	r := podguard(t, "", append(args, "-o", "json")...)
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, r.err)
	}
	return rep, r
}

func deniedNames(rep jsonReport) []string {
	var out []string
	for _, res := range rep.Results {
		if !res.Allowed {
			out = append(out, res.Name)
		}
	}
	slices.Sort(out)
	return out
}

func TestCorpus(t *testing.T) {
	dir := t.TempDir()
	noExemptions := write(t, dir, "policy.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions: []\n")
	files, _ := filepath.Glob("testdata/corpus/*.*")
	if len(files) != 26 || len(corpus) != 25 {
		t.Fatalf("corpus has %d files (want 25 manifests and SOURCES.md), table %d rows", len(files), len(corpus))
	}
	for _, c := range corpus {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata/corpus", c.file)
			rep, r := judge(t, "validate", "--policy", noExemptions, "-f", path)
			if r.err != "" {
				t.Errorf("read with messages: %s", r.err)
			}
			if len(rep.Results) != c.objects {
				t.Errorf("%d objects judged, want %d", len(rep.Results), c.objects)
			}
			if n := len(deniedNames(rep)); n != c.deniedAsGiven {
				t.Errorf("%d denied as given, want %d", n, c.deniedAsGiven)
			}
			if want := map[bool]int{true: 1, false: 0}[c.deniedAsGiven > 0]; r.code != want {
				t.Errorf("exit %d as given, want %d", r.code, want)
			}
			warn := map[string]int{}
			for _, res := range rep.Results {
				for _, w := range res.Warnings {
					warn[w.Rule]++
				}
				for _, v := range append(res.Violations, res.Warnings...) {
					if v.Fix == "" || v.Message == "" || !strings.HasPrefix(v.Field, "spec.") && !strings.HasPrefix(v.Field, "template.") && !strings.HasPrefix(v.Field, "metadata.") {
						t.Errorf("finding without fix or root path: %+v", v)
					}
				}
			}
			for rule, n := range c.warnRules {
				if warn[rule] != n {
					t.Errorf("%d %s warnings, want %d", warn[rule], rule, n)
				}
			}

			after, r := judge(t, "validate", "--mutate", "--policy", noExemptions, "-f", path)
			if got := deniedNames(after); len(got) != c.deniedAfter || (c.deniedNamesAfter != nil && !slices.Equal(got, c.deniedNamesAfter)) {
				t.Errorf("denied after mutation: %v, want %d %v", got, c.deniedAfter, c.deniedNamesAfter)
			}
			if want := map[bool]int{true: 1, false: 0}[c.deniedAfter > 0]; r.code != want {
				t.Errorf("exit %d after mutation, want %d", r.code, want)
			}

			// mutate output reads back and, where everything was fixable, passes.
			m := podguard(t, "", "mutate", "--policy", noExemptions, "-f", path)
			if m.code != 0 {
				t.Fatalf("mutate exit %d: %s", m.code, m.err)
			}
			out := write(t, dir, "out-"+c.file, m.out)
			again, r := judge(t, "validate", "--policy", noExemptions, "-f", out)
			if len(again.Results) != c.objects {
				t.Errorf("mutate output holds %d objects, want %d", len(again.Results), c.objects)
			}
			if n := len(deniedNames(again)); n != c.deniedAfter {
				t.Errorf("mutate output: %d denied, want %d (%v)", n, c.deniedAfter, deniedNames(again))
			}
		})
	}
}

// TestCorpusDefaultExemptions: under the default policy, kube-system
// objects are exempt and say so.
func TestCorpusDefaultExemptions(t *testing.T) {
	rep, r := judge(t, "validate", "-f", "testdata/corpus/kubernetes__kube-state-metrics__deployment.yaml")
	if r.code != 0 || len(rep.Results) != 1 || !rep.Results[0].Allowed || len(rep.Results[0].Exempted) == 0 {
		t.Errorf("kube-system object: exit %d %+v", r.code, rep.Results)
	}
}

// TestSecretDetectorsOnCorpus pins the false-positive count of the
// secretsInEnv detectors on real manifests (the README reports it): over
// every env value, command and arg of the 25 corpus manifests they find
// exactly these four, each a true positive, a database password written
// into the manifest ("change this", "sst", "mysql", "c-krit").
func TestSecretDetectorsOnCorpus(t *testing.T) {
	rep, _ := judge(t, "validate", "-f", "testdata/corpus")
	var got []string
	for _, res := range rep.Results {
		for _, f := range append(res.Violations, res.Warnings...) {
			if f.Rule == "secretsInEnv" {
				got = append(got, filepath.Base(strings.Split(res.Source, "#")[0])+" "+f.Field)
			}
		}
	}
	want := []string{
		"kubernetes__examples__mysql-cinder-pd.yaml spec.containers[0].env[0].value",
		"kubernetes__examples__mysql-galera-pxc-node1.yaml spec.template.spec.containers[0].env[3].value",
		"kubernetes__examples__mysql-galera-pxc-node1.yaml spec.template.spec.containers[0].env[5].value",
		"kubernetes__examples__mysql-galera-pxc-node1.yaml spec.template.spec.containers[0].env[6].value",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("secretsInEnv findings on the corpus:\n got  %q\n want %q", got, want)
	}
}
