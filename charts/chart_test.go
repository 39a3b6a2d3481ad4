// Package charts holds podguard's Helm chart; this file tests it with the
// real helm, the real kubectl and a real kube-apiserver.
package charts

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/native"
)

var updateKustomize = flag.Bool("update-kustomize", false, "regenerate config/{rbac,manager,optout} from the chart")

const chart = "podguard"

// combos are the value combinations every check runs over.
var combos = map[string][]string{
	"default":          nil,
	"cert-manager":     {"certificates.mode=cert-manager"},
	"cert-manager-ref": {"certificates.mode=cert-manager", "certificates.certManager.issuerRef.name=corp-ca", "certificates.certManager.issuerRef.kind=ClusterIssuer"},
	"secret":           {"certificates.mode=secret", "certificates.secretName=podguard-tls", "certificates.caBundle=-----BEGIN CERTIFICATE-----"},
	"ignore":           {"webhook.failurePolicy=Ignore", "webhook.timeoutSeconds=3"},
	"monitoring": {"metrics.serviceMonitor.enabled=true", "networkPolicy.enabled=true", "networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/8",
		"prometheusRule.enabled=true", "grafana.dashboards.enabled=true"},
	"minimal":      {"metrics.enabled=false", "podDisruptionBudget.enabled=false", "optOutPolicy.enabled=false", "replicaCount=1"},
	"exempt-users": {"webhook.exemptUsers[0]=system:serviceaccount:ci:deployer", "priorityClassName=system-cluster-critical"},
	"native":       {"nativePolicies.enabled=true"},
	"backstop":     {"nativePolicies.backstop=true"},
	"audit-off":    {"audit.enabled=false", "audit.readerClusterRole=false"},
	"audit-crds":   {"audit.installCRDs=true", "audit.interval=30m"},
	"registries":   {"registries.authSecrets[0]=pull-secret", "registries.authSecrets[1]=mirror-pull", "registries.caConfigMap=registry-ca", "registries.podPullSecrets=true"},
	"conventions": {"image.registry=registry.example.com:5000", "image.repository=platform/podguard", "commonLabels.team=platform",
		"commonAnnotations.owner=platform-team", "extraArgs[0]=--log-decisions=denied", "extraEnv[0].name=GODEBUG", "extraEnv[0].value=madvdontneed=1",
		"extraVolumes[0].name=extra", "extraVolumes[0].emptyDir.sizeLimit=1Mi", "extraVolumeMounts[0].name=extra", "extraVolumeMounts[0].mountPath=/extra",
		"revisionHistoryLimit=3", "webhook.port=10250", "webhook.mutating.failurePolicy=Ignore", "webhook.validating.timeoutSeconds=3",
		"webhook.validating.namespaceSelectorExpressions[0].key=team", "webhook.validating.namespaceSelectorExpressions[0].operator=Exists"},
}

// apiVersions are the CRD kinds the combos need the cluster to serve
// (helm template has no cluster to ask).
var apiVersions = []string{"--api-versions", "monitoring.coreos.com/v1/ServiceMonitor", "--api-versions", "monitoring.coreos.com/v1/PrometheusRule", "--api-versions", "cert-manager.io/v1/Certificate"}

