package audit

import (
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"podguard.dev/podguard/policies/report"
)

// Metrics are the background audit's Prometheus metrics. Their namespace
// label holds the cluster's namespace names, never request input; the
// series of a namespace with nothing left to judge are deleted.
type Metrics struct {
	// Subjects counts subjects by namespace and result (pass, fail, warn, skip).
	Subjects *prometheus.GaugeVec
	// Findings counts findings by namespace, rule and action.
	Findings *prometheus.GaugeVec
	// LastRun is when the last full scan finished without error.
	LastRun prometheus.Gauge
	// ScanDuration observes full scans.
	ScanDuration prometheus.Histogram
	// ReportWrites counts report writes by kind, operation and result.
	ReportWrites *prometheus.CounterVec
	// ReportKind is 1 for the report kind in use ("none" for none).
	ReportKind *prometheus.GaugeVec

	mu   sync.Mutex
	seen map[string]bool
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Subjects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podguard_audit_subjects",
			Help: "Subjects of the background audit (workloads with their Pods, bare Pods) by namespace and result (pass, fail, warn, skip).",
		}, []string{"namespace", "result"}),
		Findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podguard_audit_findings",
			Help: "Findings of the background audit by namespace, rule and action (enforce, warn, audit).",
		}, []string{"namespace", "rule", "action"}),
		LastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podguard_audit_last_run_timestamp_seconds",
			Help: "When the background audit last finished a full scan without error, as a Unix time.",
		}),
		ScanDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "podguard_audit_scan_duration_seconds",
			Help:    "Duration of the background audit's full scans (judging every namespace and writing changed reports).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		ReportWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podguard_audit_report_writes_total",
			Help: "Report writes of the background audit by kind, operation (create, update, delete) and result; a report is written only when its content changes.",
		}, []string{"kind", "operation", "result"}),
		ReportKind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podguard_audit_report_kind",
			Help: "The report kind the background audit writes (value 1): openreports.io/v1alpha1 Report, wgpolicyk8s.io/v1alpha2 PolicyReport, or none.",
		}, []string{"kind"}),
		seen: map[string]bool{},
	}
	if reg != nil {
		reg.MustRegister(m.Subjects, m.Findings, m.LastRun, m.ScanDuration, m.ReportWrites, m.ReportKind)
	}
	return m
}

// DefaultMetrics registers with controller-runtime's registry once per process.
var DefaultMetrics = sync.OnceValue(func() *Metrics { return NewMetrics(ctrlmetrics.Registry) })

// set replaces a namespace's series with its report's counts.
func (m *Metrics) set(ns *report.Namespace) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[ns.Name] = true
	m.Subjects.DeletePartialMatch(prometheus.Labels{"namespace": ns.Name})
	m.Findings.DeletePartialMatch(prometheus.Labels{"namespace": ns.Name})
	s := ns.Summary
	for result, n := range map[string]int{report.Pass: s.Pass, report.Fail: s.Fail, report.Warn: s.Warn, report.Skip: s.Skip} {
		m.Subjects.WithLabelValues(ns.Name, result).Set(float64(n))
	}
	for _, sub := range ns.Subjects {
		for _, fs := range [][]report.Finding{sub.Violations, sub.Warnings, sub.Audits} {
			for _, f := range fs {
				m.Findings.WithLabelValues(ns.Name, f.Rule, f.Action).Inc()
			}
		}
	}
}

// forget deletes a namespace's series.
func (m *Metrics) forget(namespace string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, namespace)
	m.Subjects.DeletePartialMatch(prometheus.Labels{"namespace": namespace})
	m.Findings.DeletePartialMatch(prometheus.Labels{"namespace": namespace})
}

// namespaces are those with series.
func (m *Metrics) namespaces() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.seen))
}

func (m *Metrics) setKind(kind string) {
	m.ReportKind.Reset()
	m.ReportKind.WithLabelValues(kind).Set(1)
}
