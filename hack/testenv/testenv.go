// Package testenv starts a real control plane (kube-apiserver and etcd,
// through controller-runtime's envtest, with the binaries hack/tools.sh
// builds from Go modules) with every listener on loopback, and wires
// podguard's shipped webhook configurations to a local server. Tests, the
// local demo (make run) and the benchmarks share it.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// Root returns the repository root (this file lives in hack/testenv).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// AssetsDir returns the directory of etcd, kube-apiserver and kubectl:
// $KUBEBUILDER_ASSETS, or what hack/tools.sh builds once and caches.
func AssetsDir() (string, error) { return tool("KUBEBUILDER_ASSETS", "assets-dir") }

// HelmPath returns the helm binary: $PODGUARD_HELM, or what hack/tools.sh
// builds once and caches.
func HelmPath() (string, error) { return tool("PODGUARD_HELM", "helm-path") }

// Promtool returns promtool: $PODGUARD_PROMTOOL, or what hack/tools.sh
// builds once from the Prometheus Go module and caches.
func Promtool() (string, error) { return tool("PODGUARD_PROMTOOL", "promtool") }

// Chromium returns a headless browser: $PODGUARD_CHROMIUM, or chromium
// on PATH (hack/tools.sh browser installs it as root).
func Chromium() (string, error) { return tool("PODGUARD_CHROMIUM", "browser-path") }

// CRDDir returns the directory of the report CRDs (OpenReports and
// wgpolicyk8s.io), as their projects publish them: $PODGUARD_CRDS, or what
// hack/tools.sh fetches once from their Go modules and caches.
func CRDDir() (string, error) { return tool("PODGUARD_CRDS", "crds-dir") }

// AddonCRDDir returns the directory of the cert-manager and Prometheus
// Operator CRDs whose objects the chart can create (Certificate, Issuer,
// ServiceMonitor, PrometheusRule), with their upstream schemas:
// $PODGUARD_ADDON_CRDS, or what hack/tools.sh fetches and generates once.
func AddonCRDDir() (string, error) { return tool("PODGUARD_ADDON_CRDS", "addon-crds-dir") }

// tool returns $env, or asks hack/tools.sh (which builds on first use) and
// sets $env for the rest of the process.
func tool(env, arg string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	cmd := exec.Command(filepath.Join(Root(), "hack", "tools.sh"), arg)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building test binaries with hack/tools.sh %s: %w", arg, err)
	}
	p := strings.TrimSpace(string(out))
	os.Setenv(env, p)
	return p, nil
}

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	// Config is an admin REST config; Clientset uses it with warnings discarded.
	Config    *rest.Config
	Clientset kubernetes.Interface
	// Kubeconfig is the path of an admin kubeconfig file.
	Kubeconfig string
	// Kubectl is the path of the kubectl binary built with the control plane.
	Kubectl string
	// Dir is a scratch directory removed by Stop.
	Dir string
}

// Start starts kube-apiserver and etcd on loopback.
func Start() (*Env, error) { return StartWith(nil) }

// StartWith starts kube-apiserver with extra flags (name without dashes
// to value) and etcd, on loopback.
func StartWith(apiserverFlags map[string]string) (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "podguard-env-")
	if err != nil {
		return nil, err
	}
	e := &Env{Environment: &envtest.Environment{BinaryAssetsDirectory: assets}, Dir: dir, Kubectl: filepath.Join(assets, "kubectl")}
	// Both are needed to keep every listener on loopback; one without the
	// other fails to start.
	args := e.ControlPlane.GetAPIServer().Configure().Set("advertise-address", "127.0.0.1").Set("endpoint-reconciler-type", "none")
	for k, v := range apiserverFlags {
		args.Set(k, v)
	}
	cfg, err := e.Environment.Start()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	e.Config = cfg
	user, err := e.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		e.Stop()
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		e.Stop()
		return nil, err
	}
	e.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kc, 0o600); err != nil {
		e.Stop()
		return nil, err
	}
	quiet := rest.CopyConfig(cfg)
	quiet.WarningHandler = rest.NoWarnings{}
	e.Clientset = kubernetes.NewForConfigOrDie(quiet)
	return e, nil
}

// Stop stops the control plane and removes the scratch directory.
func (e *Env) Stop() error {
	err := e.Environment.Stop()
	os.RemoveAll(e.Dir)
	return err
}

// LogBuffer collects log lines written from several goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// portsGiven are the ports FreePort has returned in this process.
var portsGiven struct {
	sync.Mutex
	m map[int]bool
}