func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	h, err := testenv.HelmPath()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(h, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func setArgs(sets []string) []string {
	var out []string
	for _, s := range sets {
		out = append(out, "--set", s)
	}
	return out
}

func render(t *testing.T, sets []string) string {
	t.Helper()
	out, stderr, err := helm(t, append(append([]string{"template", "podguard", chart, "-n", "podguard"}, apiVersions...), setArgs(sets)...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", sets, err, stderr)
	}
	return out
}

type object = map[string]any

func objects(t *testing.T, manifests string) []object {
	t.Helper()
	var out []object
	for _, doc := range strings.Split(manifests, "\n---") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if len(o) > 0 {
			out = append(out, o)
		}
	}
	return out
}

func kindName(o object) string {
	md, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%s/%s", o["kind"], md["name"])
}

func TestLintAndTemplate(t *testing.T) {
	for name, sets := range combos {
		t.Run(name, func(t *testing.T) {
			// helm lint cannot be told which CRDs a cluster serves, so the
			// combos that need one are only rendered (with --api-versions).
			all := strings.Join(sets, " ")
			needsCRD := strings.Contains(all, "serviceMonitor.enabled=true") || strings.Contains(all, "prometheusRule.enabled=true") || strings.Contains(all, "cert-manager")
			if out, stderr, err := helm(t, append([]string{"lint", "--strict", chart}, setArgs(sets)...)...); err != nil && !needsCRD {
				t.Fatalf("helm lint: %v\n%s%s", err, out, stderr)
			}
			objs := objects(t, render(t, sets))
			kinds := map[string]bool{}
			for _, o := range objs {
				kinds[o["kind"].(string)] = true
			}
			for _, k := range []string{"Deployment", "Service", "ConfigMap", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
				if !kinds[k] {
					t.Errorf("no %s rendered", k)
				}
			}
		})
	}
}

func TestSchemaRefusesBadValues(t *testing.T) {
	_, stderr, err := helm(t, "template", "podguard", chart, "-f", "testdata/bad-values.yaml")
	if err == nil || !strings.Contains(stderr, "values don't meet the specifications of the schema") {
		t.Fatalf("a bad values file was accepted: %s", stderr)
	}
	// Each mistake alone is refused with its path named, by template and install alike.
	for set, path := range map[string]string{
		"replicaCount=0":                           "/replicaCount",
		"webhook.failurePolicy=Sometimes":          "/webhook/failurePolicy",
		"certificates.mode=letsencrypt":            "/certificates/mode",
		"resources.limits.memory=null":             "/resources/limits",
		"webhook.timeoutSeconds=60":                "/webhook/timeoutSeconds",
		"image.digest=latest":                      "/image/digest",
		"certificates.builtin.renewBefore=90 days": "/certificates/builtin/renewBefore",
		"unknownTopLevel=1":                        "unknownTopLevel",
	} {
		_, stderr, err := helm(t, "template", "podguard", chart, "--set", set)
		if err == nil || !strings.Contains(stderr, path) {
			t.Errorf("helm template --set %s: err=%v, the refusal does not name %s:\n%s", set, err, path, stderr)
		}
	}
	// Values that would break podguard's own default policy are refused,
	// naming the value and the rule.
	for set, want := range map[string]string{
		"podSecurityContext.runAsUser=2000":             "podSecurityContext.runAsUser must be 1000 (runAsUser)",
		"hostNetwork=true":                              "hostNetwork: true (hostNamespaces)",
		"securityContext.allowPrivilegeEscalation=true": "/securityContext/allowPrivilegeEscalation",
		"securityContext.capabilities.add[0]=NET_ADMIN": "/securityContext/capabilities/add",
	} {
		_, stderr, err := helm(t, "template", "podguard", chart, "--set", set)
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("helm template --set %s: err=%v, want %q:\n%s", set, err, want, stderr)
		}
	}
	// A ServiceMonitor or cert-manager certificates without their CRDs fail
	// with a message naming the missing CRD.
	for set, want := range map[string]string{
		"metrics.serviceMonitor.enabled=true": "needs the Prometheus Operator's ServiceMonitor CRD (monitoring.coreos.com/v1 ServiceMonitor)",
		"certificates.mode=cert-manager":      "needs cert-manager's CRDs (cert-manager.io/v1 Certificate and Issuer)",
	} {
		_, stderr, err := helm(t, "template", "podguard", chart, "--set", set)
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("helm template --set %s without the CRD: err=%v:\n%s", set, err, stderr)
		}
	}
	// The secret mode needs its Secret and CA bundle named.
	if _, stderr, err := helm(t, "template", "podguard", chart, "--set", "certificates.mode=secret"); err == nil || !strings.Contains(stderr, "secretName") {
		t.Errorf("secret mode without a secret accepted: %s", stderr)
	}
}

// TestChartWorkloadsComply runs the real podguard binary over every rendered
// variant: the add-on complies with its own default policy, without a warning.
func TestChartWorkloadsComply(t *testing.T) {
	bin := testenv.PodguardBinary(t)
	for name, sets := range combos {
		f := filepath.Join(t.TempDir(), name+".yaml")
		rendered := render(t, sets)
		if err := os.WriteFile(f, []byte(rendered), 0o644); err != nil {
			t.Fatal(err)
		}
		workloads := strings.Count(rendered, "\nkind: Deployment\n") + strings.Count(rendered, "\nkind: Job\n")
		want := fmt.Sprintf("%d objects judged, 0 denied (0 violations), %d allowed, 0 warnings", workloads, workloads)
		if workloads == 1 {
			want = "1 object judged, 0 denied (0 violations), 1 allowed, 0 warnings"
		}
		out, err := exec.Command(bin, "validate", "-f", f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%s: podguard validate: %v, want %q\n%s", name, err, want, out)
		}
	}
}

