package webhook

// Regression tests for the defects an adversarial pass found in the
// admission path: each drives reviewHandler.ServeHTTP, the HTTP entry
// point, with the request an attacker would send.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sync/semaphore"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies"
)

type testEndpoint struct {
	rh   *reviewHandler
	reg  *prometheus.Registry
	logs *testenv.LogBuffer
}

func newTestEndpoint(t *testing.T, policy string, mutating bool) *testEndpoint {
	t.Helper()
	h := testHandler(t, policy, mutating)
	reg := prometheus.NewRegistry()
	h.Metrics = NewMetrics(reg)
	logs := &testenv.LogBuffer{}
	h.Log = zap.New(zap.WriteTo(logs))
	return &testEndpoint{
		rh: &reviewHandler{handler: h, limits: bodyLimits{max: 4 << 20, readTimeout: 2 * time.Second, decideWithin: 4 * time.Second, budget: semaphore.NewWeighted(32 << 20), slots: semaphore.NewWeighted(4)},
			log: h.Log, metrics: h.Metrics},
		reg: reg, logs: logs,
	}
}

// post sends a body and returns the HTTP status, the raw answer and the decoded review.
func (e *testEndpoint) post(t *testing.T, body string) (int, []byte, *admissionv1.AdmissionReview) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.rh.ServeHTTP(rec, req)
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &ar); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, rec.Body.Bytes())
	}
	return rec.Code, rec.Body.Bytes(), &ar
}

func (e *testEndpoint) metrics(t *testing.T) string {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func review(uid, kind, group, object string) string {
	k, _ := json.Marshal(map[string]string{"group": group, "version": "v1", "kind": kind})
	return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":` + fmt.Sprintf("%q", uid) + `,"kind":` + string(k) +
		`,"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"apps","operation":"CREATE","userInfo":{"username":"mallory"},"object":` + object + `}}`
}

// TestNoDecoderContextInAnswersOrLogs: an object that fails to decode used
// to have the decoder's context (quoting the env value) logged and returned.
func TestNoDecoderContextInAnswersOrLogs(t *testing.T) {
	const canary = "hunter2-canary"
	objects := []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"c:1","env":[{"name":"DB_PASSWORD","value":"` + canary + `","valueFrom":5}]}]}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","creationTimestamp":"` + canary + `"},"spec":{"containers":[]}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"` + canary + `"}}}]}}`,
		`{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"env":[{"name":"X","value":"` + canary + `"}]` + `,"image":5}]}}`,
	}
	for i, obj := range objects {
		for _, mutating := range []bool{true, false} {
			e := newTestEndpoint(t, "", mutating)
			// The object inside the review, and the review itself broken around it.
			for _, body := range []string{review("u1", "Pod", "", obj), strings.Replace(review("u1", "Pod", "", obj), `"uid":"u1"`, `"uid":"u1","dryRun":"`+canary+`"`, 1)} {
				_, raw, ar := e.post(t, body)
				if ar.Response == nil || ar.Response.Allowed {
					t.Errorf("object %d: a broken object must be refused: %s", i, raw)
				}
				if bytes.Contains(raw, []byte(canary)) {
					t.Errorf("object %d: the answer quotes the object: %s", i, raw)
				}
			}
			if strings.Contains(e.logs.String(), canary) || strings.Contains(e.metrics(t), canary) {
				t.Errorf("object %d: logs or metrics quote the object:\n%s", i, e.logs.String())
			}
		}
	}
}

