package webhook_test

// Integration tests against a real kube-apiserver and etcd (controller-runtime
// envtest with the binaries hack/tools.sh builds from Go modules), the real
// kubectl, and real TLS. Nothing here is faked.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/webhook"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	p, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// cluster is a real control plane with podguard serving in-process.
type cluster struct {
	*testenv.Env
	cs   kubernetes.Interface
	logs *testenv.LogBuffer
	opts webhook.Options
	ca   *testenv.CA
	stop func()
	done chan error
}

type clusterConfig struct {
	policy string // policy file content; "" = default policy
	// builtin selects the built-in certificate mode instead of a test CA.
	builtin bool
	mutate  func(*webhook.Options)
	// apiserverFlags are extra kube-apiserver flags (name without dashes).
	apiserverFlags map[string]string
	// crds are CRD files installed before podguard starts.
	crds []string
}

func startCluster(t testing.TB, cc clusterConfig) *cluster {
	t.Helper()
	env := testenv.StartT(t, cc.apiserverFlags)
	c := &cluster{Env: env, cs: env.Clientset, logs: &testenv.LogBuffer{}}
	if len(cc.crds) > 0 {
		if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: cc.crds}); err != nil {
			t.Fatal(err)
		}
	}
	// Before the control plane stops (cleanups run last first).
	t.Cleanup(func() { c.stopPodguard(t) })
	var err error
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	o := webhook.DefaultOptions()
	o.Host = "127.0.0.1"
	if o.Port, err = testenv.FreePort(); err != nil {
		t.Fatal(err)
	}
	o.MetricsBindAddress = freeAddr(t)
	o.HealthProbeBindAddress = freeAddr(t)
	o.ShutdownTimeout = 5 * time.Second
	o.CertDir = certDir
	if cc.builtin {
		// cert-controller's certificates name hosts, not IPs; podguard
		// injects its CA into the configurations itself.
		o.CertMode = webhook.CertModeBuiltin
		o.Kubeconfig = env.Kubeconfig
		err = testenv.InstallWebhooks(context.Background(), c.cs, "../config/webhook/manifests.yaml", fmt.Sprintf("https://localhost:%d", o.Port), nil)
	} else {
		o.CertMode = webhook.CertModeDir
		if c.ca, err = testenv.NewCA(); err != nil {
			t.Fatal(err)
		}
		if err := c.ca.Issue(certDir); err != nil {
			t.Fatal(err)
		}
		err = testenv.InstallWebhooks(context.Background(), c.cs, "../config/webhook/manifests.yaml", fmt.Sprintf("https://127.0.0.1:%d", o.Port), c.ca.PEM)
	}
	if err != nil {
		t.Fatal(err)
	}
	if cc.policy != "" {
		o.PolicyFile = filepath.Join(dir, "policy", "policy.yaml")
		if err := os.MkdirAll(filepath.Dir(o.PolicyFile), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, o.PolicyFile, cc.policy)
	}
	if cc.mutate != nil {
		cc.mutate(&o)
	}
	if cc.builtin {
		// The chart ships the Secret empty; podguard fills it.
		c.namespace(t, o.Namespace, nil)
		_, err := c.cs.CoreV1().Secrets(o.Namespace).Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.Builtin.SecretName}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	c.opts = o
	c.startPodguard(t)
	return c
}

func (c *cluster) logger() logr.Logger {
	lvl := zapcore.InfoLevel
	return zap.New(zap.WriteTo(c.logs), zap.Level(&lvl))
}

func (c *cluster) startPodguard(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.done = make(chan error, 1)
	go func() { c.done <- webhook.Run(ctx, c.opts, c.logger()) }()
	c.waitReady(t, 60*time.Second)
}

func (c *cluster) stopPodguard(t testing.TB) {
	if c.stop == nil {
		return
	}
	c.stop()
	c.stop = nil
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("podguard stopped with an error: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("podguard did not stop within 30s")
	}
}

// removePodguard stops podguard, deletes its webhook configurations and
// waits until the API server has stopped calling them: the API server
// reads webhook configurations through an informer, so for a moment
// after the delete it still calls the stopped server.
func (c *cluster) removePodguard(t testing.TB) {
	t.Helper()
	c.stopPodguard(t)
	ctx := context.Background()
	ar := c.cs.AdmissionregistrationV1()
	if err := ar.MutatingWebhookConfigurations().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ar.ValidatingWebhookConfigurations().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "probe"}}}}
	last := ""
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, err := c.cs.CoreV1().Pods("default").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
			return
		}
		last = err.Error()
	}
	t.Fatalf("the API server still calls podguard's webhooks 30s after their removal: %s", last)
}

// waitReady polls /readyz until podguard reports ready.
func (c *cluster) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			// Nothing left to stop: the cleanup must not wait for it.
			c.stop()
			c.stop = nil
			t.Fatalf("podguard exited: %v\n%s", err, c.logs.String())
		default:
		}
		resp, err := http.Get("http://" + c.opts.HealthProbeBindAddress + "/readyz?verbose")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(body)
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("podguard not ready after %s: %s\nlogs:\n%s", timeout, last, c.logs.String())
}

func (c *cluster) namespace(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	_, err := c.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// kubectlRun runs the real kubectl against the test API server.
func (c *cluster) kubectlRun(t testing.TB, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(c.Kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// withWarnings returns a clientset whose warnings land in the collector.
func (c *cluster) withWarnings() (kubernetes.Interface, *testenv.Warnings) {
	wc := &testenv.Warnings{}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = wc
	return kubernetes.NewForConfigOrDie(cfg), wc
}
