package webhook_test

// The fault test: two podguard replicas behind one Service, reached by
// kube-apiserver through its own routing (--enable-aggregator-routing: a
// webhook's service reference resolves to a ready endpoint of the
// Service's EndpointSlices), under a steady load of pod creates, while
// faults are injected one at a time.
//
// Endpoint addresses may not be loopback, and this test may send traffic
// only to loopback or into network namespaces it creates. So it runs the
// whole cluster (etcd, kube-apiserver, both replicas, the load) inside a
// network namespace of its own (`ip netns`, as root): the test re-executes
// itself there. Each replica listens on its own address (10.200.0.1 and
// 10.200.0.2, on the namespace's loopback device); nothing leaves the
// namespace. The test plays the endpoints controller: a replica is listed
// ready while its /readyz answers, not ready after failureThreshold
// failed probes, and unready as soon as it is being deleted.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/hack/testenv"
)

var updateReliability = flag.Bool("update-reliability", false, "write the fault table of the run into RELIABILITY.md (make chaos)")

const (
	faultNetnsEnv  = "PODGUARD_FAULTS_IN_NETNS"
	faultResultEnv = "PODGUARD_FAULTS_RESULT"
	// faultSecondsEnv sets the load time per scenario: 12 s in make test,
	// 60 s in make chaos.
	faultSecondsEnv = "PODGUARD_FAULT_SECONDS"
	faultRate       = 40 // pod creates per second
)

// scenarioResult is one row of the fault table.
type scenarioResult struct {
	Name, Fault                           string
	Seconds                               float64
	Sent, Admitted, Denied, Failed, Wrong int
	// Unavailable counts requests that never reached podguard: the API
	// server itself could not be reached (scenario e).
	Unavailable int
	// Recover is how long after the start of the load the last failure
	// happened; FaultAt is when the fault was injected.
	Recover, FaultAt float64
	// Bound is the most failures the scenario may have (0 but for SIGKILL
	// and the API server's restart).
	Bound    int
	Notes    []string
	Failures []string
	// Restarted is set when a podguard process had to be restarted by the
	// test that the scenario did not restart itself (scenario e).
	Restarted bool
}

// Verdicts a privileged pod may get while a scenario runs.
const (
	mustDeny = iota
	mustAdmit
	either
)

// injection is what a scenario does: decide says which verdict a
// privileged pod sent at a time must get (nil: mustDeny); finish runs
// after the load.
type injection struct {
	decide func(time.Time) int
	finish func()
}

