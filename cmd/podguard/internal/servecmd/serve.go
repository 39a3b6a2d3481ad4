// Package servecmd implements `podguard serve`: the admission webhook server.
package servecmd

import (
	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/cmd/podguard/internal/versioncmd"
	"podguard.dev/podguard/webhook"
)

// NewCommand returns the serve command.
func NewCommand(s cli.Streams) *cobra.Command {
	o := webhook.DefaultOptions()
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "serve [--policy FILE] [--cert-dir DIR] [--port 9443] [--metrics-bind-address 127.0.0.1:8080] [--health-probe-bind-address 127.0.0.1:8081]",
		Short: "Run the admission webhook server (/mutate and /validate)",
		Long: `Run podguard's admission webhook: /mutate injects what the policy can fix,
/validate denies what breaks it, for Pods and the pod templates of Deployments,
ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers
and PodTemplates. The policy file is reloaded when it changes; an invalid one is
refused and the last good policy keeps serving.

Certificates: with --cert-dir (mode dir) tls.crt and tls.key are served from
that directory and reloaded when they change; no API access is needed for
them. Without --cert-dir (mode builtin) podguard creates a CA and a serving
certificate in the Secret --cert-secret, keeps the caBundle of its webhook
configurations current and renews the certificate before it expires.

Background audit (--audit-interval, default 1h; 0 disables): with API access,
podguard watches the kinds it judges and NetworkPolicies and keeps one report
per namespace (openreports.io Report if that CRD is installed, else
wgpolicyk8s.io PolicyReport, else metrics and logs only), judging a namespace
again when something in it changes and everything when the policy does.

Operations (--operation): a process runs the webhook, the background audit, or
both (the default). The chart runs admission replicas with --operation=webhook
and the audit in a Deployment of its own with --operation=audit, so the
replicas that answer the API server never hold a cache of the cluster's pods.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl := zapcore.InfoLevel
			if err := lvl.Set(logLevel); err != nil {
				return cli.BadInput("--log-level: %v", err)
			}
			zo := zap.Options{Development: logFormat == "console", Level: lvl, DestWriter: s.Err}
			log := zap.New(zap.UseFlagOptions(&zo)).WithValues("version", versioncmd.Get().Version)
			// Decisions are logged at info whatever --log-level says;
			// --log-decisions chooses which.
			do := zo
			do.Level = zapcore.InfoLevel
			o.DecisionLog = zap.New(zap.UseFlagOptions(&do)).WithValues("version", versioncmd.Get().Version)
			o.Version, o.Commit = versioncmd.Get().Version, versioncmd.Get().Commit
			if err := o.Validate(); err != nil {
				return cli.BadInput("%v", err)
			}
			setMemoryLimit(log)
			if err := webhook.Run(cmd.Context(), o, log); err != nil {
				return &cli.ExitError{Code: cli.ExitBadInput, Err: err}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.PolicyFile, "policy", "", "policy file, reloaded when it changes; default: the built-in default policy")
	cli.AddOwnNamespaceFlag(fs, &o.Namespace, "podguard's own namespace (env POD_NAMESPACE): exempt by default, home of the certificate Secret")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory of tls.crt and tls.key (mode dir); in mode builtin where they are written")
	fs.StringVar(&o.CertMode, "cert-mode", "", "dir or builtin; default: dir when --cert-dir is given, builtin otherwise")
	fs.StringVar(&o.Host, "bind-address", o.Host, "address the webhook listens on (empty: all interfaces)")
	fs.IntVar(&o.Port, "port", o.Port, "port of the webhook server (HTTPS)")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "address of the Prometheus metrics endpoint; 0 disables it")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", false, "serve metrics over HTTPS, authenticated and authorized through the API server")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz")
	fs.Int64Var(&o.MaxRequestBytes, "max-request-bytes", o.MaxRequestBytes, "largest AdmissionReview accepted, in bytes")
	fs.Int64Var(&o.MaxInflightRequestBytes, "max-inflight-request-bytes", o.MaxInflightRequestBytes, "memory all request bodies being read or answered may hold together, in bytes")
	fs.DurationVar(&o.WebhookTimeout, "webhook-timeout", o.WebhookTimeout, "the timeoutSeconds of the webhook configurations calling podguard (the chart passes its own): every wait ends in time to answer before it")
	fs.DurationVar(&o.RequestReadTimeout, "request-read-timeout", o.RequestReadTimeout, "how long a request body may take to arrive (0: two fifths of --webhook-timeout); shorter than four fifths of --webhook-timeout")
	fs.IntVar(&o.MaxConnections, "max-connections", o.MaxConnections, "most connections the webhook server keeps open (0: no limit)")
	fs.IntVar(&o.MaxConcurrentReviews, "max-concurrent-reviews", 0, "most reviews decoded and decided at once (0: 2 per CPU, at least 4)")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "after SIGTERM, how long to keep serving while not ready, so endpoints and connections move to other replicas")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster configuration or $KUBECONFIG")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long in-flight requests may finish after SIGTERM")
	fs.StringVar(&o.Builtin.SecretName, "cert-secret", o.Builtin.SecretName, "builtin mode: Secret holding the CA and serving certificate (must exist)")
	fs.StringVar(&o.Builtin.ServiceName, "webhook-service", o.Builtin.ServiceName, "builtin mode: the webhook Service the certificate is for")
	fs.StringVar(&o.Builtin.MutatingWebhook, "mutating-webhook-configuration", o.Builtin.MutatingWebhook, "builtin mode: MutatingWebhookConfiguration whose caBundle podguard keeps current")
	fs.StringVar(&o.Builtin.ValidatingWebhook, "validating-webhook-configuration", o.Builtin.ValidatingWebhook, "builtin mode: ValidatingWebhookConfiguration whose caBundle podguard keeps current")
	fs.DurationVar(&o.Builtin.CertValidity, "cert-validity", o.Builtin.CertValidity, "builtin mode: lifetime of a serving certificate")
	fs.DurationVar(&o.Builtin.CAValidity, "ca-validity", o.Builtin.CAValidity, "builtin mode: lifetime of the CA")
	fs.DurationVar(&o.Builtin.Lookahead, "cert-renew-before", o.Builtin.Lookahead, "builtin mode: renew this long before expiry")
	fs.DurationVar(&o.Builtin.CheckInterval, "cert-check-interval", o.Builtin.CheckInterval, "builtin mode: how often expiry is checked")
	fs.DurationVar(&o.Builtin.SyncInterval, "cert-sync-interval", o.Builtin.SyncInterval, "builtin mode: how often the Secret is copied to --cert-dir when it changed")
	fs.StringVar(&o.AuditOptOut.Label, "audit-opt-out-label", "", "background audit: namespaces labelled with it set to true are not audited, as the webhooks never see them (the chart passes webhook.optOutLabel)")
	fs.StringArrayVar(&o.AuditOptOut.Exclude, "audit-exclude-namespace", nil, "background audit: a namespace the webhooks never see, not audited; repeatable (the chart passes webhook.excludeNamespaces and its own namespace)")
	fs.StringVar(&o.TrustDir, "trust-dir", webhook.DefaultTrustDir, "where the ConfigMaps and Secrets the image rules' pemFrom and trustedRootFrom name are mounted (configmaps/NAME/KEY, secrets/NAME/KEY; the chart mounts each one its policy names); read again with each policy check, so a rotated key applies within seconds of the kubelet updating the volume")
	fs.StringVar(&o.RegistryCAFile, "registry-ca-file", "", "PEM bundle of CAs (besides the system's) registries' certificates may chain to, for imageDigest's fix, which asks registries what digest a tag resolves to, and imageSignatures, which reads signatures from them")
	fs.StringSliceVar(&o.RegistryAuthFiles, "registry-auth-file", nil, "Docker config file (config.json, or a mounted kubernetes.io/dockerconfigjson Secret's .dockerconfigjson) whose auths podguard presents to registries; repeatable; read on each lookup; credential helpers are never run")
	fs.BoolVar(&o.PodPullSecrets, "pod-pull-secrets", false, "present each pod's own imagePullSecrets (read from its namespace, matched to registries as the kubelet does) to registries, before --registry-auth-file, for the image rules; needs get on Secrets wherever podguard judges pods (chart: registries.podPullSecrets)")
	fs.BoolVar(&o.Events, "events", true, "record Kubernetes Events for denials (on the object, or its namespace when it does not exist yet) and for what mutation injects into Pods (needs create and patch on events.k8s.io events); never for dry-run requests")
	fs.Float32Var(&o.EventsQPS, "events-qps", 5, "at most this many Events a second, across every object (one per object and reason a minute)")
	fs.IntVar(&o.EventsBurst, "events-burst", 25, "bursts of Events above --events-qps")
	fs.BoolVar(&o.WatchExceptions, "exceptions", true, "watch PodGuardExceptions cluster-wide and honour those the policy allows (needs list and watch on podguardexceptions.podguard.dev)")
	fs.DurationVar(&o.AuditInterval, "audit-interval", o.AuditInterval, "background audit: how often everything is judged again and reports refreshed (also on every change and policy reload); 0 disables it")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect one replica (Lease podguard-audit in --namespace) to run the background audit; set it when running more than one replica")
	fs.StringArrayVar(&o.Operations, "operation", o.Operations, "what this process runs: webhook (admission), audit (the background audit); repeat for both (the default). The chart runs them in two Deployments")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", "", "serve Go pprof profiles on this address (empty: off); for profiling only")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info or error (decisions follow --log-decisions)")
	fs.StringVar(&o.LogDecisions, "log-decisions", o.LogDecisions, "admission decisions to log, whatever --log-level: all, denied (and refused requests) or none")
	fs.StringVar(&logFormat, "log-format", "json", "json or console")
	return cmd
}
