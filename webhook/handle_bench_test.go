package webhook

import (
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"podguard.dev/podguard/hack/testenv"

	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkReview measures one AdmissionReview through the handler, body
// to answer, as kube-apiserver sends them (webhook/testdata/reviews): a
// Pod create to each endpoint and a Deployment create to /validate.
//
//	go test -run '^$' -bench BenchmarkReview -benchmem ./webhook/
func BenchmarkReview(b *testing.B) {
	for _, c := range []struct {
		name, file string
		mutating   bool
	}{
		{"pod-mutate", "pod-create.json", true},
		{"pod-validate", "pod-create.json", false},
		{"deployment-validate", "deployment-create.json", false},
	} {
		body, err := os.ReadFile(filepath.Join("testdata", "reviews", c.file))
		if err != nil {
			b.Skip(err)
		}
		b.Run(c.name, func(b *testing.B) {
			e := newBenchEndpoint(b, c.mutating)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// newBenchEndpoint is the review handler of one endpoint under the default
// policy, with serve's default bounds.
func newBenchEndpoint(b *testing.B, mutating bool) *reviewHandler {
	b.Helper()
	e := testenv.Enforcer(b, "")
	m := NewMetrics(prometheus.NewRegistry())
	s := &PolicyStore{log: logr.Discard(), metrics: m}
	s.current.Store(e)
	h := &Handler{Store: s, Log: logr.Discard(), Metrics: m, Mutating: mutating, Decisions: LogDecisionsNone}
	return &reviewHandler{handler: h, log: logr.Discard(), metrics: m,
		limits: bodyLimits{max: 4 << 20, readTimeout: 2 * time.Second, decideWithin: 4 * time.Second,
			budget: semaphore.NewWeighted(16 << 20), slots: semaphore.NewWeighted(4)}}
}
