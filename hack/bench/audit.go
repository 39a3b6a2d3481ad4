package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"podguard.dev/podguard/hack/testenv"
)

// auditResult is the scale benchmark of the audit: podguard audit -A and
// the background audit of podguard serve on a seeded control plane.
type auditResult struct {
	Command                             string
	Namespaces, Deployments, Pods, Bare int
	SeedSeconds                         float64
	CLISeconds, CLIPeakRSSMiB           []float64
	CLIRequests                         map[string]float64
	FirstScanSeconds, CacheSyncSeconds  float64
	ScanSeconds                         float64
	ServeRequests                       map[string]float64
	SteadyRSSMiB, ServePeakRSSMiB       float64
	UpdateSeconds                       []float64
	Reports                             int
	LargestReportBytes                  int
}

// auditScale seeds a control plane with the cluster of issue 9 (10,000
// Pods owned by 500 Deployments and their ReplicaSets, and 2,000 bare Pods,
// in 100 namespaces) and measures the audit.
func auditScale(r *results, bins binaries, dir string, quick bool) {
	env, err := testenv.Start()
	if err != nil {
		fatal(err)
	}
	defer env.Stop()
	ar := &auditResult{Namespaces: 100, Deployments: 500, Pods: 10000, Bare: 2000}
	if quick {
		ar.Namespaces, ar.Deployments, ar.Pods, ar.Bare = 10, 50, 1000, 200
	}
	r.Audit = ar
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 100000, 100000
	cfg.WarningHandler = rest.NoWarnings{}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	crds, err := testenv.CRDDir()
	if err != nil {
		fatal(err)
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join(crds, "openreports.io_reports.yaml")}}); err != nil {
		fatal(err)
	}
	step("audit: seeding %d namespaces, %d Deployments with ReplicaSets and %d Pods, %d bare Pods", ar.Namespaces, ar.Deployments, ar.Pods, ar.Bare)
	start := time.Now()
	seedScale(ctx, cs, ar)
	ar.SeedSeconds = time.Since(start).Seconds()
	step("audit: seeded in %.1fs", ar.SeedSeconds)

	// podguard audit -A, three times.
	ar.Command = fmt.Sprintf("go run ./hack/bench -only audit (podguard audit -A -o json three times, then podguard serve's background audit, on %d Pods in %d namespaces)", ar.Pods+ar.Bare, ar.Namespaces)
	for i := range 3 {
		before := apiserverRequests(ctx, cs)
		cmd := exec.Command(bins.podguard, "audit", "--kubeconfig", env.Kubeconfig, "-A", "-o", "json")
		out, err := os.Create(filepath.Join(dir, "audit.json"))
		if err != nil {
			fatal(err)
		}
		cmd.Stdout = out
		var stderr strings.Builder
		cmd.Stderr = &stderr
		t0 := time.Now()
		err = cmd.Run()
		took := time.Since(t0).Seconds()
		out.Close()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			fatal(fmt.Errorf("podguard audit -A exited %d (%v): %s", code, err, stderr.String()))
		}
		rss := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
		ar.CLISeconds = append(ar.CLISeconds, took)
		ar.CLIPeakRSSMiB = append(ar.CLIPeakRSSMiB, rss)
		if i == 0 {
			ar.CLIRequests = diff(apiserverRequests(ctx, cs), before)
		}
		step("audit: podguard audit -A in %.2fs, peak RSS %.1f MiB", took, rss)
	}

	// The background audit of podguard serve.
	ca, err := testenv.NewCA()
	if err != nil {
		fatal(err)
	}
	certs := filepath.Join(dir, "audit-certs")
	if err := ca.Issue(certs); err != nil {
		fatal(err)
	}
	port, _ := testenv.FreePort()
	health, _ := testenv.FreePort()
	metrics, _ := testenv.FreePort()
	pprof, _ := testenv.FreePort()
	logPath := filepath.Join(dir, "audit-serve.log")
	before := apiserverRequests(ctx, cs)
	t0 := time.Now()
	srv := startServer("podguard (background audit)", bins.podguard, []string{"serve", "--kubeconfig", env.Kubeconfig, "--cert-dir", certs, "--port", strconv.Itoa(port),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", health), "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metrics),
		"--audit-interval", "1h", "--log-format", "json", "--pprof-bind-address", fmt.Sprintf("127.0.0.1:%d", pprof)}, fmt.Sprintf("http://127.0.0.1:%d/readyz", health), logPath)
	defer srv.stop()
	scanned := waitLog(logPath, "background audit: scanned the cluster", 5*time.Minute)
	ar.FirstScanSeconds = time.Since(t0).Seconds()
	ar.ServeRequests = diff(apiserverRequests(ctx, cs), before)
	ar.ScanSeconds = durationField(scanned)
	ar.CacheSyncSeconds = durationField(waitLog(logPath, "background audit: cache synced", time.Second))
	step("audit: background first full scan %.2fs after start (cache sync %.2fs, scan %.2fs)", ar.FirstScanSeconds, ar.CacheSyncSeconds, ar.ScanSeconds)

	// A change to one Pod, in its namespace's report.
	dyn := dynamic.NewForConfigOrDie(cfg)
	reports := schema.GroupVersionResource{Group: "openreports.io", Version: "v1alpha1", Resource: "reports"}
	for i := range 5 {
		ns := fmt.Sprintf("team-%03d", (i*17)%ar.Namespaces)
		name := fmt.Sprintf("probe-%d", i)
		spec := podSpec("probe", "registry.example/probe:1", 3)
		t1 := time.Now()
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			fatal(err)
		}
		for {
			rep, err := dyn.Resource(reports).Namespace(ns).Get(ctx, "podguard", metav1.GetOptions{})
			if err == nil {
				b, _ := json.Marshal(rep.Object["results"])
				if strings.Contains(string(b), `"name":"`+name+`"`) {
					break
				}
			}
			if time.Since(t1) > time.Minute {
				fatal(fmt.Errorf("%s/%s not in its report after a minute", ns, name))
			}
			time.Sleep(20 * time.Millisecond)
		}
		ar.UpdateSeconds = append(ar.UpdateSeconds, time.Since(t1).Seconds())
		step("audit: a new Pod in %s reached its report in %.2fs", ns, time.Since(t1).Seconds())
	}
	// Steady state: what the process holds once the scans are done.
	time.Sleep(20 * time.Second)
	var rss []float64
	for range 5 {
		rss = append(rss, currentRSS(srv.cmd.Process.Pid))
		time.Sleep(2 * time.Second)
	}
	sort.Float64s(rss)
	ar.SteadyRSSMiB = rss[len(rss)-1]
	// The live heap, for whoever wants to see where the memory is.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", pprof)); err == nil {
		if f, err := os.Create(filepath.Join(dir, "audit-heap.pprof")); err == nil {
			_, _ = io.Copy(f, resp.Body)
			f.Close()
		}
		resp.Body.Close()
	}
	ar.ServePeakRSSMiB = peakRSS(srv.cmd.Process.Pid)
	l, err := dyn.Resource(reports).List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(err)
	}
	ar.Reports = len(l.Items)
	for _, it := range l.Items {
		b, _ := json.Marshal(it.Object)
		ar.LargestReportBytes = max(ar.LargestReportBytes, len(b))
	}
	step("audit: steady RSS %.1f MiB (peak %.1f MiB), %d reports, largest %d bytes", ar.SteadyRSSMiB, ar.ServePeakRSSMiB, ar.Reports, ar.LargestReportBytes)
}

