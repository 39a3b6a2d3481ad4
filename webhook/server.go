package webhook

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	goruntime "runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/semaphore"
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

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/webhook/audit"
	"podguard.dev/podguard/webhook/imageverify"
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
	// TrustDir is where the ConfigMaps and Secrets the policy's image
	// rules name are mounted (DefaultTrustDir when empty).
	TrustDir string
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
	// MaxInflightRequestBytes caps the memory of all request bodies being
	// read or answered at once.
	MaxInflightRequestBytes int64
	// WebhookTimeout is the timeoutSeconds of the webhook configurations
	// that call podguard: the API server gives up on a call after it. Every
	// wait inside podguard ends in time to answer before it.
	WebhookTimeout time.Duration
	// RequestReadTimeout is how long a request body may take to arrive;
	// 0 derives it from WebhookTimeout (two fifths of it).
	RequestReadTimeout time.Duration
	// MaxConnections caps the webhook server's open connections.
	MaxConnections int
	// MaxConcurrentReviews caps the reviews decoded and decided at once;
	// 0 means 2 per CPU (GOMAXPROCS), at least 4.
	MaxConcurrentReviews int
	// ShutdownDelay is how long podguard keeps serving after a stop signal,
	// not ready and closing each connection after its answer, so the
	// Service's endpoints and the API server's connections move to other
	// replicas before the listener closes.
	ShutdownDelay time.Duration
	// Kubeconfig is a kubeconfig path; empty means in-cluster or $KUBECONFIG.
	Kubeconfig string
	// ShutdownTimeout bounds how long in-flight requests may finish on stop.
	ShutdownTimeout time.Duration
	// PprofBindAddress, when set, serves Go's pprof profiles there.
	PprofBindAddress string
	// AuditInterval is how often the background audit judges everything
	// again; 0 disables the background audit. It also judges a namespace
	// when something in it changes, and everything when the policy does.
	AuditInterval time.Duration
	// AuditOptOut names the namespaces podguard's webhooks never see (the
	// chart passes its webhook.optOutLabel and excludeNamespaces): the
	// background audit leaves them out of its reports.
	AuditOptOut report.OptOut
	// WatchExceptions watches PodGuardExceptions (default true; false for
	// a cluster that grants podguard no read on them).
	WatchExceptions bool
	// RegistryCAFile is a PEM bundle of CAs, besides the system's, that
	// registries' certificates may chain to, for imageDigest's fix.
	RegistryCAFile string
	// RegistryAuthFiles are Docker config files (mounted
	// kubernetes.io/dockerconfigjson Secrets) whose credentials podguard
	// presents to registries; empty: anonymous.
	RegistryAuthFiles []string
	// PodPullSecrets presents a pod's own imagePullSecrets (read from its
	// namespace) to registries, before RegistryAuthFiles; needs get on
	// Secrets wherever podguard judges pods.
	PodPullSecrets bool
	// Events records Kubernetes Events for denials and for what mutation
	// injects into Pods (needs create and patch on events.k8s.io events);
	// EventsQPS and EventsBurst bound how many, across every object.
	Events      bool
	EventsQPS   float32
	EventsBurst int
	// LogDecisions selects the decisions logged: all, denied or none.
	LogDecisions string
	// DecisionLog, when set, logs the decisions (so --log-level does not
	// silence them by accident); otherwise the server's logger does.
	DecisionLog logr.Logger
	// Version and Commit label podguard_build_info.
	Version, Commit string
	// LeaderElect elects one replica (a Lease in Namespace) to run the
	// background audit; admission is served by every replica regardless.
	LeaderElect bool
	// Operations are what this process does: OperationWebhook (serve
	// admission) and OperationAudit (the background audit). The chart runs
	// them in two Deployments, so admission replicas never hold a cache of
	// the cluster's pods; a single process may do both.
	Operations []string
}

// The operations a podguard serve process can run (--operation).
const (
	// OperationWebhook serves /mutate and /validate.
	OperationWebhook = "webhook"
	// OperationAudit runs the background audit.
	OperationAudit = "audit"
)

// runs reports whether the process runs an operation.
func (o *Options) runs(op string) bool { return slices.Contains(o.Operations, op) }