// TestFaults sets up the network namespace and runs the scenarios in it.
func TestFaults(t *testing.T) {
	if os.Getenv(faultNetnsEnv) != "" {
		runFaultScenarios(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a control plane and two podguard replicas in a network namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (ip netns); make chaos as root runs it")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		// As root, hack/tools.sh (make test) installs it.
		t.Fatal("no ip (iproute2) for the test's network namespaces: run hack/tools.sh all, which installs it as root")
	}
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := podguardBinary(t)
	ns := fmt.Sprintf("podguard-faults-%d", os.Getpid())
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("-n", ns, "link", "set", "lo", "up")
	for _, a := range []string{"10.200.0.1/32", "10.200.0.2/32"} {
		run("-n", ns, "addr", "add", a, "dev", "lo")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	result := filepath.Join(t.TempDir(), "faults.json")
	args := []string{"netns", "exec", ns, self, "-test.run", "^TestFaults$", "-test.v", "-test.timeout", "30m"}
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), faultNetnsEnv+"=1", faultResultEnv+"="+result, "KUBEBUILDER_ASSETS="+assets, "PODGUARD_BINARY="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the scenarios failed in the network namespace: %v\n%s", err, out)
	}
	t.Logf("inside the network namespace:\n%s", tailLines(string(out), 60))
	raw, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	var results []scenarioResult
	if err := json.Unmarshal(raw, &results); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Wrong > 0 || r.Failed > r.Bound || r.Restarted {
			t.Errorf("%s: %d failed (bound %d), %d wrong: %v", r.Name, r.Failed, r.Bound, r.Wrong, r.Failures)
		}
	}
	if *updateReliability {
		if err := writeFaultTable(results); err != nil {
			t.Fatal(err)
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// replica is one podguard serve process at its own address.
type replica struct {
	addr, health string
	args         []string
	cmd          *exec.Cmd
	exited       chan struct{}
	logs         *os.File
	// deleting is set while the replica is being stopped: the endpoints
	// controller lists it not ready at once, as for a deleted pod.
	deleting atomic.Bool
	pids     []int
}

func (r *replica) start(bin string) error {
	r.cmd = exec.Command(bin, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.pids = append(r.pids, r.cmd.Process.Pid)
	r.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(r.cmd, r.exited)
	r.deleting.Store(false)
	return nil
}

func (r *replica) ready() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + r.health + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// faultCluster is everything inside the network namespace.
type faultCluster struct {
	env      *testenv.Env
	cs       kubernetes.Interface
	bin      string
	replicas []*replica
	policy   string
	dir      string
	// probe settings of the endpoints controller (readiness, as a kubelet).
	period    time.Duration
	threshold int
}

func runFaultScenarios(t *testing.T) {
	seconds := 12
	if v, err := strconv.Atoi(os.Getenv(faultSecondsEnv)); err == nil && v > 0 {
		seconds = v
	}
	env, err := testenv.StartWith(map[string]string{"enable-aggregator-routing": "true"})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	defer func() {
		for _, c := range restarted {
			_ = c.Process.Kill()
		}
	}()
	dir := t.TempDir()
	fc := &faultCluster{env: env, bin: os.Getenv("PODGUARD_BINARY"), dir: dir, period: time.Second, threshold: 3}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 1000, 1000
	cfg.WarningHandler = rest.NoWarnings{}
	fc.cs = kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	fc.setUp(t, ctx)
	stopEndpoints := fc.runEndpointsController(ctx)
	defer stopEndpoints()
	defer func() {
		for _, r := range fc.replicas {
			_ = r.cmd.Process.Kill()
			<-r.exited
			r.logs.Close()
		}
	}()
	fc.waitServing(t, ctx)

	d := time.Duration(seconds) * time.Second
	var results []scenarioResult
	scenarios := []struct {
		name, fault string
		inject      func(res *scenarioResult, at time.Duration) injection
		min         time.Duration
	}{
		{"a. rolling update", "SIGTERM of one replica (unready first, as a deleted pod), then a new one in its place", fc.rollingUpdate, 0},
		{"b. certificate rotation", "built-in certificates of 30 s validity renewed 25 s before expiry: rotated about every 5 s under the load", fc.certRotation, 0},
		{"c. policy reload", "a changed policy (privileged: warn), then an invalid one (refused; the last good one stays)", fc.policyReload, 0},
		{"d. SIGKILL", "SIGKILL of one replica; its endpoint leaves after 3 failed probes 1 s apart, as a kubelet would", fc.sigkill, 0},
		{"e. API server restart", "kube-apiserver stopped (SIGTERM) and started again with the same flags", fc.apiserverRestart, 40 * time.Second},
	}
	for i, sc := range scenarios {
		res := scenarioResult{Name: sc.name, Fault: sc.fault}
		ns := fmt.Sprintf("load-%d", i)
		if _, err := fc.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sd := max(d, sc.min)
		res.FaultAt = (sd / 4).Seconds()
		inj := sc.inject(&res, sd/4)
		fc.load(ctx, ns, sd, inj.decide, &res)
		fc.waitServing(t, ctx)
		if inj.finish != nil {
			inj.finish()
		}
		t.Logf("%s: sent %d, admitted %d, denied %d, failed %d (bound %d), wrong %d, recover %.1fs %v %q", res.Name, res.Sent, res.Admitted, res.Denied, res.Failed, res.Bound, res.Wrong, res.Recover, res.Notes, res.Failures)
		results = append(results, res)
	}
	raw, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(os.Getenv(faultResultEnv), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setUp creates podguard's namespace, Service, certificate Secret and
// webhook configurations (the shipped ones, service references intact)
// and starts two replicas in built-in certificate mode, as the chart does.
func (fc *faultCluster) setUp(t *testing.T, ctx context.Context) {
	cs := fc.cs
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "podguard"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("podguard").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "podguard-webhook"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(9443)}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("podguard").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podguard-webhook-cert"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(testenv.Root(), "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fc.env.Kubectl, "--kubeconfig", fc.env.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(string(data))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply the webhook configurations: %v\n%s", err, out)
	}
	fc.policy = filepath.Join(fc.dir, "policy", "policy.yaml")
	if err := os.MkdirAll(filepath.Dir(fc.policy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fc.policy, []byte("apiVersion: podguard.dev/v1alpha1\nkind: Policy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, addr := range []string{"10.200.0.1", "10.200.0.2"} {
		hp, _ := testenv.FreePort()
		mp, _ := testenv.FreePort()
		logs, err := os.Create(filepath.Join(fc.dir, fmt.Sprintf("replica-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{addr: addr, health: fmt.Sprintf("127.0.0.1:%d", hp), logs: logs, args: []string{"serve",
			"--kubeconfig", fc.env.Kubeconfig, "--policy", fc.policy, "--podguard-namespace", "podguard",
			"--cert-mode", "builtin", "--cert-dir", filepath.Join(fc.dir, fmt.Sprintf("certs-%d", i)),
			"--bind-address", addr, "--port", "9443", "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", hp),
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", mp), "--audit-interval", "0",
			// As the chart runs it (shutdown.delaySeconds, timeoutSeconds).
			"--shutdown-delay", "5s", "--shutdown-timeout", "20s",
			// Short-lived certificates, renewed often, for scenario b (and
			// harmless for the others: a renewal must never fail a request).
			"--cert-validity", "30s", "--cert-renew-before", "25s", "--cert-check-interval", "2s", "--cert-sync-interval", "1s",
			"--log-format", "json"}}
		if err := r.start(fc.bin); err != nil {
			t.Fatal(err)
		}
		fc.replicas = append(fc.replicas, r)
	}
}

// runEndpointsController keeps the Service's EndpointSlice in step with
// the replicas' readiness, as the endpoints controller and kubelet do:
// probed every period, not ready after threshold failures, ready again at
// the first success; not ready at once while being deleted.
func (fc *faultCluster) runEndpointsController(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		failures := make([]int, len(fc.replicas))
		ready := make([]bool, len(fc.replicas))
		var last string
		tick := time.NewTicker(fc.period)
		defer tick.Stop()
		for {
			for i, r := range fc.replicas {
				switch {
				case r.deleting.Load():
					ready[i] = false
				case r.ready():
					failures[i], ready[i] = 0, true
				default:
					if failures[i]++; failures[i] >= fc.threshold {
						ready[i] = false
					}
				}
			}
			key := fmt.Sprint(ready)
			if key != last {
				if err := fc.writeSlice(ctx, ready); err == nil {
					last = key
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (fc *faultCluster) writeSlice(ctx context.Context, ready []bool) error {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "podguard-webhook-1", Namespace: "podguard",
			Labels: map[string]string{discoveryv1.LabelServiceName: "podguard-webhook", discoveryv1.LabelManagedBy: "podguard-fault-test"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](9443), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for i, r := range fc.replicas {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{r.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready[i]), Serving: ptr.To(ready[i]), Terminating: ptr.To(r.deleting.Load())}})
	}
	c := fc.cs.DiscoveryV1().EndpointSlices("podguard")
	cur, err := c.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = c.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		slice.ResourceVersion = cur.ResourceVersion
		_, err = c.Update(ctx, slice, metav1.UpdateOptions{})
	}
	return err
}

// waitServing waits until both replicas are ready and a pod create goes
// through the webhooks.
func (fc *faultCluster) waitServing(t *testing.T, ctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, r := range fc.replicas {
			ok = ok && r.ready()
		}
		if ok {
			p := loadPod("warmup", kindFixable)
			got, err := fc.cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err == nil && got.Spec.SecurityContext != nil && got.Spec.SecurityContext.RunAsUser != nil {
				time.Sleep(2 * fc.period) // the endpoints settle
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("podguard is not serving through the API server: %s", fc.replicaLogs())
}

func (fc *faultCluster) replicaLogs() string {
	var b strings.Builder
	for i := range fc.replicas {
		data, _ := os.ReadFile(filepath.Join(fc.dir, fmt.Sprintf("replica-%d.log", i)))
		fmt.Fprintf(&b, "\n--- replica %d\n%s", i, tailLines(string(data), 20))
	}
	return b.String()
}

// The kinds of pods the load sends.
const (
	kindCompliant = iota
	kindFixable
	kindDenied
)

func loadPod(name string, kind int) *corev1.Pod {
	spec := testenv.CompliantSpec("c", "registry.example/app:1.0")
	switch kind {
	case kindFixable:
		spec.SecurityContext = nil
		spec.Containers[0].SecurityContext = nil
		spec.Containers[0].Resources = corev1.ResourceRequirements{}
	case kindDenied:
		spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
		spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

// load sends faultRate pod creates per second for d, mixed compliant,
// fixable and denied, real and dry-run, and judges each answer: a
// compliant or fixable pod must be admitted (a fixable one filled in), a
// denied one denied by podguard, unless decide says the policy in force
// when it was sent allowed it (scenario c). Anything else is a failure (the
// webhook could not be called, the API server failed) or wrong (a decision
// against the policy).
func (fc *faultCluster) load(ctx context.Context, ns string, d time.Duration, decide func(time.Time) int, res *scenarioResult) {
	var mu sync.Mutex
	var lastFailure time.Time
	start := time.Now()
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / faultRate)
	defer tick.Stop()
	n := 0
	for time.Since(start) < d {
		<-tick.C
		n++
		kind, dry := n%3, n%2 == 0
		name := fmt.Sprintf("p-%d", n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			opts := metav1.CreateOptions{}
			if dry {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			got, err := fc.cs.CoreV1().Pods(ns).Create(rctx, loadPod(name, kind), opts)
			want := mustDeny
			if decide != nil {
				want = decide(sent)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Sent++
			denial := err != nil && apierrors.IsForbidden(err) || err != nil && apierrors.IsInvalid(err)
			podguardDenial := denial && strings.Contains(err.Error(), "podguard")
			switch {
			case err != nil && apiserverUnreachable(err, fc.env.Config.Host):
				res.Unavailable++
			case err != nil && !podguardDenial:
				res.Failed++
				lastFailure = time.Now()
				if len(res.Failures) < 5 {
					res.Failures = append(res.Failures, err.Error())
				}
			case kind == kindDenied && err == nil && want == mustDeny:
				res.Wrong++
				res.Failures = append(res.Failures, name+": a privileged pod was admitted")
			case kind == kindDenied && podguardDenial && want == mustAdmit:
				res.Wrong++
				res.Failures = append(res.Failures, name+": a privileged pod was denied under a policy that warns: "+err.Error())
			case kind != kindDenied && podguardDenial:
				res.Wrong++
				res.Failures = append(res.Failures, name+": denied: "+err.Error())
			case kind == kindFixable && (got.Spec.SecurityContext == nil || got.Spec.SecurityContext.RunAsUser == nil):
				res.Wrong++
				res.Failures = append(res.Failures, name+": admitted without mutation")
			case err == nil:
				res.Admitted++
			default:
				res.Denied++
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	if !lastFailure.IsZero() {
		res.Recover = lastFailure.Sub(start).Seconds()
	}
}

// apiserverUnreachable tells a request that never reached the API server
// (or that it refused while starting) from one podguard failed.
func apiserverUnreachable(err error, host string) bool {
	msg := err.Error()
	if strings.Contains(msg, "webhook") {
		return false
	}
	u, _ := url.Parse(host)
	return strings.Contains(msg, "dial tcp "+u.Host) || strings.Contains(msg, u.Host+": connect") || apierrors.IsServiceUnavailable(err) ||
		strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "EOF") || apierrors.IsTooManyRequests(err)
}

// at runs f after delay, in the background.
func at(delay time.Duration, f func()) { time.AfterFunc(delay, f) }

// rollingUpdate: replica 0 is deleted as by a rollout (unready at once,
// preStop, SIGTERM: podguard drains) and a new process takes its place.
func (fc *faultCluster) rollingUpdate(res *scenarioResult, after time.Duration) injection {
	r := fc.replicas[0]
	at(after, func() {
		r.deleting.Store(true)
		time.Sleep(5 * time.Second) // preStop: the endpoint leaves first
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		<-r.exited
		if err := r.start(fc.bin); err != nil {
			res.Restarted = true
		}
	})
	res.Notes = append(res.Notes, "preStop 5 s, then SIGTERM: --shutdown-delay 5s, --shutdown-timeout 20s, as the chart")
	return injection{}
}

// certRotation: the replicas run with 30 s certificates renewed 25 s
// before expiry, so rotations happen throughout the load; this scenario
// only counts them.
func (fc *faultCluster) certRotation(res *scenarioResult, after time.Duration) injection {
	before := fc.countLog("serving certificate loaded")
	return injection{finish: func() {
		n := fc.countLog("serving certificate loaded") - before
		res.Notes = append(res.Notes, fmt.Sprintf("%d new serving certificates loaded by the replicas during the load", n))
		if n < 2 {
			res.Wrong++ // not a rotation test if nothing rotated
			res.Failures = append(res.Failures, "no certificate was rotated during the load")
		}
	}}
}

func (fc *faultCluster) countLog(s string) int {
	n := 0
	for i := range fc.replicas {
		f, err := os.Open(filepath.Join(fc.dir, fmt.Sprintf("replica-%d.log", i)))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), s) {
				n++
			}
		}
		f.Close()
	}
	return n
}

// policyReload: at a third of the load the policy changes (privileged
// warns instead of denying); at two thirds an invalid policy is written,
// which both replicas refuse. A privileged pod sent after both replicas
// loaded the new policy must be admitted; one sent before the change
// denied; in between either is right.
func (fc *faultCluster) policyReload(res *scenarioResult, after time.Duration) injection {
	var changed, loaded atomic.Int64 // unix nanos
	at(after, func() {
		before := fc.countLog(`"policy loaded"`)
		changed.Store(time.Now().UnixNano())
		_ = os.WriteFile(fc.policy, []byte(warnPrivileged), 0o644)
		for fc.countLog(`"policy loaded"`) < before+2 {
			time.Sleep(50 * time.Millisecond)
		}
		loaded.Store(time.Now().UnixNano())
		time.Sleep(after)
		_ = os.WriteFile(fc.policy, []byte("apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  privileged: {action: sometimes}\n"), 0o644)
	})
	res.Notes = append(res.Notes, "privileged pods: denied before the change, admitted with a warning once both replicas loaded it, and still after the invalid policy")
	return injection{
		decide: func(sent time.Time) int {
			c, l := changed.Load(), loaded.Load()
			switch {
			case c == 0 || sent.UnixNano() < c:
				return mustDeny
			case l != 0 && sent.UnixNano() > l:
				return mustAdmit
			}
			return either
		},
		finish: func() {
			// Back to the default policy for the scenarios that follow.
			before := fc.countLog(`"policy loaded"`)
			_ = os.WriteFile(fc.policy, []byte("apiVersion: podguard.dev/v1alpha1\nkind: Policy\n"), 0o644)
			for deadline := time.Now().Add(30 * time.Second); fc.countLog(`"policy loaded"`) < before+2 && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			if fc.countLog("invalid") == 0 && fc.countLog("refus") == 0 {
				res.Notes = append(res.Notes, "the invalid policy was not reported")
			}
		},
	}
}

// warnPrivileged makes a privileged pod admissible (with warnings): the
// privilege escalation a privileged container implies warns too.
const warnPrivileged = "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  privileged: {action: warn}\n  allowPrivilegeEscalation: {action: warn}\n"

// sigkill: replica 1 is killed; the endpoints controller lists it not
// ready after threshold failed probes; then a new process takes its place.
func (fc *faultCluster) sigkill(res *scenarioResult, after time.Duration) injection {
	r := fc.replicas[1]
	// Requests routed to the dead replica until its endpoint leaves fail:
	// about half the load for threshold probe periods, plus one.
	window := time.Duration(fc.threshold+1) * fc.period
	res.Bound = int(window.Seconds()*faultRate/2) + faultRate/4
	res.Notes = append(res.Notes, fmt.Sprintf("failures bounded by the readiness period: %d probes %s apart", fc.threshold, fc.period))
	at(after, func() {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.exited
		time.Sleep(window + 2*time.Second)
		if err := r.start(fc.bin); err != nil {
			res.Notes = append(res.Notes, "restart failed: "+err.Error())
		}
	})
	return injection{}
}

// apiserverRestart stops kube-apiserver and starts it again with the same
// command line; podguard must come back by itself.
func (fc *faultCluster) apiserverRestart(res *scenarioResult, after time.Duration) injection {
	pids := map[int]bool{}
	for _, r := range fc.replicas {
		pids[r.cmd.Process.Pid] = true
	}
	// Requests fail while the API server is down, before they reach
	// podguard (counted as unavailable); none may fail in podguard, and
	// podguard serves again by itself.
	var note atomic.Value
	at(after, func() {
		t0 := time.Now()
		if err := restartAPIServer(fc.env); err != nil {
			note.Store("restart failed: " + err.Error())
			return
		}
		stopped := time.Since(t0)
		for time.Since(t0) < 2*time.Minute {
			if raw, err := fc.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background()); err == nil && string(raw) == "ok" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		note.Store(fmt.Sprintf("the old API server took %.1f s to stop, the new one was ready %.1f s later", stopped.Seconds(), (time.Since(t0) - stopped).Seconds()))
	})
	return injection{finish: func() {
		for _, r := range fc.replicas {
			select {
			case <-r.exited:
				res.Restarted = true
			default:
				res.Restarted = res.Restarted || !pids[r.cmd.Process.Pid]
			}
		}
		n, _ := note.Load().(string)
		res.Notes = append(res.Notes, fmt.Sprintf("API server stopped %.0f s into the load; %s; podguard processes restarted: %v; serving again afterwards", after.Seconds(), n, res.Restarted))
	}}
}

// restarted are the API servers restartAPIServer started, stopped when
// the scenarios end.
var restarted []*exec.Cmd

// restartAPIServer finds this control plane's kube-apiserver by its port,
// stops it and starts it again with the same command line (envtest's own
// restart would make new certificates and credentials).
func restartAPIServer(env *testenv.Env) error {
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		return err
	}
	port := u.Port()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if !strings.HasSuffix(args[0], "kube-apiserver") || !strings.Contains(string(raw), "--secure-port="+port) {
			continue
		}
		p, _ := os.FindProcess(pid)
		_ = p.Signal(syscall.SIGTERM)
		for i := range 300 {
			if i == 150 {
				_ = p.Signal(syscall.SIGKILL) // 15 s of graceful shutdown is enough
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second)
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			return err
		}
		restarted = append(restarted, cmd)
		go func() { _ = cmd.Wait() }()
		return nil
	}
	return errors.New("kube-apiserver not found")
}

// writeFaultTable writes the table of the run between RELIABILITY.md's markers.
func writeFaultTable(results []scenarioResult) error {
	var b strings.Builder
	b.WriteString("| scenario | fault | seconds | sent | admitted | denied as expected | failed | wrong | API server unreachable | recovered (last failure after the fault) | notes |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		rec := "no failure"
		if r.Failed > 0 {
			rec = fmt.Sprintf("%.1f s", r.Recover-r.FaultAt)
		}
		notes := strings.Join(r.Notes, "; ")
		fmt.Fprintf(&b, "| %s | %s | %.0f | %d | %d | %d | %d | %d | %d | %s | %s |\n", r.Name, r.Fault, r.Seconds, r.Sent, r.Admitted, r.Denied, r.Failed, r.Wrong, r.Unavailable, rec, notes)
	}
	const begin, end = "<!-- fault table: written by make chaos -->\n", "<!-- end of fault table -->\n"
	path := filepath.Join(testenv.Root(), "RELIABILITY.md")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("RELIABILITY.md has no fault table markers %q ... %q", begin, end)
	}
	return os.WriteFile(path, []byte(s[:i+len(begin)]+b.String()+s[j:]), 0o644)
}
