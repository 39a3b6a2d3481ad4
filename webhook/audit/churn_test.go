package audit_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
)

// churnPods is how many Pods the churn test creates, and how fast.
const (
	churnPods      = 6000
	churnPerSecond = 300
	// churnGrowthMiB bounds what the audit's RSS grows by under churn,
	// above its own RSS once synced: the regression it guards against
	// grew by 200 MiB (263 MiB peak). An absolute bound (150 MiB) failed
	// on a machine where the idle process itself starts higher: the tree
	// from before image verification peaked at 151 MiB there from 58.
	churnGrowthMiB  = 100
	churnNamespaces = 3
)

// TestBackgroundAuditUnderChurn runs the background audit as the chart's
// audit Deployment does (the real binary, podguard serve --operation=audit)
// while 6,000 Pods are created through the API server at 300 a second in
// three namespaces, and states the process's peak RSS. A serving replica
// that ran the audit peaked at 263 MiB under this load (the chart's memory
// limit is 256Mi): each change re-judged its whole namespace from a fresh
// copy of every cached list, once a second. Now the audit reads the cache
// in place and judges a namespace at most every 5 s (or ten times its last
// judging), so the changes coalesce, and a report's results are built only
// while they fit its size cap (a namespace of 2,000 bare Pods has 16,000
// findings; building all of them to keep a thousand held most of the
// heap): 135 MiB measured.
func TestBackgroundAuditUnderChurn(t *testing.T) {
	env := testenv.StartT(t, nil)
	installCRD(t, env, "openreports.io_reports.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	health, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	cmd := exec.CommandContext(ctx, testenv.PodguardBinary(t), "serve", "--operation=audit", "--kubeconfig", env.Kubeconfig,
		"--metrics-bind-address=0", "--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(health), "--audit-interval=1h", "--shutdown-delay=0")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	eventually(t, 60*time.Second, "the audit's cache synced", func() (bool, string) {
		return strings.Contains(logs.String(), "scanned the cluster"), logs.String()
	})
	if strings.Contains(logs.String(), `"webhook":"127.0.0.1`) {
		t.Fatalf("an audit-only process serves the webhook:\n%s", logs.String())
	}
	base := testenv.RSSMiB(cmd.Process.Pid)

	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = churnPerSecond, churnPerSecond
	cfg.WarningHandler = rest.NoWarnings{}
	cs := kubernetes.NewForConfigOrDie(cfg)
	for i := range churnNamespaces {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	peak := testenv.PeakRSS(cmd.Process.Pid, stop)
	started := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= churnPods {
					return
				}
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Labels: map[string]string{"app": fmt.Sprintf("a%d", i%50)}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: fmt.Sprintf("registry.example/app-%d:1", i%50)}}}}
				if _, err := cs.CoreV1().Pods(fmt.Sprintf("churn-%d", i%churnNamespaces)).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	created := time.Since(started)
	// Every Pod ends up in its namespace's report: its summary counts the
	// failed findings, so many per Pod.
	e, err := policies.New(load.Default("podguard"))
	if err != nil {
		t.Fatal(err)
	}
	sample := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "churn-0"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app-0:1"}}}}
	res, err := e.Validate(sample, policies.Attributes{Namespace: "churn-0"})
	if err != nil {
		t.Fatal(err)
	}
	perPod := int64(len(res.Violations))
	dyn := dynamic.NewForConfigOrDie(env.Config)
	eventually(t, 90*time.Second, "every churned Pod in the reports", func() (bool, string) {
		total := int64(0)
		for i := range churnNamespaces {
			r, err := getReport(dyn, openReports, fmt.Sprintf("churn-%d", i))
			if err != nil {
				return false, err.Error()
			}
			n, _, _ := unstructured.NestedInt64(r.Object, "summary", "fail")
			total += n
		}
		want := (churnPods - failed.Load()) * perPod
		return total == want, fmt.Sprintf("%d of %d failed findings (%d a Pod) in the reports", total, want, perPod)
	})
	close(stop)
	top := <-peak
	t.Logf("%d Pods created in %s (%.0f a second, %d failed) in %d namespaces: the audit's RSS %d MiB before, peak %d MiB",
		churnPods, created.Round(time.Millisecond), float64(churnPods)/created.Seconds(), failed.Load(), churnNamespaces, base, top)
	if top-base > churnGrowthMiB {
		t.Errorf("the audit grew by %d MiB under churn, to %d MiB (bound: %d MiB of growth)", top-base, top, churnGrowthMiB)
	}
}
