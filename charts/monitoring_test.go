package charts

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/webhook"
)

// monitoringSets render the PrometheusRule and the dashboard.
var monitoringSets = []string{"prometheusRule.enabled=true", "grafana.dashboards.enabled=true", "metrics.serviceMonitor.enabled=true"}

// queries returns every PromQL expression of the rendered PrometheusRule
// (by alert name) and dashboard (by panel title), and the rule groups.
func queries(t *testing.T) (map[string]string, []any) {
	t.Helper()
	args := append(append([]string{"template", "podguard", chart, "-n", "podguard", "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"}, apiVersions...), setArgs(monitoringSets)...)
	out, stderr, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	qs := map[string]string{}
	var groups []any
	for _, o := range objects(t, out) {
		switch o["kind"] {
		case "PrometheusRule":
			groups = o["spec"].(map[string]any)["groups"].([]any)
			for _, g := range groups {
				for _, r := range g.(map[string]any)["rules"].([]any) {
					r := r.(map[string]any)
					qs["alert "+r["alert"].(string)] = r["expr"].(string)
				}
			}
		case "ConfigMap":
			data, _ := o["data"].(map[string]any)
			raw, ok := data["podguard.json"].(string)
			if !ok {
				continue
			}
			var dash struct {
				Panels []struct {
					Title   string
					Targets []struct{ Expr string }
				}
				Templating struct {
					List []struct {
						Name  string
						Query any
					}
				}
			}
			if err := json.Unmarshal([]byte(raw), &dash); err != nil {
				t.Fatalf("the dashboard is not JSON: %v", err)
			}
			for _, p := range dash.Panels {
				for i, tg := range p.Targets {
					qs[fmt.Sprintf("panel %q #%d", p.Title, i)] = tg.Expr
				}
			}
			for _, v := range dash.Templating.List {
				if q, ok := v.Query.(map[string]any); ok {
					qs["variable "+v.Name] = strings.TrimSuffix(strings.TrimPrefix(q["query"].(string), "label_values("), ")")
				}
			}
		}
	}
	if len(groups) == 0 || len(qs) < 20 {
		t.Fatalf("rendered %d rule groups and %d queries", len(groups), len(qs))
	}
	return qs, groups
}

// targetLabels are the labels Prometheus (the Operator's ServiceMonitor)
// adds to every scraped series; synthetic are series Prometheus makes.
var (
	targetLabels = map[string]bool{"job": true, "namespace": true, "pod": true, "instance": true, "service": true, "endpoint": true, "container": true}
	synthetic    = map[string]bool{"up": true}
)