// seedScale creates the cluster, namespaces in parallel. A quarter of the
// Deployments are compliant, a quarter fixable by mutation, a quarter run
// as UID 999, a quarter privileged; half the bare Pods run as root.
func seedScale(ctx context.Context, cs kubernetes.Interface, ar *auditResult) {
	perNS := ar.Deployments / ar.Namespaces
	podsPerDep := ar.Pods / ar.Deployments
	barePerNS := ar.Bare / ar.Namespaces
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	for n := range ar.Namespaces {
		ns := fmt.Sprintf("team-%03d", n)
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			fatal(err)
		}
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"}}, metav1.CreateOptions{}); err != nil {
			fatal(err)
		}
		for d := range perNS {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := seedDeployment(ctx, cs, ns, fmt.Sprintf("svc-%d", d), d%4, podsPerDep); err != nil {
					fail(err)
				}
			}()
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for b := range barePerNS {
				spec := podSpec("job", "registry.example/batch/job:2.1", b%2*3)
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bare-%d", b)}, Spec: spec}, metav1.CreateOptions{}); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fatal(firstErr)
	}
}

func seedDeployment(ctx context.Context, cs kubernetes.Interface, ns, name string, variant, pods int) error {
	labels := map[string]string{"app": name}
	tpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec(name, "registry.example/"+ns+"/"+name+":1.0", variant)}
	dep, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(pods)), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tpl}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-7d4b9c", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: dep.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(pods)), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tpl}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	for i := range pods {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", rs.Name, i), Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}},
			Spec: tpl.Spec}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
	}
	return nil
}