// FreePort returns a free TCP port on 127.0.0.1, never one it returned
// before in this process: the kernel may hand a port out again as soon as
// it is closed, and a test that gives one server's port to another (the
// webhook's and the health probe's) fails to start it.
func FreePort() (int, error) {
	portsGiven.Lock()
	defer portsGiven.Unlock()
	if portsGiven.m == nil {
		portsGiven.m = map[int]bool{}
	}
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven.m[port] {
			portsGiven.m[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on 127.0.0.1 that was not handed out before")
}

// InstallWebhooks installs a webhook configuration file (the one users
// deploy) pointing its webhooks at baseURL: each service reference becomes
// baseURL+path with caBundle; everything else stays as shipped.
func InstallWebhooks(ctx context.Context, cs kubernetes.Interface, manifests, baseURL string, caBundle []byte) error {
	return InstallWebhooksNamed(ctx, cs, manifests, baseURL, caBundle, "")
}

// InstallWebhooksNamed is InstallWebhooks with the configurations renamed
// (when name is not empty), so they do not collide with an install of the
// chart in the same cluster.
func InstallWebhooksNamed(ctx context.Context, cs kubernetes.Interface, manifests, baseURL string, caBundle []byte, name string) error {
	data, err := os.ReadFile(manifests)
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		switch {
		case strings.Contains(doc, "kind: MutatingWebhookConfiguration"):
			var m admissionregistrationv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
				return fmt.Errorf("%s: %w", manifests, err)
			}
			for i := range m.Webhooks {
				local(&m.Webhooks[i].ClientConfig, baseURL, caBundle)
			}
			if name != "" {
				m.Name = name
			}
			if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &m, metav1.CreateOptions{}); err != nil {
				return err
			}
		case strings.Contains(doc, "kind: ValidatingWebhookConfiguration"):
			var v admissionregistrationv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &v); err != nil {
				return fmt.Errorf("%s: %w", manifests, err)
			}
			for i := range v.Webhooks {
				local(&v.Webhooks[i].ClientConfig, baseURL, caBundle)
			}
			if name != "" {
				v.Name = name
			}
			if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &v, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
	}
	return nil
}

func local(cc *admissionregistrationv1.WebhookClientConfig, baseURL string, caBundle []byte) {
	path := "/"
	if cc.Service != nil && cc.Service.Path != nil {
		path = *cc.Service.Path
	}
	cc.URL = ptr.To(baseURL + path)
	cc.Service, cc.CABundle = nil, caBundle
}

// CA issues serving certificates for 127.0.0.1 and localhost.
type CA struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	// PEM is the CA certificate, for a caBundle.
	PEM    []byte
	serial int64
}

// NewCA creates a CA valid for a day.
func NewCA() (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "podguard-local-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1}, nil
}

// Pool returns a certificate pool holding the CA, for clients.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue writes a new serving certificate (tls.crt) and key (tls.key) into
// dir, each replaced atomically.
func (ca *CA) Issue(dir string) error {
	ca.serial++
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: "podguard-webhook"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"tls.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})},
		{"tls.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
	} {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	return nil
}

// CanaryPod is a Pod (JSON) with a hard-coded secret for every detector of
// the secretsInEnv rule, each holding the marker CanaryMarker: tests check
// the marker never appears in any output, answer, log line or metric.
func CanaryPod() ([]byte, error) {
	return os.ReadFile(filepath.Join(Root(), "hack", "testenv", "testdata", "canary-pod.json"))
}

// CanaryMarker is in every secret value of CanaryPod.
const CanaryMarker = "CANARY"

// CanarySecrets is how many secrets CanaryPod hides (env values and args).
const CanarySecrets = 12

// StartT starts a control plane for a test and stops it when the test
// ends. Under -short (make unit) the test is skipped: it needs the
// kube-apiserver and etcd that make test builds.
func StartT(t testing.TB, apiserverFlags map[string]string) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd; make test runs it")
	}
	env, err := StartWith(apiserverFlags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return env
}

var (
	podguardOnce sync.Once
	podguardPath string
	podguardErr  error
)

// PodguardBinary builds cmd/podguard once per test binary run, into a
// temporary directory, and returns its path.
func PodguardBinary(t testing.TB) string {
	t.Helper()
	podguardOnce.Do(func() {
		dir, err := os.MkdirTemp("", "podguard-bin-")
		if err != nil {
			podguardErr = err
			return
		}
		podguardPath = filepath.Join(dir, "podguard")
		out, err := exec.Command("go", "build", "-o", podguardPath, filepath.Join(Root(), "cmd", "podguard")).CombinedOutput()
		if err != nil {
			podguardErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if podguardErr != nil {
		t.Fatal(podguardErr)
	}
	return podguardPath
}

// RSSMiB is a process's resident memory now, from the kernel
// (/proc/PID/status VmRSS); 0 when it cannot be read.
func RSSMiB(pid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kib, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kib >> 10
		}
	}
	return 0
}

// PeakRSS samples a process's RSS every 50 ms until stop is closed, then
// sends the highest.
func PeakRSS(pid int, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		peak := 0
		for {
			peak = max(peak, RSSMiB(pid))
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return out
}