// TestCanaryInEveryObjectOfEveryRequest: the W6 regression. An
// ephemeralcontainers UPDATE whose oldObject holds an env value next to a
// field of the wrong type put the value in the answer and in four log
// lines: the old object was decoded without podguard's own error
// messages. Every operation and subresource, with the canary in object
// and in oldObject, through both endpoints, for a Pod and a Deployment.
func TestCanaryInEveryObjectOfEveryRequest(t *testing.T) {
	const canary = "hunter2-canary-w6"
	broken := map[string]string{
		"Pod":        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"c:1","env":[{"name":"DB_PASSWORD","value":"` + canary + `","valueFrom":5}]}]}}`,
		"Deployment": `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"c:1","env":[{"name":"DB_PASSWORD","value":"` + canary + `","valueFrom":5}]}]}}}}`,
	}
	valid := map[string]string{
		"Pod":        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"c:1"}],"ephemeralContainers":[{"name":"debugger","image":"busybox:1"}]}}`,
		"Deployment": `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"c:2"}]}}}}`,
	}
	group := map[string]string{"Pod": "", "Deployment": "apps"}
	requests := 0
	for _, kind := range []string{"Pod", "Deployment"} {
		for _, op := range []string{"CREATE", "UPDATE", "DELETE", "CONNECT"} {
			for _, sub := range []string{"", "ephemeralcontainers", "resize", "status"} {
				for _, where := range []string{"object", "oldObject"} {
					for _, mutating := range []bool{true, false} {
						e := newTestEndpoint(t, "", mutating)
						obj, old := valid[kind], valid[kind]
						if where == "object" {
							obj = broken[kind]
						} else {
							old = broken[kind]
						}
						body := review("u1", kind, group[kind], obj)
						body = strings.Replace(body, `"operation":"CREATE"`, `"operation":"`+op+`","subResource":"`+sub+`"`, 1)
						body = strings.TrimSuffix(body, "}}") + `,"oldObject":` + old + `}}`
						_, raw, ar := e.post(t, body)
						requests++
						if ar.Response == nil {
							t.Fatalf("%s %s/%s (%s broken): no response: %s", kind, op, sub, where, raw)
						}
						if bytes.Contains(raw, []byte(canary)) {
							t.Errorf("%s %s/%s, %s broken, mutating %v: the answer quotes the object: %s", kind, op, sub, where, mutating, raw)
						}
						if strings.Contains(e.logs.String(), canary) || strings.Contains(e.metrics(t), canary) {
							t.Errorf("%s %s/%s, %s broken, mutating %v: logs or metrics quote the object:\n%s", kind, op, sub, where, mutating, e.logs.String())
						}
					}
				}
			}
		}
	}
	t.Logf("%d requests, the canary in none of their answers, logs or metrics", requests)
}

// TestMetricLabelsAreBounded: request values used to become label values
// and log fields unchecked.
func TestMetricLabelsAreBounded(t *testing.T) {
	e := newTestEndpoint(t, "", false)
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rnd.IntN(26))
		}
		return string(b)
	}
	before := 0
	for i := range 1000 {
		kind := word(1024)
		body := review("u", kind, word(8), `{"apiVersion":"v1","kind":"`+kind+`"}`)
		body = strings.Replace(body, `"operation":"CREATE"`, `"operation":"`+word(64)+`","subResource":"`+word(64)+`"`, 1)
		e.post(t, body)
		if i == 9 {
			before = len(e.metrics(t))
		}
	}
	after := len(e.metrics(t))
	if after > before+512 {
		t.Errorf("/metrics grew from %d to %d bytes over 990 reviews of random kinds", before, after)
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if len(line) > 4096 {
			t.Errorf("a log line of %d bytes: request values are not truncated", len(line))
			break
		}
	}
}

// TestKindMismatchRefused: a privileged Pod sent as a Deployment used to
// be read as an empty Deployment and allowed.
func TestKindMismatchRefused(t *testing.T) {
	e := newTestEndpoint(t, "", false)
	_, raw, ar := e.post(t, review("u", "Deployment", "apps", hostPIDPod))
	if ar.Response == nil || ar.Response.Allowed || ar.Response.Result == nil || !strings.Contains(ar.Response.Result.Message, "refusing to judge one kind as another") {
		t.Errorf("a Pod sent as a Deployment: %s", raw)
	}
	if !strings.Contains(e.metrics(t), `podguard_requests_refused_total{reason="kind_mismatch"} 1`) {
		t.Errorf("refusal not counted:\n%s", e.metrics(t))
	}
	noKind := strings.Replace(hostPIDPod, `"apiVersion":"v1","kind":"Pod",`, "", 1)
	if _, raw, ar := e.post(t, review("u", "Pod", "", noKind)); ar.Response.Allowed {
		t.Errorf("an object without apiVersion and kind: %s", raw)
	}
}