var (
	metricRE   = regexp.MustCompile(`\b((?:podguard|apiserver|process)_[a-z0-9_]+|up)\b(\{[^}]*\})?`)
	labelRE    = regexp.MustCompile(`([a-z_]+)\s*(=~|!=|!~|=)`)
	groupingRE = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// TestDashboardAndAlertsNameRealMetrics scrapes a running podguard (with
// the background audit, after admission requests, a refused request and a
// report write) and kube-apiserver, and fails on any alert or dashboard
// query naming a metric, or a label of it, that neither exports.
func TestDashboardAndAlertsNameRealMetrics(t *testing.T) {
	qs, _ := queries(t)
	env := testenv.StartT(t, nil)
	crds, err := testenv.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join(crds, "openreports.io_reports.yaml")}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	ca, err := testenv.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(filepath.Join(dir, "certs")); err != nil {
		t.Fatal(err)
	}
	o := webhook.DefaultOptions()
	o.CertMode, o.CertDir, o.Kubeconfig = webhook.CertModeDir, filepath.Join(dir, "certs"), env.Kubeconfig
	o.Port, _ = testenv.FreePort()
	mp, _ := testenv.FreePort()
	hp, _ := testenv.FreePort()
	o.MetricsBindAddress, o.HealthProbeBindAddress = fmt.Sprintf("127.0.0.1:%d", mp), fmt.Sprintf("127.0.0.1:%d", hp)
	o.ShutdownDelay = 0
	// An expiring exemption, so podguard_exemption_expiry_timestamp_seconds
	// has a series to scrape.
	o.PolicyFile = filepath.Join(dir, "policy.yaml")
	policy := fmt.Sprintf("apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions:\n- reason: kube-system\n  namespaces: [kube-system]\n"+
		"- reason: a trial\n  namespaces: [trial]\n  expires: %q\n", time.Now().Add(30*24*time.Hour).UTC().Format(time.DateOnly))
	if err := os.WriteFile(o.PolicyFile, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testenv.InstallWebhooks(ctx, env.Clientset, "../config/webhook/manifests.yaml", fmt.Sprintf("https://127.0.0.1:%d", o.Port), ca.PEM); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- webhook.Run(runCtx, o, zap.New(zap.WriteTo(io.Discard))) }()
	defer func() { stop(); <-done }()
	// Admission through the API server: a pod filled in, a pod denied.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		_, err := env.Clientset.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ok"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c:1"}}}}, metav1.CreateOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("podguard does not serve: %v", err)
		}
	}
	priv := true
	if _, err := env.Clientset.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c:1", SecurityContext: &corev1.SecurityContext{Privileged: &priv}}}}}, metav1.CreateOptions{}); err == nil {
		t.Fatal("a privileged pod was admitted")
	}
	// A refused request, straight to the webhook.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	if resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/validate", o.Port), "application/json", strings.NewReader("{")); err == nil {
		resp.Body.Close()
	}
	scrape := func() map[string]map[string]bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mp))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		fams := parseExposition(t, resp.Body)
		raw, err := env.Clientset.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range parseExposition(t, strings.NewReader(string(raw))) {
			fams[k] = v
		}
		return fams
	}
	var fams map[string]map[string]bool
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		fams = scrape()
		if fams["podguard_audit_report_writes_total"] != nil && fams["podguard_audit_last_run_timestamp_seconds"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background audit wrote no report within a minute")
		}
	}
	names := make([]string, 0, len(qs))
	for n := range qs {
		names = append(names, n)
	}
	sort.Strings(names)
	checked := 0
	for _, name := range names {
		q := qs[name]
		var metrics []string
		for _, m := range metricRE.FindAllStringSubmatch(q, -1) {
			metric, matchers := m[1], m[2]
			metrics = append(metrics, metric)
			if synthetic[metric] {
				continue
			}
			labels, ok := fams[metric]
			if !ok {
				t.Errorf("%s names %s, which neither podguard nor kube-apiserver exports: %s", name, metric, q)
				continue
			}
			checked++
			for _, l := range labelRE.FindAllStringSubmatch(matchers, -1) {
				if !labels[l[1]] && !targetLabels[l[1]] {
					t.Errorf("%s matches label %s, which %s does not carry: %s", name, l[1], metric, q)
				}
			}
		}
		// Grouping labels must exist on at least one metric of the query.
		for _, g := range groupingRE.FindAllStringSubmatch(q, -1) {
			for _, l := range strings.Split(g[1], ",") {
				l = strings.TrimSpace(l)
				found := targetLabels[l]
				for _, m := range metrics {
					found = found || fams[m][l]
				}
				if !found {
					t.Errorf("%s groups by %s, which none of %v carries: %s", name, l, metrics, q)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d metric references checked", checked)
	}
}

// parseExposition reads the Prometheus text format into metric name →
// label names ("le" for histogram buckets included).
func parseExposition(t *testing.T, r io.Reader) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		if i := strings.IndexByte(name, ' '); i >= 0 {
			name, rest = name[:i], ""
		}
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		for _, l := range labelRE.FindAllStringSubmatch(strings.SplitN(rest, "}", 2)[0], -1) {
			out[name][l[1]] = true
		}
	}
	return out
}

// TestAlertRules runs the rendered alert rules through promtool (built
// from the Prometheus Go module by hack/tools.sh): they parse, and each
// alert fires on the series that should fire it, and only then.
func TestAlertRules(t *testing.T) {
	promtool, err := testenv.Promtool()
	if err != nil {
		t.Fatal(err)
	}
	_, groups := queries(t)
	dir := t.TempDir()
	rules, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", filepath.Join(dir, "rules.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, err := os.ReadFile("testdata/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	// Every alert has a test.
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			name := r.(map[string]any)["alert"].(string)
			if !strings.Contains(string(tests), "alertname: "+name) {
				t.Errorf("alert %s has no promtool test in testdata/alerts_test.yaml", name)
			}
		}
	}
}
