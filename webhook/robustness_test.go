package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// TestBadRequests sends malformed requests straight to both endpoints over
// TLS: each gets a well-formed AdmissionReview with an error status and a
// log line, never a panic or a hung connection, and the server keeps serving.
func TestBadRequests(t *testing.T) {
	c := startCluster(t, clusterConfig{})
	// One connection per request: after an oversized body the server closes
	// the connection, and reusing it would test the HTTP client, not podguard.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // talks to the test server only
	review := func(kind map[string]string, object string) string {
		k, _ := json.Marshal(kind)
		obj := ""
		if object != "" {
			obj = `,"object":` + object
		}
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":` + string(k) +
			`,"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"apps","operation":"CREATE","userInfo":{"username":"tester"}` + obj + `}}`
	}
	pod := map[string]string{"group": "", "version": "v1", "kind": "Pod"}
	cases := []struct {
		name, body, contentType string
		wantCode                int32
		wantMsg                 string
	}{
		{"malformed JSON", `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {`, "application/json", 400, ""},
		{"empty body", ``, "application/json", 400, "empty"},
		{"wrong API version", `{"apiVersion":"admission.k8s.io/v9","kind":"AdmissionReview","request":{"uid":"x"}}`, "application/json", 400, ""},
		{"wrong content type", review(pod, `{"apiVersion":"v1","kind":"Pod"}`), "text/plain", 400, "contentType"},
		{"unknown kind", review(map[string]string{"group": "", "version": "v1", "kind": "ConfigMap"}, `{"apiVersion":"v1","kind":"ConfigMap"}`), "application/json", 400, "not one podguard judges"},
		{"missing object", review(pod, ""), "application/json", 400, "no object"},
		{"object of the wrong shape", review(pod, `{"apiVersion":"v1","kind":"Pod","spec":{"containers":"nope"}}`), "application/json", 400, "decoding the Pod"},
		{"oversized body", review(pod, `{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{"a":"`+strings.Repeat("x", 5<<20)+`"}}}`), "application/json", 400, "too large"},
	}
	for _, path := range []string{"/mutate", "/validate"} {
		for _, tc := range cases {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("https://127.0.0.1:%d%s", c.opts.Port, path), strings.NewReader(tc.body))
				req.Header.Set("Content-Type", tc.contentType)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				var ar admissionv1.AdmissionReview
				if err := json.Unmarshal(body, &ar); err != nil || ar.Response == nil {
					t.Fatalf("not a well-formed AdmissionReview (%v): %s", err, body)
				}
				if ar.Response.Allowed || ar.Response.Result == nil || ar.Response.Result.Code != tc.wantCode {
					t.Errorf("response %+v, want code %d", ar.Response, tc.wantCode)
				}
				if tc.wantMsg != "" && !strings.Contains(ar.Response.Result.Message, tc.wantMsg) {
					t.Errorf("message %q lacks %q", ar.Response.Result.Message, tc.wantMsg)
				}
			})
		}
	}
	if strings.Contains(c.logs.String(), "panic") {
		t.Error("a panic was logged")
	}
	if !strings.Contains(c.logs.String(), "request refused") {
		t.Error("refused requests are not logged")
	}
	// Still serving.
	resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/validate", c.opts.Port), "application/json",
		bytes.NewReader([]byte(review(pod, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ok"},"spec":{"containers":[{"name":"c","image":"c:1"}]}}`))))
	if err != nil {
		t.Fatal(err)
	}
	var ar admissionv1.AdmissionReview
	_ = json.NewDecoder(resp.Body).Decode(&ar)
	resp.Body.Close()
	if ar.Response == nil || ar.Response.UID != "u-1" || ar.Response.Allowed {
		t.Errorf("a real review after the bad ones: %+v", ar.Response)
	}
}

// TestGracefulShutdown: requests in flight when the server is told to stop
// still get their answers, and the server then stops cleanly.
func TestGracefulShutdown(t *testing.T) {
	c := startCluster(t, clusterConfig{})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // test server only
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"g","kind":{"group":"","version":"v1","kind":"Pod"},` +
		`"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"apps","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"c","image":"c:1"}]}}}}`
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered, failed := 0, 0
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/mutate", c.opts.Port), "application/json", strings.NewReader(body))
				if err != nil {
					return // the listener is closed: no new connections after shutdown
				}
				var ar admissionv1.AdmissionReview
				err = json.NewDecoder(resp.Body).Decode(&ar)
				resp.Body.Close()
				mu.Lock()
				if err == nil && ar.Response != nil && ar.Response.Allowed {
					answered++
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	c.stopPodguard(t)
	wg.Wait()
	if answered == 0 || failed > 0 {
		t.Errorf("%d answered, %d broken responses", answered, failed)
	}
}
