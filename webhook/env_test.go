package webhook_test

// Integration tests against a real kube-apiserver and etcd (controller-runtime
// envtest with the binaries hack/tools.sh builds from Go modules), the real
// kubectl, and real TLS. Nothing here is faked.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/webhook"
)

// assetsDir returns the directory of etcd, kube-apiserver and kubectl:
// $KUBEBUILDER_ASSETS, or what hack/tools.sh builds (once) and caches.
func assetsDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	out, err := exec.Command("../hack/tools.sh", "assets-dir").Output()
	if err != nil {
		t.Fatalf("building the test binaries with hack/tools.sh: %v", err)
	}
	d := strings.TrimSpace(string(out))
	os.Setenv("KUBEBUILDER_ASSETS", d)
	return d
}

// syncBuffer collects log output from the server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testCA issues serving certificates for 127.0.0.1 and localhost.
type testCA struct {
	cert    *x509.Certificate
	key     *rsa.PrivateKey
	certPEM []byte
	serial  int64
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "podguard-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 100}
}

// issue writes a new serving certificate and key into dir and returns its serial.
func (ca *testCA) issue(t testing.TB, dir string) int64 {
	t.Helper()
	ca.serial++
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: "podguard-webhook"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("tls.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	write("tls.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca.serial
}

// cluster is a real control plane with podguard serving in-process.
type cluster struct {
	env        *envtest.Environment
	cfg        *rest.Config
	cs         kubernetes.Interface
	kubeconfig string
	kubectl    string
	logs       *syncBuffer
	opts       webhook.Options
	ca         *testCA
	stop       func()
	done       chan error
}

type clusterConfig struct {
	policy string // policy file content; "" = default policy
	// builtin selects the built-in certificate mode instead of a test CA.
	builtin bool
	mutate  func(*webhook.Options)
}

func startCluster(t *testing.T, cc clusterConfig) *cluster {
	t.Helper()
	assets := assetsDir(t)
	c := &cluster{logs: &syncBuffer{}, kubectl: filepath.Join(assets, "kubectl")}
	dir := t.TempDir()
	c.env = &envtest.Environment{BinaryAssetsDirectory: assets}
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// cert-controller's certificates name hosts, not IPs.
	webhookHost := "localhost"
	var caBundle []byte
	if !cc.builtin {
		webhookHost = "127.0.0.1"
		c.ca = newTestCA(t)
		c.ca.issue(t, certDir)
		caBundle = c.ca.certPEM
	}
	api := c.env.ControlPlane.GetAPIServer()
	// Keep every listener on loopback: both settings are needed together.
	api.Configure().Set("advertise-address", "127.0.0.1").Set("endpoint-reconciler-type", "none")
	cfg, err := c.env.Start()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	c.cfg = cfg
	t.Cleanup(func() {
		c.stopPodguard(t)
		if err := c.env.Stop(); err != nil {
			t.Logf("stopping the control plane: %v", err)
		}
	})
	user, err := c.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	quiet := rest.CopyConfig(cfg)
	quiet.WarningHandler = rest.NoWarnings{}
	c.cs = kubernetes.NewForConfigOrDie(quiet)

	o := webhook.DefaultOptions()
	o.Host = "127.0.0.1"
	_, port, _ := net.SplitHostPort(freeAddr(t))
	o.Port, _ = strconv.Atoi(port)
	installWebhooks(t, c.cs, fmt.Sprintf("https://%s:%d", webhookHost, o.Port), caBundle)
	o.MetricsBindAddress = freeAddr(t)
	o.HealthProbeBindAddress = freeAddr(t)
	o.ShutdownTimeout = 5 * time.Second
	if cc.policy != "" {
		o.PolicyFile = filepath.Join(dir, "policy", "policy.yaml")
		if err := os.MkdirAll(filepath.Dir(o.PolicyFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(o.PolicyFile, []byte(cc.policy), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o.CertDir = certDir
	if cc.builtin {
		o.CertMode = webhook.CertModeBuiltin
		kcPath := filepath.Join(dir, "admin.kubeconfig")
		if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
			t.Fatal(err)
		}
		o.Kubeconfig = kcPath
	} else {
		o.CertMode = webhook.CertModeDir
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

func (c *cluster) startPodguard(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.done = make(chan error, 1)
	go func() { c.done <- webhook.Run(ctx, c.opts, c.logger()) }()
	c.waitReady(t, 60*time.Second)
}

func (c *cluster) stopPodguard(t *testing.T) {
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

// waitReady polls /readyz until podguard reports ready.
func (c *cluster) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
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

func (c *cluster) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	_, err := c.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// kubectlRun runs the real kubectl against the test API server.
func (c *cluster) kubectlRun(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(c.kubectl, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// warningCollector captures the warnings the API server returns.
type warningCollector struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, msg)
}

func (w *warningCollector) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.warnings...)
}

// withWarnings returns a clientset whose warnings land in the collector.
func (c *cluster) withWarnings() (kubernetes.Interface, *warningCollector) {
	wc := &warningCollector{}
	cfg := rest.CopyConfig(c.cfg)
	cfg.WarningHandler = wc
	return kubernetes.NewForConfigOrDie(cfg), wc
}

// installWebhooks installs config/webhook/manifests.yaml, the file users
// deploy, pointing its webhooks at the local server: the service reference
// becomes a URL on loopback, everything else stays as shipped.
func installWebhooks(t *testing.T, cs kubernetes.Interface, base string, caBundle []byte) {
	t.Helper()
	data, err := os.ReadFile("../config/webhook/manifests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, doc := range strings.Split(string(data), "\n---\n") {
		switch {
		case strings.Contains(doc, "kind: MutatingWebhookConfiguration"):
			var m admissionregistrationv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
				t.Fatal(err)
			}
			for i := range m.Webhooks {
				cc := &m.Webhooks[i].ClientConfig
				cc.URL = ptr.To(base + *cc.Service.Path)
				cc.Service, cc.CABundle = nil, caBundle
			}
			if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &m, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(doc, "kind: ValidatingWebhookConfiguration"):
			var v admissionregistrationv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &v); err != nil {
				t.Fatal(err)
			}
			for i := range v.Webhooks {
				cc := &v.Webhooks[i].ClientConfig
				cc.URL = ptr.To(base + *cc.Service.Path)
				cc.Service, cc.CABundle = nil, caBundle
			}
			if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &v, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