// podSpec is a realistic two-container pod (env, ports, probes, mounts):
// variant 0 compliant, 1 no security settings (fixable), 2 UID 999,
// 3 privileged and root.
func podSpec(name, image string, variant int) corev1.PodSpec {
	s := testenv.CompliantSpec(name, image)
	c := &s.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}}
	for i := range 6 {
		c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", i), Value: "value-of-a-typical-setting"})
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}})
	c.VolumeMounts = []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}, {Name: "config", MountPath: "/etc/app", ReadOnly: true}}
	c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
	s.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}}
	sidecar := testenv.CompliantSpec("proxy", "registry.example/mesh/proxy:1.27").Containers[0]
	sidecar.Ports = []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}}
	sidecar.ReadinessProbe.TCPSocket.Port = intstr.FromInt32(15001)
	s.Containers = append(s.Containers, sidecar)
	switch variant {
	case 1:
		s.SecurityContext = nil
		s.AutomountServiceAccountToken = nil
		for i := range s.Containers {
			s.Containers[i].SecurityContext = nil
			s.Containers[i].Resources.Limits = nil
		}
	case 2:
		s.SecurityContext.RunAsUser, s.SecurityContext.RunAsGroup = ptr.To[int64](999), ptr.To[int64](999)
	case 3:
		s.SecurityContext.RunAsUser, s.SecurityContext.RunAsNonRoot = ptr.To[int64](0), nil
		c.SecurityContext.Privileged, c.SecurityContext.AllowPrivilegeEscalation = ptr.To(true), nil
	}
	return s
}

var requestLine = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)

// apiserverRequests reads kube-apiserver's request counters, by verb (and
// LIST by resource).
func apiserverRequests(ctx context.Context, cs kubernetes.Interface) map[string]float64 {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		fatal(err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := requestLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		out[labels["verb"]] += v
		if labels["verb"] == "LIST" || labels["verb"] == "WATCH" {
			out[labels["verb"]+" "+labels["resource"]] += v
		}
	}
	return out
}

func diff(after, before map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// waitLog waits for a log line holding msg and returns it.
func waitLog(path, msg string, timeout time.Duration) map[string]any {
	deadline := time.Now().Add(timeout)
	for {
		data, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, msg) {
				var m map[string]any
				_ = json.Unmarshal([]byte(l), &m)
				return m
			}
		}
		if time.Now().After(deadline) {
			fatal(fmt.Errorf("no %q in %s within %s", msg, path, timeout))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func durationField(m map[string]any) float64 {
	s, _ := m["duration"].(string)
	d, _ := time.ParseDuration(s)
	return d.Seconds()
}

// currentRSS is a process's resident set (VmRSS) in MiB.
func currentRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