// TestEveryAnswerIsACompleteV1Review: unparseable bodies used to get an
// answer without apiVersion/kind, with an empty uid, or in the sender's
// foreign version.
func TestEveryAnswerIsACompleteV1Review(t *testing.T) {
	e := newTestEndpoint(t, "", false)
	cases := []struct {
		name, body, uid string
	}{
		{"empty", ``, ""},
		{"not JSON", `not json at all`, ""},
		{"truncated with a uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-7","kind":`, "u-7"},
		{"wrong field types", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-8","operation":5}}`, "u-8"},
		{"version v2", `{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"u-9"}}`, "u-9"},
		{"version v1beta1", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u-10","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":` + hostPIDPod + `}}`, "u-10"},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, ""},
		{"a list", `[1,2,3]`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, raw, ar := e.post(t, c.body)
			if code != http.StatusOK || ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" || ar.Response == nil {
				t.Fatalf("HTTP %d, answer %s", code, raw)
			}
			if ar.Response.Allowed || ar.Response.Result == nil || ar.Response.Result.Code != http.StatusBadRequest || string(ar.Response.UID) != c.uid {
				t.Errorf("answer %s, want a refusal with uid %q", raw, c.uid)
			}
		})
	}
}

// TestWarningsKeepUTF8: warnings used to be cut by bytes, splitting
// characters the user wrote.
func TestWarningsKeepUTF8(t *testing.T) {
	msg := strings.Repeat("capability ÄÖÜ-€-☃ ", 20)
	ws := warnings([]policies.Finding{{Rule: "capabilities", Field: "f", Message: msg, Fix: "drop it"}}, nil, 0, "")
	if len(ws) != 1 || len(ws[0]) > maxWarningLength || !utf8.ValidString(ws[0]) || !strings.Contains(ws[0], "…; full text: podguard validate (podguard rule capabilities)") {
		t.Errorf("warning %q (%d bytes, valid UTF-8 %v)", ws[0], len(ws[0]), utf8.ValidString(ws[0]))
	}
	for n := 0; n < 40; n++ {
		s := strings.Repeat("é", n) + strings.Repeat("x", 10)
		if got := truncate(s, 21); !utf8.ValidString(got) || len(got) > 21 {
			t.Errorf("truncate(%q) = %q", s, got)
		}
	}
}

// TestResponseIsBounded: a Pod of 5,000 containers used to produce a 22 MB
// answer. Now a list of more than maxContainers containers is refused
// before it is even decoded whole; up to that, denials list maxCauses
// violations and count the rest, and the patch merges each container's
// injections into one operation per subtree.
func TestResponseIsBounded(t *testing.T) {
	containers := func(n int, extra string) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"c%d","image":"registry.example/c:1"%s}`, i, extra)
		}
		return b.String()
	}
	pod := func(n int, extra string) string {
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big"},"spec":{"containers":[` + containers(n, extra) + `]}}`
	}
	const privileged = `,"securityContext":{"privileged":true,"runAsUser":0,"capabilities":{"add":["SYS_ADMIN"]}}`
	for _, mutating := range []bool{false, true} {
		e := newTestEndpoint(t, "", mutating)
		_, raw, ar := e.post(t, review("u", "Pod", "", pod(5000, privileged)))
		if ar.Response.Allowed || !strings.Contains(ar.Response.Result.Message, "more than 1000 containers") || len(raw) > 1024 {
			t.Errorf("5,000 containers (mutating %v): %s", mutating, raw)
		}
	}
	v := newTestEndpoint(t, "", false)
	_, raw, ar := v.post(t, review("u", "Pod", "", pod(maxContainers, privileged)))
	violations, warns := 0, 0
	if ar.Response.Result != nil && ar.Response.Result.Details != nil {
		for _, c := range ar.Response.Result.Details.Causes {
			switch c.Type {
			case CauseWarning:
				warns++
			default:
				violations++
			}
		}
	}
	if ar.Response.Allowed || violations != maxCauses+1 || warns > maxWarnings+1 || !strings.Contains(ar.Response.Result.Message, "more violations; run podguard validate") {
		t.Errorf("denial of %d privileged containers: %d violation causes, %d warning causes", maxContainers, violations, warns)
	}
	if len(raw) > 64<<10 {
		t.Errorf("denial of %d bytes", len(raw))
	}
	m := newTestEndpoint(t, "", true)
	_, raw, ar = m.post(t, review("u", "Pod", "", pod(maxContainers, "")))
	var ops []map[string]any
	if err := json.Unmarshal(ar.Response.Patch, &ops); err != nil || len(ops) != 2*maxContainers+1 {
		t.Errorf("%d bare containers: %d patch operations (%v), want one per container subtree (securityContext, resources) and one for the pod", maxContainers, len(ops), err)
	}
	if len(raw) > 400*maxContainers {
		t.Errorf("%d bare containers: an answer of %d bytes", maxContainers, len(raw))
	}
}