// normalize drops what only Helm adds (its labels) so chart and kustomize
// objects compare equal.
func normalize(o object) object {
	md := o["metadata"].(map[string]any)
	if labels, ok := md["labels"].(map[string]any); ok {
		for _, k := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"} {
			delete(labels, k)
		}
		if len(labels) == 0 {
			delete(md, "labels")
		}
	}
	delete(md, "namespace")
	return o
}

// TestKustomizeMatchesChart: config/default holds the same objects as the
// chart with default values, so users without Helm get the same add-on.
func TestKustomizeMatchesChart(t *testing.T) {
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	rendered := render(t, nil)
	if *updateKustomize {
		regenerate(t, rendered)
	}
	out, err := exec.Command(filepath.Join(assets, "kubectl"), "kustomize", "../config/default").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	fromKustomize := map[string]object{}
	for _, o := range objects(t, string(out)) {
		if o["kind"] == "Namespace" {
			continue
		}
		fromKustomize[kindName(o)] = normalize(o)
	}
	fromChart := map[string]object{}
	for _, o := range objects(t, rendered) {
		if isHook(o) {
			continue // kubectl apply has no hooks: README says to run podguard policy check first
		}
		fromChart[kindName(o)] = normalize(o)
	}
	var names []string
	for n := range fromChart {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k, ok := fromKustomize[n]
		if !ok {
			t.Errorf("%s is in the chart, not in config/default", n)
			continue
		}
		if !reflect.DeepEqual(k, fromChart[n]) {
			a, _ := yaml.Marshal(fromChart[n])
			b, _ := yaml.Marshal(k)
			t.Errorf("%s differs (go test ./charts -update-kustomize regenerates config/)\n--- chart\n%s--- kustomize\n%s", n, a, b)
		}
		delete(fromKustomize, n)
	}
	for n := range fromKustomize {
		t.Errorf("%s is in config/default, not in the chart", n)
	}
}

