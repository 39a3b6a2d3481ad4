package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Certificate modes.
const (
	// CertModeDir serves the certificate files of CertDir, reloading them
	// when they change. No API access is needed for certificates.
	CertModeDir = "dir"
	// CertModeBuiltin creates and rotates a CA and serving certificate in
	// a Secret and keeps podguard's webhook configurations' caBundle current.
	CertModeBuiltin = "builtin"
)

// Options configure `podguard serve`.
type Options struct {
	PolicyFile string
	// Namespace is podguard's own namespace.
	Namespace string
	CertMode  string
	CertDir   string
	Builtin   BuiltinCerts
	// Host and Port are where the webhook server listens.
	Host string
	Port int
	// MetricsBindAddress ("0" disables) and MetricsSecure (authenticated
	// HTTPS through the API server's TokenReview and SubjectAccessReview).
	MetricsBindAddress string
	MetricsSecure      bool
	// HealthProbeBindAddress serves /healthz and /readyz.
	HealthProbeBindAddress string
	// MaxRequestBytes caps an AdmissionReview's size.
	MaxRequestBytes int64
	// Kubeconfig is a kubeconfig path; empty means in-cluster or $KUBECONFIG.
	Kubeconfig string
	// ShutdownTimeout bounds how long in-flight requests may finish on stop.
	ShutdownTimeout time.Duration
	// PprofBindAddress, when set, serves Go's pprof profiles there.
	PprofBindAddress string
}

// DefaultOptions returns the defaults of the command line.
func DefaultOptions() Options {
	return Options{
		Namespace:              "podguard",
		CertDir:                "",
		Host:                   "127.0.0.1",
		Port:                   9443,
		MetricsBindAddress:     "127.0.0.1:8080",
		HealthProbeBindAddress: "127.0.0.1:8081",
		MaxRequestBytes:        4 << 20,
		ShutdownTimeout:        30 * time.Second,
		Builtin: BuiltinCerts{
			SecretName:        "podguard-webhook-cert",
			ServiceName:       "podguard-webhook",
			MutatingWebhook:   "podguard",
			ValidatingWebhook: "podguard",
			CertValidity:      365 * 24 * time.Hour,
			CAValidity:        10 * 365 * 24 * time.Hour,
			Lookahead:         90 * 24 * time.Hour,
			CheckInterval:     12 * time.Hour,
			SyncInterval:      5 * time.Second,
		},
	}
}

func restConfig(o Options) (*rest.Config, error) {
	if o.Kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	}
	// In a pod: the service account; elsewhere $KUBECONFIG or ~/.kube/config.
	cfg, err := rest.InClusterConfig()
	if err != nil {
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err == nil {
		return cfg, nil
	}
	if o.CertMode == CertModeDir {
		// Serving from a certificate directory needs no API access at all;
		// the manager still wants a config, which nothing will use.
		return &rest.Config{Host: "https://127.0.0.1:1"}, nil
	}
	return nil, fmt.Errorf("the built-in certificate mode needs API access (give --kubeconfig, or --cert-dir to serve certificate files): %w", err)
}

// Run serves until ctx ends, then lets in-flight requests finish.
func Run(ctx context.Context, o Options, log logr.Logger) error {
	if o.CertMode == "" {
		o.CertMode = CertModeDir
		if o.CertDir == "" {
			o.CertMode = CertModeBuiltin
		}
	}
	switch o.CertMode {
	case CertModeDir:
		if o.CertDir == "" {
			return errors.New("--cert-mode dir needs --cert-dir")
		}
	case CertModeBuiltin:
		if o.CertDir == "" {
			dir, err := os.MkdirTemp("", "podguard-certs-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			o.CertDir = dir
		}
	default:
		return fmt.Errorf("unknown certificate mode %q: use %s or %s", o.CertMode, CertModeDir, CertModeBuiltin)
	}
	ctrl.SetLogger(log)
	metrics := DefaultMetrics()
	store, err := NewPolicyStore(o.PolicyFile, o.Namespace, log.WithName("policy"), metrics)
	if err != nil {
		return err
	}
	cfg, err := restConfig(o)
	if err != nil {
		return err
	}
	certs := &certSource{dir: o.CertDir, log: log.WithName("certs"), metrics: metrics}
	noHTTP2 := func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }
	whServer := crwebhook.NewServer(crwebhook.Options{
		Host: o.Host,
		Port: o.Port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.GetCertificate = certs.GetCertificate
		}, noHTTP2},
	})
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	ms := metricsserver.Options{BindAddress: o.MetricsBindAddress, SecureServing: o.MetricsSecure, TLSOpts: []func(*tls.Config){noHTTP2}}
	if o.MetricsSecure {
		ms.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Metrics:                 ms,
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		WebhookServer:           whServer,
		GracefulShutdownTimeout: ptr.To(o.ShutdownTimeout),
		PprofBindAddress:        o.PprofBindAddress,
	})
	if err != nil {
		return err
	}
	// GetWebhookServer also adds the server to the manager's runnables.
	srv := mgr.GetWebhookServer()
	for path, mutating := range map[string]bool{MutatePath: true, ValidatePath: false} {
		h := &Handler{Store: store, Log: log.WithName("admission"), Metrics: metrics, Mutating: mutating}
		wh := &admission.Webhook{Handler: h, RecoverPanic: ptr.To(true)}
		srv.Register(path, &reviewHandler{handler: h, fallback: limitBody(wh, o.MaxRequestBytes), max: o.MaxRequestBytes, log: log.WithName("admission")})
	}
	if err := mgr.Add(store); err != nil {
		return err
	}
	if err := mgr.Add(certs); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	checks := map[string]healthz.Checker{
		"webhook-server": whServer.StartedChecker(),
		"certificate":    certs.Ready,
		"policy": func(*http.Request) error {
			if !store.Ready() {
				return errors.New("no policy loaded")
			}
			return nil
		},
	}
	if o.CertMode == CertModeBuiltin {
		injected, err := addBuiltinCerts(mgr, o.Builtin, o.Namespace, o.CertDir, log.WithName("certs"))
		if err != nil {
			return err
		}
		checks["ca-injected"] = func(*http.Request) error {
			select {
			case <-injected:
				return nil
			default:
				return errors.New("the CA is not yet in the webhook configurations")
			}
		}
	}
	for name, c := range checks {
		if err := mgr.AddReadyzCheck(name, c); err != nil {
			return err
		}
	}
	log.Info("starting podguard", "webhook", fmt.Sprintf("%s:%d", o.Host, o.Port), "certMode", o.CertMode, "certDir", o.CertDir,
		"metrics", o.MetricsBindAddress, "health", o.HealthProbeBindAddress, "policy", policySource(o.PolicyFile))
	return mgr.Start(ctx)
}

func policySource(p string) string {
	if p == "" {
		return "built-in default"
	}
	return p
}

// limitBody refuses AdmissionReviews above max bytes; the webhook then
// answers with a well-formed error review.
func limitBody(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if max > 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		h.ServeHTTP(w, r)
	})
}