// TestRequestMetricsOnePerRequest: podguard_decisions_total mixed a sample
// per request and one per finding; the split metrics do not.
func TestRequestMetricsOnePerRequest(t *testing.T) {
	e := newTestEndpoint(t, "", false)
	for range 3 {
		e.post(t, review("u", "Pod", "", hostPIDPod))
	}
	out := e.metrics(t)
	for _, want := range []string{
		`podguard_admission_requests_total{endpoint="validate",kind="Pod",operation="CREATE",result="denied",subresource=""} 3`,
		`podguard_rule_findings_total{action="enforce",endpoint="validate",kind="Pod",rule="hostNamespaces"} 3`,
		`podguard_decisions_total{action="",endpoint="validate",kind="Pod",operation="CREATE",result="denied",rule=""} 3`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestDefaultPolicyIsReported: the built-in default policy used to set
// neither podguard_policy_info nor a reload count.
func TestDefaultPolicyIsReported(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if _, err := NewPolicyStore("", "podguard", "", logr.Discard(), m, nil); err != nil {
		t.Fatal(err)
	}
	e := &testEndpoint{reg: reg}
	out := e.metrics(t)
	for _, want := range []string{`podguard_policy_info{mode="enforce",sha256="`, `podguard_policy_reloads_total{result="success"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s:\n%s", want, out)
		}
	}
}

// TestMethodAndContentType: anything but a JSON POST gets an error review.
func TestMethodAndContentType(t *testing.T) {
	e := newTestEndpoint(t, "", false)
	for _, c := range []struct {
		method, contentType string
		status              int
	}{{http.MethodGet, "application/json", http.StatusMethodNotAllowed}, {http.MethodPut, "application/json", http.StatusMethodNotAllowed},
		{http.MethodPost, "text/plain", http.StatusOK}, {http.MethodPost, "application/json; charset=utf-8", http.StatusOK}} {
		req := httptest.NewRequest(c.method, "/validate", strings.NewReader(review("u", "Pod", "", hostPIDPod)))
		req.Header.Set("Content-Type", c.contentType)
		rec := httptest.NewRecorder()
		e.rh.ServeHTTP(rec, req)
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &ar); err != nil || rec.Code != c.status || ar.Response == nil || ar.Response.Allowed {
			t.Errorf("%s %s: HTTP %d %s", c.method, c.contentType, rec.Code, rec.Body.Bytes())
		}
	}
}

// TestCanarySecretsNeverShown: with secretsInEnv warning, enforcing or
// auditing, on both endpoints, no detected secret appears in an answer
// (warnings, denial, audit annotations, patch), a log line or a metric.
func TestCanarySecretsNeverShown(t *testing.T) {
	pod, err := testenv.CanaryPod()
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"warn", "enforce", "audit"} {
		policy := "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  secretsInEnv:\n    action: " + action + "\n"
		for _, mutating := range []bool{false, true} {
			e := newTestEndpoint(t, policy, mutating)
			_, raw, ar := e.post(t, review("u", "Pod", "", string(pod)))
			if strings.Contains(string(raw), testenv.CanaryMarker) || strings.Contains(e.logs.String(), testenv.CanaryMarker) || strings.Contains(e.metrics(t), testenv.CanaryMarker) {
				t.Errorf("%s (mutating %v): a secret shows:\n%s\n%s", action, mutating, raw, e.logs.String())
			}
			if mutating {
				continue
			}
			found := strings.Join(ar.Response.Warnings, "\n") + fmt.Sprint(ar.Response.AuditAnnotations)
			if ar.Response.Result != nil {
				found += ar.Response.Result.Message
				for _, c := range ar.Response.Result.Details.Causes {
					found += c.Message
				}
			}
			if !strings.Contains(found, "secretsInEnv") {
				t.Errorf("%s: the secrets are not reported: %s", action, raw)
			}
		}
	}
}
