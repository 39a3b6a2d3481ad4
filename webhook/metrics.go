package webhook

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics are podguard's Prometheus metrics, served on the manager's
// metrics endpoint next to controller-runtime's own.
type Metrics struct {
	// Decisions counts findings and request outcomes: one sample per
	// finding (rule, action, result denied/warned/audited/injected), and one
	// per request with rule "" (result allowed/denied/mutated/error).
	Decisions *prometheus.CounterVec
	// Latency is the time podguard spends on a request, by endpoint.
	Latency *prometheus.HistogramVec
	// PolicyReloads counts policy loads by result (success, failure).
	PolicyReloads *prometheus.CounterVec
	// PolicyInfo is 1 for the policy in force, labelled with its mode and hash.
	PolicyInfo *prometheus.GaugeVec
	// CertExpiry is the serving certificate's expiry as a Unix time.
	CertExpiry prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podguard_decisions_total",
			Help: "Admission decisions: per finding (by rule and action) and per request (rule=\"\").",
		}, []string{"endpoint", "rule", "action", "kind", "operation", "result"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "podguard_request_duration_seconds",
			Help:    "Time podguard spends deciding an admission request, by endpoint.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
		}, []string{"endpoint", "kind"}),
		PolicyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podguard_policy_reloads_total",
			Help: "Policy loads by result; a failure leaves the last good policy in force.",
		}, []string{"result"}),
		PolicyInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podguard_policy_info",
			Help: "The policy in force (value 1), by mode and the first bytes of its SHA-256.",
		}, []string{"mode", "sha256"}),
		CertExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podguard_certificate_expiry_timestamp_seconds",
			Help: "Expiry of the webhook's serving certificate, as a Unix time.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Decisions, m.Latency, m.PolicyReloads, m.PolicyInfo, m.CertExpiry)
	}
	return m
}

// DefaultMetrics registers with controller-runtime's registry, which the
// manager's metrics server exposes, once per process.
var DefaultMetrics = sync.OnceValue(func() *Metrics { return NewMetrics(ctrlmetrics.Registry) })