// DefaultOptions returns the defaults of the command line.
func DefaultOptions() Options {
	return Options{
		Namespace:               "podguard",
		CertDir:                 "",
		Host:                    "127.0.0.1",
		Port:                    9443,
		MetricsBindAddress:      "127.0.0.1:8080",
		HealthProbeBindAddress:  "127.0.0.1:8081",
		MaxRequestBytes:         4 << 20,
		MaxInflightRequestBytes: 16 << 20,
		WebhookTimeout:          5 * time.Second,
		MaxConnections:          512,
		ShutdownDelay:           5 * time.Second,
		ShutdownTimeout:         30 * time.Second,
		AuditInterval:           time.Hour,
		WatchExceptions:         true,
		Events:                  true,
		EventsQPS:               5,
		EventsBurst:             25,
		LogDecisions:            LogDecisionsAll,
		Operations:              []string{OperationWebhook, OperationAudit},
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

// restConfig returns the API server's configuration and whether podguard
// has API access at all (mode dir needs none).
func restConfig(o Options) (*rest.Config, bool, error) {
	if o.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		return cfg, err == nil, err
	}
	// In a pod: the service account; elsewhere $KUBECONFIG or ~/.kube/config.
	cfg, err := rest.InClusterConfig()
	if err != nil {
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err == nil {
		return cfg, true, nil
	}
	if o.CertMode == CertModeDir {
		// Serving from a certificate directory needs no API access at all;
		// the manager still wants a config, which nothing will use.
		return &rest.Config{Host: "https://127.0.0.1:1"}, false, nil
	}
	return nil, false, fmt.Errorf("the built-in certificate mode needs API access (give --kubeconfig, or --cert-dir to serve certificate files): %w", err)
}

// Validate checks the options that cannot be checked by their type.
func (o *Options) Validate() error {
	var errs []error
	if o.MaxRequestBytes <= 0 {
		errs = append(errs, fmt.Errorf("--max-request-bytes must be greater than 0 (is %d)", o.MaxRequestBytes))
	}
	// The largest body is held twice for a moment: in the chunks it was
	// read into and joined into one buffer.
	if need := 2 * (o.MaxRequestBytes + minChunk); o.MaxInflightRequestBytes < need {
		errs = append(errs, fmt.Errorf("--max-inflight-request-bytes (%d) must be at least twice --max-request-bytes plus %d (%d), or no request of the largest size could be read", o.MaxInflightRequestBytes, 2*minChunk, need))
	}
	if o.Events && (o.EventsQPS <= 0 || o.EventsBurst < 1) {
		errs = append(errs, fmt.Errorf("--events-qps must be above 0 and --events-burst at least 1 (are %g and %d); --events=false turns Events off", o.EventsQPS, o.EventsBurst))
	}
	if o.WebhookTimeout < time.Second || o.WebhookTimeout > 30*time.Second {
		errs = append(errs, fmt.Errorf("--webhook-timeout must be the webhook configurations' timeoutSeconds, 1s to 30s (is %s)", o.WebhookTimeout))
	}
	if o.RequestReadTimeout < 0 {
		errs = append(errs, errors.New("--request-read-timeout must not be negative (0: two fifths of --webhook-timeout)"))
	}
	if o.RequestReadTimeout > 0 && o.RequestReadTimeout >= o.decideWithin() {
		errs = append(errs, fmt.Errorf("--request-read-timeout (%s) must be shorter than %s, four fifths of --webhook-timeout (%s): a body still arriving then could not be answered before the API server gives up", o.RequestReadTimeout, o.decideWithin(), o.WebhookTimeout))
	}
	if o.MaxConcurrentReviews < 0 {
		errs = append(errs, errors.New("--max-concurrent-reviews must not be negative (0: 2 per CPU)"))
	}
	if o.MaxConnections < 0 {
		errs = append(errs, errors.New("--max-connections must not be negative (0: no limit)"))
	}
	switch o.LogDecisions {
	case "", LogDecisionsAll, LogDecisionsDenied, LogDecisionsNone:
	default:
		errs = append(errs, fmt.Errorf("--log-decisions must be all, denied or none (is %q)", o.LogDecisions))
	}
	if o.AuditInterval < 0 {
		errs = append(errs, errors.New("--audit-interval must not be negative (0 disables the background audit)"))
	}
	if len(o.Operations) == 0 {
		errs = append(errs, errors.New("--operation: name webhook, audit or both"))
	}
	for _, op := range o.Operations {
		if op != OperationWebhook && op != OperationAudit {
			errs = append(errs, fmt.Errorf("--operation %q: use webhook or audit (repeat the flag for both)", op))
		}
	}
	if o.ShutdownDelay < 0 || o.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-delay must not be negative and --shutdown-timeout must be greater than 0"))
	}
	return errors.Join(errs...)
}

// decideWithin is how long a request may take from its arrival to its
// answer: four fifths of the webhook timeout, leaving the rest to the
// network and the API server.
func (o *Options) decideWithin() time.Duration { return o.WebhookTimeout * 4 / 5 }

// readTimeout is the effective --request-read-timeout.
func (o *Options) readTimeout() time.Duration {
	if o.RequestReadTimeout > 0 {
		return o.RequestReadTimeout
	}
	return o.WebhookTimeout * 2 / 5
}

// Run serves until ctx ends. It then drains: readiness turns false and
// each connection is closed after its answer for ShutdownDelay, then the
// listener closes and in-flight requests get ShutdownTimeout to finish.
func Run(ctx context.Context, o Options, log logr.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.runs(OperationWebhook) {
		cleanup, err := o.resolveCertMode()
		if err != nil {
			return err
		}
		defer cleanup()
	}
	ctrl.SetLogger(log)
	metrics := DefaultMetrics()
	metrics.BuildInfo.Reset()
	metrics.BuildInfo.WithLabelValues(orUnknown(o.Version), orUnknown(o.Commit), goruntime.Version()).Set(1)
	// One transport for registries and the TUF repositories a policy
	// names: both trust the registry CA bundle, when one is given.
	registries, err := ReloadingRegistryTransport(o.RegistryCAFile, log.WithName("registries"))
	if err != nil {
		return err
	}
	store, err := NewPolicyStore(o.PolicyFile, o.Namespace, cmp.Or(o.TrustDir, DefaultTrustDir), log.WithName("policy"), metrics,
		NewTUFRoots(registries, log.WithName("tuf")).Read)
	if err != nil {
		return err
	}
	cfg, apiAccess, err := restConfig(o)
	if err != nil {
		return err
	}
	auditOn := o.runs(OperationAudit) && o.AuditInterval > 0 && apiAccess
	if o.runs(OperationAudit) && o.AuditInterval > 0 && !apiAccess {
		log.Info("background audit off: it needs API access (run in a cluster or give --kubeconfig)")
	}
	var certs *certSource
	var whServer *tlsServer
	metricsTLS := []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	if o.runs(OperationWebhook) || o.CertDir != "" {
		// The metrics endpoint serves the webhook's own certificate (for
		// <service>.<namespace>.svc, from podguard's CA), so a scraper can
		// verify it with that CA instead of skipping verification; the
		// chart's audit Deployment mounts the same tls.crt and tls.key
		// (not the CA's key) for its metrics. An audit-only process
		// without --cert-dir serves controller-runtime's self-signed one.
		certs = &certSource{dir: o.CertDir, log: log.WithName("certs"), metrics: metrics}
		metricsTLS = append(metricsTLS, func(c *tls.Config) { c.MinVersion, c.GetCertificate = tls.VersionTLS12, certs.GetCertificate })
	}
	if o.runs(OperationWebhook) {
		whServer = newTLSServer(o.Host, o.Port, &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: certs.GetCertificate,
			NextProtos:     []string{"http/1.1"},
		}, o.MaxConnections, o.ShutdownTimeout, log.WithName("webhook"))
	}
	mgr, err := newManager(cfg, o, log, whServer, metricsTLS, auditOn)
	if err != nil {
		return err
	}
	draining := &atomic.Bool{}
	checks := map[string]healthz.Checker{
		"shutdown": func(*http.Request) error {
			if draining.Load() {
				return errors.New("shutting down")
			}
			return nil
		},
		"policy": func(*http.Request) error {
			if !store.Ready() {
				return errors.New("no policy loaded")
			}
			return nil
		},
	}
	if err := mgr.Add(store); err != nil {
		return err
	}
	if apiAccess && o.WatchExceptions {
		if err := mgr.Add(NewExceptionWatcher(cfg, store, log.WithName("exceptions"))); err != nil {
			return err
		}
	}
	reg, err := newRegistryClients(o, registries, log, metrics)
	if err != nil {
		return err
	}
	if o.PodPullSecrets && apiAccess {
		reg.pullSecrets = NewPullSecrets(mgr.GetAPIReader(), log.WithName("pull-secrets"))
	}
	if o.runs(OperationWebhook) {
		var events *Events
		if apiAccess && o.Events {
			events = NewEvents(mgr.GetEventRecorder("podguard"), o.EventsQPS, o.EventsBurst)
		}
		if err := addWebhook(mgr, o, log, store, metrics, certs, whServer, draining, checks, events, reg); err != nil {
			return err
		}
	} else if certs != nil {
		if err := mgr.Add(certs); err != nil {
			return err
		}
	}
	if auditOn {
		bg := audit.NewBackground(cfg, store, log.WithName("audit"), audit.DefaultMetrics(), audit.BackgroundOptions{Interval: o.AuditInterval, OptOut: o.AuditOptOut,
			ImageFacts: reg.facts(auditImageBudget)})
		if err := mgr.Add(bg); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	for name, c := range checks {
		if err := mgr.AddReadyzCheck(name, c); err != nil {
			return err
		}
	}
	webhookAt := "off"
	if o.runs(OperationWebhook) {
		webhookAt = fmt.Sprintf("%s:%d", o.Host, o.Port)
	}
	log.Info("starting podguard", "webhook", webhookAt, "certMode", o.CertMode, "certDir", o.CertDir,
		"audit", auditState(auditOn, o),
		"metrics", o.MetricsBindAddress, "health", o.HealthProbeBindAddress, "policy", policySource(o.PolicyFile))
	return runDraining(ctx, mgr, o, log, draining)
}

// resolveCertMode fills in the certificate mode and, in builtin mode
// without --cert-dir, a temporary directory cleanup removes.
func (o *Options) resolveCertMode() (cleanup func(), err error) {
	cleanup = func() {}
	if o.CertMode == "" {
		o.CertMode = CertModeDir
		if o.CertDir == "" {
			o.CertMode = CertModeBuiltin
		}
	}
	switch o.CertMode {
	case CertModeDir:
		if o.CertDir == "" {
			return cleanup, errors.New("--cert-mode dir needs --cert-dir")
		}
	case CertModeBuiltin:
		if o.CertDir == "" {
			dir, err := os.MkdirTemp("", "podguard-certs-")
			if err != nil {
				return cleanup, err
			}
			o.CertDir = dir
			cleanup = func() { os.RemoveAll(dir) }
		}
	default:
		return cleanup, fmt.Errorf("unknown certificate mode %q: use %s or %s", o.CertMode, CertModeDir, CertModeBuiltin)
	}
	return cleanup, nil
}

// newManager builds the controller-runtime manager: metrics, health, the
// webhook server when there is one, and a leader election for the audit.
func newManager(cfg *rest.Config, o Options, log logr.Logger, whServer *tlsServer, metricsTLS []func(*tls.Config), auditOn bool) (manager.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	ms := metricsserver.Options{BindAddress: o.MetricsBindAddress, SecureServing: o.MetricsSecure, TLSOpts: metricsTLS}
	if o.MetricsSecure {
		ms.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mo := manager.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Metrics:                 ms,
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		GracefulShutdownTimeout: ptr.To(o.ShutdownTimeout),
		PprofBindAddress:        o.PprofBindAddress,
		// Only the background audit needs a leader; every replica serves
		// admission whether it leads or not.
		LeaderElection:                auditOn && o.LeaderElect,
		LeaderElectionID:              "podguard-audit",
		LeaderElectionNamespace:       o.Namespace,
		LeaderElectionReleaseOnCancel: true,
	}
	if whServer != nil {
		mo.WebhookServer = whServer
	}
	return ctrl.NewManager(cfg, mo)
}

// registryClients are podguard's one digest resolver and one image
// verifier, shared by the webhook and the background audit (one cache).
type registryClients struct {
	digests *DigestResolver
	images  *imageverify.Verifier
	// pullSecrets, when set, adds each pod's own imagePullSecrets.
	pullSecrets *PullSecrets
}

// newRegistryClients builds them on registries, serve's one registry
// transport.
func newRegistryClients(o Options, registries http.RoundTripper, log logr.Logger, metrics *Metrics) (*registryClients, error) {
	// A Secret mounted as optional may not exist yet: registries are asked
	// anonymously until the kubelet writes it (each lookup reads the files).
	missing, err := checkAuthFiles(o.RegistryAuthFiles)
	if err != nil {
		return nil, err
	}
	for _, f := range missing {
		log.Info("warning: a registry auth file is not there (yet); it applies once it appears", "file", f)
	}
	r := &registryClients{digests: NewDigestResolver(registries, log.WithName("digests")), images: imageverify.New(registries, log.WithName("images"))}
	if len(o.RegistryAuthFiles) > 0 {
		r.digests.Keychain, r.images.Keychain = AuthFiles(o.RegistryAuthFiles), AuthFiles(o.RegistryAuthFiles)
	}
	r.images.Observe = metrics.observeImage
	return r, nil
}

// auditImageBudget bounds what the background audit waits for the
// registries of one subject: it runs beside admission, with no API
// server waiting on it.
const auditImageBudget = 5 * time.Second

// facts hands the engine what the registries say of a target's images,
// within budget (see VerifyImages).
func (r *registryClients) facts(budget time.Duration) func(*v1alpha1.Policy, *podspec.Target, *policies.Attributes) {
	return func(p *v1alpha1.Policy, t *podspec.Target, a *policies.Attributes) {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		ctx = r.pullSecrets.With(ctx, a.Namespace, t.Spec)
		VerifyImages(ctx, r.digests, r.images, p, t, nil).Apply(a)
	}
}

// addWebhook registers the admission endpoints, the certificates and the
// webhook's readiness checks.
func addWebhook(mgr manager.Manager, o Options, log logr.Logger, store *PolicyStore, metrics *Metrics, certs *certSource, whServer *tlsServer,
	draining *atomic.Bool, checks map[string]healthz.Checker, events *Events, reg *registryClients) error {
	// GetWebhookServer also adds the server to the manager's runnables.
	srv := mgr.GetWebhookServer()
	slots := o.MaxConcurrentReviews
	if slots == 0 {
		slots = max(4, 2*goruntime.GOMAXPROCS(0))
	}
	limits := bodyLimits{max: o.MaxRequestBytes, readTimeout: o.readTimeout(), decideWithin: o.decideWithin(),
		evictAfter: min(o.readTimeout()/4, 500*time.Millisecond), inflight: &inflightBodies{},
		budget: semaphore.NewWeighted(o.MaxInflightRequestBytes), slots: semaphore.NewWeighted(int64(slots))}
	decisions := log
	if o.DecisionLog.GetSink() != nil {
		decisions = o.DecisionLog
	}
	digests, images := reg.digests, reg.images
	for path, mutating := range map[string]bool{MutatePath: true, ValidatePath: false} {
		h := &Handler{Store: store, Log: decisions.WithName("admission"), Metrics: metrics, Mutating: mutating, Decisions: o.LogDecisions, Events: events, PullSecrets: reg.pullSecrets}
		if mutating {
			// A fifth of the webhook's timeout: with the body's read
			// (two fifths at most) the answer still leaves in time.
			h.Digests, h.DigestBudget = digests, o.WebhookTimeout/5
		} else {
			// Two fifths of the webhook's timeout: reading the body takes
			// two at most, and the answer still leaves in time. The
			// validating side resolves tags itself (its own cache).
			h.Digests, h.Images, h.ImageBudget = digests, images, 2*o.WebhookTimeout/5
		}
		srv.Register(path, &reviewHandler{handler: h, limits: limits, draining: draining, log: log.WithName("admission"), metrics: metrics})
	}
	if err := mgr.Add(certs); err != nil {
		return err
	}
	checks["webhook-server"] = whServer.StartedChecker()
	checks["certificate"] = certs.Ready
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
	return nil
}

// runDraining runs the manager until ctx ends, then drains: not ready and
// closing connections after their answers for ShutdownDelay, then stop.
func runDraining(ctx context.Context, mgr manager.Manager, o Options, log logr.Logger, draining *atomic.Bool) error {
	mgrCtx, stop := context.WithCancel(context.Background())
	defer stop()
	mgrDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-mgrDone:
			return
		}
		draining.Store(true)
		log.Info("stopping: not ready, draining connections", "shutdownDelay", o.ShutdownDelay.String(), "shutdownTimeout", o.ShutdownTimeout.String())
		select {
		case <-time.After(o.ShutdownDelay):
		case <-mgrDone:
		}
		stop()
	}()
	err := mgr.Start(mgrCtx)
	close(mgrDone)
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func auditState(on bool, o Options) string {
	switch {
	case !on:
		return "off"
	case o.LeaderElect:
		return "every " + o.AuditInterval.String() + " and on change, on the elected replica"
	}
	return "every " + o.AuditInterval.String() + " and on change"
}

func policySource(p string) string {
	if p == "" {
		return "built-in default"
	}
	return p
}