// isHook reports whether o is a Helm hook (the policy check), which only
// Helm runs.
func isHook(o object) bool {
	md, _ := o["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	_, ok := ann["helm.sh/hook"]
	return ok
}

// regenerate rewrites config/{rbac,manager,optout} from the chart. The
// webhook configurations (config/webhook) are kept by hand: the tests
// install them, and the comparison above keeps them equal to the chart's.
func regenerate(t *testing.T, rendered string) {
	groups := map[string][]string{
		"rbac":    {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"},
		"manager": {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"},
		"optout":  {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"},
		"crd":     {"CustomResourceDefinition"},
	}
	for dir, kinds := range groups {
		var b strings.Builder
		b.WriteString("# Generated from the Helm chart (helm template podguard charts/podguard -n podguard);\n# a test checks the two stay the same. Edit the chart, then run: go test ./charts -update-kustomize\n")
		for _, o := range objects(t, rendered) {
			for _, k := range kinds {
				if o["kind"] == k && !isHook(o) {
					y, _ := yaml.Marshal(normalize(o))
					b.WriteString("---\n")
					b.Write(y)
				}
			}
		}
		if err := os.WriteFile(filepath.Join("..", "config", dir, dir+".yaml"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServerDryRun applies every rendered variant, and the kustomize
// build, to a real kube-apiserver with server-side dry run: the API
// server's own validation must accept every object.
func TestServerDryRun(t *testing.T) {
	env := testenv.StartT(t, nil)
	kubectl := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(env.Kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The real CRDs, so the API server checks the ServiceMonitor,
	// PrometheusRule, Certificate and Issuer against their schemas.
	crds, err := testenv.AddonCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl("", "apply", "--server-side", "-f", crds); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := kubectl("", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := kubectl("", "create", "namespace", "podguard"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The schemas are real: a field the Prometheus Operator does not know is
	// refused (kubectl validates strictly), so the chart's fields are checked.
	bogus := "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x, namespace: podguard}\n" +
		"spec:\n  selector: {}\n  endpoints:\n  - port: metrics\n    tlsConfig: {insecureSkipVerifyy: true}\n"
	if out, err := kubectl(bogus, "apply", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, "insecureSkipVerifyy") {
		t.Errorf("a ServiceMonitor with an unknown field was accepted: the CRD schema is not checked:\n%s", out)
	}
	for name, sets := range combos {
		out, err := kubectl(render(t, sets), "apply", "--dry-run=server", "-n", "podguard", "-f", "-")
		if err != nil {
			t.Errorf("%s: the API server refused the chart:\n%s", name, out)
		}
	}
	out, err := kubectl("", "apply", "--dry-run=server", "-k", "../config/default")
	if err != nil {
		t.Errorf("the API server refused config/default:\n%s", out)
	}
}

// TestInstallUninstall installs the chart with helm into a real API server
// and uninstalls it: nothing may be left behind, above all no webhook
// configuration that would block the cluster.
func TestInstallUninstall(t *testing.T) {
	env := testenv.StartT(t, nil)
	kc := "--kubeconfig=" + env.Kubeconfig
	hooks := runHookJobs(t, env)
	// helm install refuses values that break the schema before touching the cluster.
	if _, stderr, err := helm(t, "install", "podguard", chart, "-n", "podguard", "--create-namespace", "-f", "testdata/bad-values.yaml", kc); err == nil ||
		!strings.Contains(stderr, "values don't meet the specifications of the schema") {
		t.Fatalf("helm install accepted bad values: %s", stderr)
	}
	// A misspelled rule is refused by the schema, naming it.
	if _, stderr, err := helm(t, "install", "podguard", chart, "-n", "podguard", "--create-namespace", "--set", "policy.rules.runAsUsr.action=warn", kc); err == nil ||
		!strings.Contains(stderr, "runAsUsr") {
		t.Fatalf("helm install accepted a misspelled rule: %s", stderr)
	}
	if left := leftovers(t, env); len(left) > 0 {
		t.Fatalf("a refused install left %v", left)
	}
	// A policy of the right shape that podguard refuses fails the install
	// at the policy-check hook, before any webhook configuration exists.
	badPolicy := "policy.exceptions.maxDuration=forever"
	_, stderr, err := helm(t, "install", "bad", chart, "-n", "bad", "--create-namespace", "--set", badPolicy, kc)
	if err == nil || !strings.Contains(stderr, "policy-check") {
		t.Fatalf("helm install with a policy podguard refuses: err=%v\n%s", err, stderr)
	}
	if out := hooks.output("bad/bad-podguard-policy-check"); !strings.Contains(out, "maxDuration") {
		t.Errorf("the policy check did not name the problem:\n%s", out)
	}
	if vw, err := env.Clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(context.Background(), metav1ListOptions()); err != nil || len(vw.Items) > 0 {
		t.Errorf("a failed install registered webhooks: %v %v", err, vw)
	}
	if out, stderr, err := helm(t, "uninstall", "bad", "-n", "bad", kc); err != nil {
		t.Fatalf("helm uninstall of the failed release: %v\n%s%s", err, out, stderr)
	}
	if left := leftovers(t, env); len(left) > 0 {
		t.Fatalf("a refused install left %v", left)
	}
	// Security values that break the default policy are accepted only in a
	// release namespace opted out of podguard (looked up in the cluster).
	for ns, label := range map[string]string{"plain": "", "optedout": "podguard.dev/ignore=true"} {
		if out, err := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "create", "namespace", ns).CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if label != "" {
			if out, err := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "label", "namespace", ns, label).CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
		_, stderr, err := helm(t, "install", "custom", chart, "-n", ns, "--dry-run=server", "--set", "podSecurityContext.runAsUser=2000", "--set", "podSecurityContext.runAsGroup=2000", kc)
		if label == "" && (err == nil || !strings.Contains(stderr, "break podguard's own default policy")) {
			t.Errorf("runAsUser 2000 accepted in a namespace podguard judges: %v %s", err, stderr)
		}
		if label != "" && err != nil {
			t.Errorf("runAsUser 2000 refused in an opted-out namespace: %v %s", err, stderr)
		}
	}
	if out, stderr, err := helm(t, "install", "podguard", chart, "-n", "podguard", "--create-namespace", kc); err != nil {
		t.Fatalf("helm install: %v\n%s%s", err, out, stderr)
	} else if !strings.Contains(out, "Verify the installation") || !strings.Contains(out, "podguard audit -A") || !strings.Contains(out, "--clusterrole=podguard-audit-reader") ||
		!strings.Contains(out, "exec deploy/podguard -- /podguard policy check -f /etc/podguard/policy.yaml") {
		t.Errorf("NOTES do not tell how to verify the install:\n%s", out)
	}
	ctx := context.Background()
	cs := env.Clientset
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "podguard", metav1GetOptions()); err != nil {
		t.Fatalf("webhook configuration not installed: %v", err)
	}
	// An upgrade keeps the release working and does not touch the certificate Secret's data.
	sec, _ := cs.CoreV1().Secrets("podguard").Get(ctx, "podguard-webhook-cert", metav1GetOptions())
	sec.Data = map[string][]byte{"tls.crt": []byte("kept"), "tls.key": []byte("kept"), "ca.crt": []byte("kept")}
	if _, err := cs.CoreV1().Secrets("podguard").Update(ctx, sec, metav1UpdateOptions()); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := helm(t, "upgrade", "podguard", chart, "-n", "podguard", "--set", "logLevel=debug", kc); err != nil {
		t.Fatalf("helm upgrade: %v\n%s%s", err, out, stderr)
	}
	sec, _ = cs.CoreV1().Secrets("podguard").Get(ctx, "podguard-webhook-cert", metav1GetOptions())
	if string(sec.Data["tls.crt"]) != "kept" {
		t.Error("helm upgrade wiped the certificate Secret: certificates would be regenerated on every upgrade")
	}
	// An upgrade to a policy podguard refuses fails at the hook and leaves
	// the running release as it was: its policy, its Deployment, its webhooks.
	policyBefore, err := cs.CoreV1().ConfigMaps("podguard").Get(ctx, "podguard-policy", metav1GetOptions())
	if err != nil {
		t.Fatal(err)
	}
	deployBefore, err := cs.AppsV1().Deployments("podguard").Get(ctx, "podguard", metav1GetOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := helm(t, "upgrade", "podguard", chart, "-n", "podguard", "--set", badPolicy, kc); err == nil || !strings.Contains(stderr, "policy-check") {
		t.Errorf("helm upgrade to a policy podguard refuses: err=%v\n%s", err, stderr)
	}
	policyAfter, _ := cs.CoreV1().ConfigMaps("podguard").Get(ctx, "podguard-policy", metav1GetOptions())
	deployAfter, _ := cs.AppsV1().Deployments("podguard").Get(ctx, "podguard", metav1GetOptions())
	if policyAfter.ResourceVersion != policyBefore.ResourceVersion || deployAfter.Generation != deployBefore.Generation {
		t.Error("a failed upgrade changed the running release's policy or Deployment")
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "podguard", metav1GetOptions()); err != nil {
		t.Errorf("a failed upgrade removed the webhooks: %v", err)
	}
	if out, stderr, err := helm(t, "uninstall", "podguard", "-n", "podguard", "--wait", kc); err != nil {
		t.Fatalf("helm uninstall: %v\n%s%s", err, out, stderr)
	}
	left := leftovers(t, env)
	if len(left) > 0 {
		t.Errorf("left behind after uninstall: %v", left)
	}
}

// leftovers lists every object still labelled as the release's.
func leftovers(t *testing.T, env *testenv.Env) []string {
	t.Helper()
	out, err := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "get",
		"mutatingwebhookconfigurations,validatingwebhookconfigurations,validatingadmissionpolicies,validatingadmissionpolicybindings,clusterroles,clusterrolebindings,"+
			"deployments,services,configmaps,secrets,serviceaccounts,roles,rolebindings,poddisruptionbudgets,networkpolicies",
		"-A", "-l", "app.kubernetes.io/instance=podguard", "-o", "name").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func execKubectl(env *testenv.Env, stdin string, args ...string) *exec.Cmd {
	cmd := exec.Command(env.Kubectl, execKubectlCmd(env, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

var updateNative = flag.Bool("update-native", false, "regenerate podguard/files/native-policies.yaml with podguard export")

// nativePoliciesFile is the chart's copy of the default policy's export,
// with the release namespace and the webhooks' namespaceSelector left as
// placeholders for the template.
func nativePoliciesFile(t *testing.T) string {
	t.Helper()
	e, err := native.Build(load.Default("__RELEASE_NAMESPACE__"), native.Options{})
	if err != nil {
		t.Fatal(err)
	}
	y, err := e.YAML()
	if err != nil {
		t.Fatal(err)
	}
	// Bindings leave out what the webhooks leave out; the template fills in
	// the chart's own selector.
	s := strings.ReplaceAll(string(y), "\nspec:\n  policyName:", "\nspec:\n  matchResources:\n    namespaceSelector: __NAMESPACE_SELECTOR__\n  policyName:")
	return "# Generated by go test ./charts -update-native (podguard export of the default policy); do not edit.\n" + s
}

// TestNativePoliciesInSync keeps the chart's native policies equal to what
// podguard export writes today.
func TestNativePoliciesInSync(t *testing.T) {
	want := nativePoliciesFile(t)
	path := filepath.Join(chart, "files", "native-policies.yaml")
	if *updateNative {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s is stale (go test ./charts -update-native regenerates it): %v", path, err)
	}
	rendered := render(t, []string{"nativePolicies.enabled=true"})
	if strings.Contains(rendered, "__") {
		t.Error("a placeholder is left in the rendered native policies")
	}
	n := 0
	for _, o := range objects(t, rendered) {
		md, _ := o["metadata"].(map[string]any)
		if lbl, _ := md["labels"].(map[string]any); lbl["app.kubernetes.io/managed-by"] != "podguard-export" {
			continue
		}
		if o["kind"] == "ValidatingAdmissionPolicyBinding" || o["kind"] == "MutatingAdmissionPolicyBinding" {
			n++
			if !strings.Contains(fmt.Sprint(o["spec"]), "kubernetes.io/metadata.name") {
				t.Errorf("%s does not leave out the release namespace and kube-system", kindName(o))
			}
		}
	}
	if n == 0 {
		t.Error("nativePolicies.enabled renders no bindings")
	}
	if _, stderr, err := helm(t, "template", "podguard", chart, "--set", "nativePolicies.enabled=true", "--set", "policy.mode=warn"); err == nil || !strings.Contains(stderr, "podguard export --policy") {
		t.Errorf("nativePolicies with a custom policy must fail with a pointer to podguard export: %v %s", err, stderr)
	}
}

// TestReportCRDInSync: the chart's OpenReports CRD is the upstream
// project's (hack/tools.sh crds-dir fetches it from its Go module).
func TestReportCRDInSync(t *testing.T) {
	dir, err := testenv.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "openreports.io_reports.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(chart, "files", "crds", "openreports.io_reports.yaml"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("charts/podguard/files/crds/openreports.io_reports.yaml differs from the upstream module's (copy it from %s): %v", dir, err)
	}
}

// TestServiceMonitorVerifiesTheCertificate: by default Prometheus verifies
// the metrics endpoint with podguard's CA (the certificate Secret's ca.crt,
// or certificates.caBundle in a ConfigMap in secret mode) for the webhook
// Service's name; a tlsConfig given in values replaces that whole.
func TestServiceMonitorVerifiesTheCertificate(t *testing.T) {
	tlsOf := func(sets ...string) (map[string]any, []object) {
		objs := objects(t, render(t, append([]string{"metrics.serviceMonitor.enabled=true"}, sets...)))
		for _, o := range objs {
			if o["kind"] == "ServiceMonitor" {
				eps := o["spec"].(map[string]any)["endpoints"].([]any)
				tc, _ := eps[0].(map[string]any)["tlsConfig"].(map[string]any)
				return tc, objs
			}
		}
		t.Fatalf("no ServiceMonitor with %v", sets)
		return nil, nil
	}
	for _, mode := range []string{"builtin", "cert-manager"} {
		tc, _ := tlsOf("certificates.mode=" + mode)
		want := map[string]any{"serverName": "podguard-webhook.podguard.svc", "ca": map[string]any{"secret": map[string]any{"name": "podguard-webhook-cert", "key": "ca.crt"}}}
		if !reflect.DeepEqual(tc, want) {
			t.Errorf("%s: tlsConfig %v, want %v", mode, tc, want)
		}
	}
	tc, objs := tlsOf("certificates.mode=secret", "certificates.secretName=mine", "certificates.caBundle=-----BEGIN CERTIFICATE-----")
	if ca, _ := tc["ca"].(map[string]any); ca["configMap"] == nil || tc["insecureSkipVerify"] != nil {
		t.Errorf("secret mode: tlsConfig %v", tc)
	}
	found := false
	for _, o := range objs {
		if o["kind"] == "ConfigMap" && o["metadata"].(map[string]any)["name"] == "podguard-metrics-ca" {
			found = o["data"].(map[string]any)["ca.crt"] == "-----BEGIN CERTIFICATE-----"
		}
	}
	if !found {
		t.Error("secret mode: no ConfigMap podguard-metrics-ca with the caBundle")
	}
	if tc, _ := tlsOf("metrics.serviceMonitor.tlsConfig.insecureSkipVerify=true"); !reflect.DeepEqual(tc, map[string]any{"insecureSkipVerify": true}) {
		t.Errorf("a tlsConfig from values is not used as given: %v", tc)
	}
}
