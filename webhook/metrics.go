package webhook

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/podspec"
)

// Metrics are podguard's Prometheus metrics, served on the manager's
// metrics endpoint next to controller-runtime's own. Every label value
// comes from a fixed set (see label), never straight from a request, so a
// client cannot grow the series without bound.
type Metrics struct {
	// Requests counts admission requests by outcome (allowed, denied,
	// mutated, error), one sample per request.
	Requests *prometheus.CounterVec
	// Findings counts findings by rule and action (enforce, warn, audit,
	// mutate), one sample per finding.
	Findings *prometheus.CounterVec
	// Decisions is the metric of podguard 0.1, which mixed one sample per
	// request (rule "") and one per finding in one series.
	//
	// Deprecated: use Requests and Findings; kept for one release.
	Decisions *prometheus.CounterVec
	// Latency is the time podguard spends on a request, by endpoint.
	Latency *prometheus.HistogramVec
	// PolicyReloads counts policy loads by result (success, failure).
	PolicyReloads *prometheus.CounterVec
	// PolicyInfo is 1 for the policy in force, labelled with its mode and hash.
	PolicyInfo *prometheus.GaugeVec
	// CertExpiry is the serving certificate's expiry as a Unix time.
	CertExpiry prometheus.Gauge
	// RequestsRefused counts requests answered without a decision because
	// of their form (malformed, too large, too slow, server busy), by reason.
	RequestsRefused *prometheus.CounterVec
	// BuildInfo is 1, labelled with the running build.
	BuildInfo *prometheus.GaugeVec
	// ExemptionExpiry is when each expiring exemption of the policy and
	// each PodGuardException (not ignored) expires, as a Unix time.
	// Exceptions are RBAC-gated objects, so their names bound the series.
	ExemptionExpiry *prometheus.GaugeVec
	// Exceptions counts PodGuardExceptions by state (active, expired, ignored).
	Exceptions *prometheus.GaugeVec
	// ImageVerifications counts imageSignatures verdicts by result
	// (verified, unsigned, stale, unreachable) and by whether the cache
	// answered (cache: hit, miss). stale is a digest admitted on an
	// earlier verification while its registry cannot be reached.
	ImageVerifications *prometheus.CounterVec
	// TrustProblems is how many trust sources (ConfigMap or Secret keys
	// the image rules read) the policy in force could not use: each one
	// leaves the images its authority vouches for denied.
	TrustProblems prometheus.Gauge
}

func (m *Metrics) observeImage(status imagetrust.Status, cached bool) {
	m.ImageVerifications.WithLabelValues(string(status), map[bool]string{true: "hit", false: "miss"}[cached]).Inc()
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podguard_admission_requests_total",
			Help: "Admission requests by endpoint, kind, operation, subresource and result (allowed, denied, mutated, error).",
		}, []string{"endpoint", "kind", "operation", "subresource", "result"}),
		Findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podguard_rule_findings_total",
			Help: "Findings by endpoint, rule, action (enforce, warn, audit, mutate) and kind: one per offending field.",
		}, []string{"endpoint", "rule", "action", "kind"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podguard_decisions_total",
			Help: "DEPRECATED (removed in the next release): use podguard_admission_requests_total and podguard_rule_findings_total. " +
				"Per finding (by rule and action) and per request (rule=\"\") in one series.",
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
		RequestsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podguard_requests_refused_total",
			Help: "Requests answered with an error before any decision, by reason (malformed, too_large, read_timeout, busy, kind_mismatch).",
		}, []string{"reason"}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podguard_build_info",
			Help: "The running podguard (value 1), by version, commit and Go version.",
		}, []string{"version", "commit", "go_version"}),
		ExemptionExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podguard_exemption_expiry_timestamp_seconds",
			Help: "When an exemption expires, as a Unix time, by source (policy or exception) and exemption (exemptions[i] of the policy, or a PodGuardException's namespace/name).",
		}, []string{"source", "exemption"}),
		Exceptions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podguard_exceptions",
			Help: "PodGuardExceptions by state: active, expired, ignored (the policy does not allow them).",
		}, []string{"state"}),
		ImageVerifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podguard_image_verifications_total",
			Help: "imageSignatures verdicts by result (verified, unsigned, stale: admitted on an earlier verification while the registry is unreachable, unreachable) and cache (hit, miss).",
		}, []string{"result", "cache"}),
		TrustProblems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podguard_trust_source_problems",
			Help: "Trust sources (ConfigMap or Secret keys the image rules read) that are missing or hold no usable key or trusted root; the images their authorities vouch for are denied.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Findings, m.Decisions, m.Latency, m.PolicyReloads, m.PolicyInfo, m.CertExpiry, m.RequestsRefused, m.BuildInfo,
			m.ExemptionExpiry, m.Exceptions, m.ImageVerifications, m.TrustProblems)
	}
	return m
}

// DefaultMetrics registers with controller-runtime's registry, which the
// manager's metrics server exposes, once per process.
var DefaultMetrics = sync.OnceValue(func() *Metrics { return NewMetrics(ctrlmetrics.Registry) })

// labelKinds are the kind label values: the kinds podguard judges.
var labelKinds = func() map[string]bool {
	m := map[string]bool{}
	for _, gk := range podspec.SupportedKinds {
		m[gk.Kind] = true
	}
	return m
}()

// Fixed label sets for values that come from a request.
var (
	labelOperations   = map[string]bool{"CREATE": true, "UPDATE": true, "DELETE": true, "CONNECT": true}
	labelSubresources = map[string]bool{"": true, "ephemeralcontainers": true, "resize": true, "status": true, "binding": true, "eviction": true}
)

// label returns v when it is in the fixed set, else "other".
func label(set map[string]bool, v string) string {
	if set[v] {
		return v
	}
	return "other"
}

// setExpiries publishes the expiry of every expiring exemption and
// exception, and the count of exceptions by state.
func (m *Metrics) setExpiries(p *v1alpha1.Policy, states []policies.ExceptionState) {
	m.ExemptionExpiry.Reset()
	for i, e := range p.Exemptions {
		if t, err := v1alpha1.ParseExpiry(e.Expires); err == nil && e.Expires != "" {
			m.ExemptionExpiry.WithLabelValues("policy", fmt.Sprintf("exemptions[%d]", i)).Set(float64(t.Unix()))
		}
	}
	counts := map[string]int{policies.ExceptionActive: 0, policies.ExceptionExpired: 0, policies.ExceptionIgnored: 0}
	for _, st := range states {
		counts[st.State]++
		if st.State != policies.ExceptionIgnored {
			m.ExemptionExpiry.WithLabelValues("exception", st.Namespace+"/"+st.Name).Set(float64(st.Until.Unix()))
		}
	}
	for state, n := range counts {
		m.Exceptions.WithLabelValues(state).Set(float64(n))
	}
}
