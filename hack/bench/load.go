package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// request is one prepared AdmissionReview and the path it goes to.
type request struct {
	path string
	body []byte
}

// loadResult is one load phase against one server.
type loadResult struct {
	Server      string          `json:"server"`
	Concurrency int             `json:"concurrency"`
	Round       int             `json:"round"`
	Requests    int             `json:"requests"`
	Errors      int             `json:"errors"`
	Seconds     float64         `json:"seconds"`
	CPUSeconds  float64         `json:"cpuSeconds"`
	Latencies   []time.Duration `json:"-"`
	Summary     latencySummary  `json:"latency"`
}

type latencySummary struct {
	P50, P95, P99, Max float64 // milliseconds
}

func summarize(l []time.Duration) latencySummary {
	if len(l) == 0 {
		return latencySummary{}
	}
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) float64 {
		i := int(p * float64(len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return latencySummary{P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: float64(s[len(s)-1].Microseconds()) / 1000}
}

func (r loadResult) throughput() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Seconds
}

func (r loadResult) cpuPer1000() float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.CPUSeconds / float64(r.Requests) * 1000
}

func tlsClient(caPEM []byte, conns int) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
	}}
}

// runLoad sends requests round-robin from c workers over keep-alive TLS
// connections until maxRequests are sent or maxDuration has passed,
// whichever comes first, and measures the server process's CPU time.
func runLoad(server, base string, pid int, caPEM []byte, reqs []request, c, maxRequests int, maxDuration time.Duration) loadResult {
	client := tlsClient(caPEM, c)
	defer client.CloseIdleConnections()
	var next, errs atomic.Int64
	lat := make([][]time.Duration, c)
	cpu0 := cpuSeconds(pid)
	start := time.Now()
	deadline := start.Add(maxDuration)
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(maxRequests) || time.Now().After(deadline) {
					return
				}
				r := reqs[i%int64(len(reqs))]
				t0 := time.Now()
				resp, err := client.Post(base+r.path, "application/json", bytes.NewReader(r.body))
				if err != nil {
					errs.Add(1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"response"`)) || bytes.Contains(body, []byte(`"code":500`)) {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], d)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := loadResult{Server: server, Concurrency: c, Seconds: elapsed.Seconds(), Errors: int(errs.Load()), CPUSeconds: cpuSeconds(pid) - cpu0}
	for _, l := range lat {
		res.Latencies = append(res.Latencies, l...)
	}
	res.Requests = len(res.Latencies) + res.Errors
	res.Summary = summarize(res.Latencies)
	return res
}

// cpuSeconds is a process's user+system CPU time from /proc.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// peakRSS is a process's peak resident set (VmHWM) in MiB.
func peakRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
