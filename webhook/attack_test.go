package webhook_test

// Attacks on a real podguard process (the binary, built once per test run)
// over real TLS on loopback: slow and large bodies, amplification, and a
// SIGTERM under keep-alive load. The process's memory is read from the
// kernel (/proc/PID/status) while the attack runs. Every load here is
// bounded in count and time and sent only to 127.0.0.1.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/hack/testenv"
)

// podguardBinary builds cmd/podguard once per test run.
func podguardBinary(t *testing.T) string { return testenv.PodguardBinary(t) }

// process is a podguard serve process with its own certificates.
type process struct {
	cmd              *exec.Cmd
	port             int
	health           string
	logs             *testenv.LogBuffer
	exited           chan error
	client           *http.Client
	webhookURL       string
	validate, mutate string
	// caPEM is the CA of the process's serving certificate.
	caPEM []byte
}

func startProcess(t *testing.T, extra ...string) *process {
	t.Helper()
	bin := podguardBinary(t)
	dir := t.TempDir()
	ca, err := testenv.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(dir); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{port: port, health: freeAddr(t), logs: &testenv.LogBuffer{}, exited: make(chan error, 1), caPEM: ca.PEM}
	args := append([]string{"serve", "--cert-dir", dir, "--port", strconv.Itoa(port), "--bind-address", "127.0.0.1",
		"--metrics-bind-address", freeAddr(t), "--health-probe-bind-address", p.health}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	pool := ca.Pool()
	p.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64}}
	p.webhookURL = fmt.Sprintf("https://127.0.0.1:%d", port)
	p.validate, p.mutate = p.webhookURL+"/validate", p.webhookURL+"/mutate"
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.health + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("podguard not ready:\n%s", p.logs.String())
	return nil
}

// rssMiB is the process's resident memory now, from the kernel.
func (p *process) rssMiB(t *testing.T) int {
	t.Helper()
	r := testenv.RSSMiB(p.cmd.Process.Pid)
	if r == 0 {
		t.Fatal("no VmRSS")
	}
	return r
}

// peakRSS samples the RSS every 50ms until stop is closed.
func (p *process) peakRSS(_ *testing.T, stop <-chan struct{}) <-chan int {
	return testenv.PeakRSS(p.cmd.Process.Pid, stop)
}

func reviewBody(uid, object string) string {
	return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + uid + `","kind":{"group":"","version":"v1","kind":"Pod"},` +
		`"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"apps","operation":"CREATE","userInfo":{"username":"tester"},"object":` + object + `}}`
}

const smallPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"c:1"}]}}`

// answer posts a review and returns its response (nil on any failure).
func (p *process) answer(url, body string) (*admissionv1.AdmissionResponse, error) {
	resp, err := p.client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ar admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil {
		return nil, err
	}
	if ar.Response == nil {
		return nil, fmt.Errorf("no response")
	}
	return ar.Response, nil
}

// slowClient opens a TLS connection, sends the headers of a POST with a
// large Content-Length and then trickles (or sends size bytes and stalls).
func slowClient(ctx context.Context, t *testing.T, p *process, sent int, trickle bool, done *sync.WaitGroup) {
	defer done.Done()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), &tls.Config{InsecureSkipVerify: true}) // loopback attack client
	if err != nil {
		return
	}
	defer conn.Close()
	// The server cutting the connection off ends the attack on it.
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	fmt.Fprintf(conn, "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n")
	if sent > 0 {
		_, _ = conn.Write(bytes.Repeat([]byte(" "), sent))
	}
	for trickle && ctx.Err() == nil {
		if _, err := conn.Write([]byte(" ")); err != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-closed:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	select {
	case <-ctx.Done():
	case <-closed:
	}
}

// stallingClient sends size bytes of a body on one connection after
// another, stalling each until the server cuts it off or every seconds
// pass, until ctx ends.
func stallingClient(ctx context.Context, p *process, size int, every time.Duration, done *sync.WaitGroup) {
	defer done.Done()
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, every)
		var wg sync.WaitGroup
		wg.Add(1)
		slowClient(cctx, nil, p, size, false, &wg)
		cancel()
	}
}

// TestSlowBodiesDoNotExhaustMemory: 100 connections announcing 4 MiB
// bodies and trickling them used to take the server to 477 MB (it grew its
// buffer to the Content-Length up front, and no deadline ended the read).
// Then 60 connections send 3 MiB each and stall: the body budget holds.
func TestSlowBodiesDoNotExhaustMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a podguard process and attacks it for several seconds")
	}
	p := startProcess(t, "--request-read-timeout", "3s")
	base := p.rssMiB(t)
	for _, attack := range []struct {
		name    string
		conns   int
		sent    int
		trickle bool
		bound   int // MiB above the baseline
	}{
		{"100 trickling 4 MiB bodies", 100, 0, true, 30},
		{"60 bodies of 3 MiB, stalled", 60, 3 << 20, false, 16*3 + 10},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		stop := make(chan struct{})
		peak := p.peakRSS(t, stop)
		var wg sync.WaitGroup
		for range attack.conns {
			wg.Add(1)
			go slowClient(ctx, t, p, attack.sent, attack.trickle, &wg)
		}
		time.Sleep(2 * time.Second)
		// A real review during the attack is still answered.
		start := time.Now()
		resp, err := p.answer(p.validate, reviewBody("during", smallPod))
		took := time.Since(start)
		wg.Wait()
		cancel()
		close(stop)
		max := <-peak
		t.Logf("%s: RSS %d MiB before, peak %d MiB during; a real review answered in %s (%v)", attack.name, base, max, took.Round(time.Millisecond), err)
		if max > base+attack.bound {
			t.Errorf("%s: RSS rose from %d to %d MiB (bound %d MiB above the baseline)", attack.name, base, max, attack.bound)
		}
		if attack.trickle && (err != nil || resp.UID != "during") {
			t.Errorf("%s: the real review got %v, %v", attack.name, resp, err)
		}
	}
	if !strings.Contains(p.logs.String(), `"refusal":"read_timeout"`) {
		t.Errorf("slow bodies were not cut off by the read timeout:\n%s", tail(p.logs.String(), 2000))
	}
}

// TestAmplificationIsBounded: 8 concurrent reviews of a 5,000-container
// Pod used to take the server to 1.06 GB with 22 MB answers. Such a Pod is
// now refused as it is decoded; the largest Pod judged (1,000 containers,
// all privileged, or all bare for the mutating side) is answered in bounded
// size and memory.
func TestAmplificationIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a podguard process")
	}
	p := startProcess(t)
	var b strings.Builder
	pod := func(n int, extra string) string {
		b.Reset()
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"c%d","image":"registry.example/c:1"%s}`, i, extra)
		}
		return reviewBody("big", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big"},"spec":{"containers":[`+b.String()+`]}}`)
	}
	huge, privileged, bare := pod(5000, `,"securityContext":{"privileged":true,"runAsUser":0}`), pod(1000, `,"securityContext":{"privileged":true,"runAsUser":0}`), pod(1000, "")
	base := p.rssMiB(t)
	stop := make(chan struct{})
	peak := p.peakRSS(t, stop)
	var wg sync.WaitGroup
	var largest atomic.Int64
	var failed atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url, body := p.validate, privileged
			switch i % 4 {
			case 1:
				url, body = p.mutate, bare
			case 2:
				body = huge
			case 3:
				url, body = p.mutate, huge
			}
			for range 5 {
				resp, err := p.client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n > largest.Load() {
					largest.Store(n)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	max := <-peak
	t.Logf("8 clients, 5 reviews each of 1,000-container Pods (%d KiB) and 5,000-container Pods (%d KiB): RSS %d MiB before, peak %d MiB; largest answer %d bytes",
		len(privileged)>>10, len(huge)>>10, base, max, largest.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed", failed.Load())
	}
	if largest.Load() > 400<<10 {
		t.Errorf("an answer of %d bytes", largest.Load())
	}
	if max > base+80 {
		t.Errorf("RSS rose from %d to %d MiB", base, max)
	}
}

// TestSigtermUnderKeepAliveLoad: 4 of ~4,140 requests used to fail when
// SIGTERM stopped the server at once. Now readiness turns false first and
// connections close after their answers while the server keeps serving for
// --shutdown-delay; clients that stop sending when readiness turns false
// (as the endpoints controller does) see no failure.
func TestSigtermUnderKeepAliveLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a podguard process")
	}
	p := startProcess(t, "--shutdown-delay", "2s")
	var ready atomic.Bool
	ready.Store(true)
	go func() {
		for ready.Load() {
			resp, err := http.Get("http://" + p.health + "/readyz")
			if err != nil || resp.StatusCode != http.StatusOK {
				ready.Store(false)
			}
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	var sent, failed atomic.Int32
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ready.Load() {
				sent.Add(1)
				resp, err := p.answer(p.mutate, reviewBody("k", smallPod))
				if err != nil || !resp.Allowed {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint(err))
				}
			}
		}()
	}
	time.Sleep(time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Errorf("podguard exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("podguard did not stop within 20s of SIGTERM")
	}
	t.Logf("%d requests sent under keep-alive, %d failed", sent.Load(), failed.Load())
	if failed.Load() > 0 || sent.Load() < 100 {
		t.Errorf("%d of %d requests failed across SIGTERM (first: %v)", failed.Load(), sent.Load(), firstErr.Load())
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestSlowHeadersAndStalledHandshakes: connections that never finish their
// TLS handshake or their headers are closed after 5s, and hold little
// memory meanwhile; the deepest JSON is refused, not a crash.
func TestSlowHeadersAndStalledHandshakes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a podguard process and attacks it for several seconds")
	}
	p := startProcess(t)
	base := p.rssMiB(t)
	stop := make(chan struct{})
	peak := p.peakRSS(t, stop)
	var wg sync.WaitGroup
	var closedByServer atomic.Int32
	start := time.Now()
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), 5*time.Second)
			if err != nil {
				return
			}
			defer raw.Close()
			var conn net.Conn = raw
			if i%3 != 0 { // a third stall before the handshake
				tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) // loopback attack client
				if tc.Handshake() != nil {
					return
				}
				conn = tc
				fmt.Fprintf(conn, "POST /validate HTTP/1.1\r\nHost: x\r\nX-Slow: ")
				go func() {
					for range 100 {
						if _, err := conn.Write([]byte("aaaaaaaaaa")); err != nil {
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
				}()
			}
			_ = raw.SetReadDeadline(time.Now().Add(15 * time.Second))
			if _, err := io.Copy(io.Discard, conn); err == nil || !os.IsTimeout(err) {
				closedByServer.Add(1)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	resp, err := p.answer(p.validate, reviewBody("during", smallPod))
	wg.Wait()
	took := time.Since(start)
	close(stop)
	max := <-peak
	t.Logf("300 stalled connections: RSS %d MiB before, peak %d MiB; %d closed by the server after %s; a real review: %v", base, max, closedByServer.Load(), took.Round(100*time.Millisecond), err)
	if err != nil || resp.UID != "during" {
		t.Errorf("a real review during the attack: %v %v", resp, err)
	}
	if closedByServer.Load() < 290 || took > 12*time.Second {
		t.Errorf("%d of 300 stalled connections closed by the server within %s", closedByServer.Load(), took)
	}
	if max > base+40 {
		t.Errorf("RSS rose from %d to %d MiB", base, max)
	}
	deep := reviewBody("deep", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"x","args":`+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`}]}}`)
	if resp, err := p.answer(p.validate, deep); err != nil || resp.Allowed || resp.UID != "deep" {
		t.Errorf("deeply nested JSON: %+v, %v", resp, err)
	}
}

// TestUniqueEnvNamesDoNotGrowMemory: the secret detector cached the
// verdict of every env var name it saw, keyed by the name: one unique 1 MB
// name per review grew the webhook by about 1 MB a review and kept it
// (49 → 436 MiB after 300). 1,000 reviews with a unique 1 MB name each
// must leave the process within 64 MiB of where it started (the body
// budget and the garbage collector's headroom), and so must the reviews'
// decoding, judging and answering.
func TestUniqueEnvNamesDoNotGrowMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1 GB through a real podguard process; make test runs it")
	}
	p := startProcess(t)
	before := p.rssMiB(t)
	name := bytes.Repeat([]byte("A"), 1<<20)
	stop := make(chan struct{})
	peak := p.peakRSS(t, stop)
	for i := range 1000 {
		copy(name, fmt.Sprintf("N%07d_", i))
		pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"c:1","env":[{"name":"` + string(name) + `","value":"x"}]}]}}`
		resp, err := p.client.Post(p.validate, "application/json", strings.NewReader(reviewBody(fmt.Sprintf("u%d", i), pod)))
		if err != nil {
			t.Fatal(err)
		}
		var ar admissionv1.AdmissionReview
		err = json.NewDecoder(resp.Body).Decode(&ar)
		resp.Body.Close()
		if err != nil || ar.Response == nil {
			t.Fatalf("review %d: %v", i, err)
		}
	}
	close(stop)
	after, top := p.rssMiB(t), <-peak
	t.Logf("RSS %d MiB before, %d MiB after 1,000 reviews of a unique 1 MiB env var name each (peak %d MiB)", before, after, top)
	if after > before+64 {
		t.Errorf("RSS grew from %d to %d MiB: request data is kept", before, after)
	}
}

// TestSlowBodiesThroughTheAPIServer: the W2 regression, through the real
// API server. With default flags, 60 connections that each send 3 MiB of
// a body and stall (reconnecting as soon as they are cut off, or every
// 10 s) used to make real reviews wait 7-9 s for body budget: through
// kube-apiserver 4 of 8 pod creates failed "failed calling webhook"
// (timeoutSeconds 5, failurePolicy Fail). Now the waits end within four
// fifths of --webhook-timeout, and bodies that have been arriving too long
// are cut off when another needs the budget: every create is decided by
// podguard while the attack runs.
func TestSlowBodiesThroughTheAPIServer(t *testing.T) {
	env := testenv.StartT(t, nil)
	p := startProcess(t) // default flags: --webhook-timeout 5s
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := testenv.InstallWebhooks(ctx, env.Clientset, filepath.Join(testenv.Root(), "config/webhook/manifests.yaml"), p.webhookURL, p.caPEM); err != nil {
		t.Fatal(err)
	}
	// The webhooks serve before the attack starts.
	create := func(name string, privileged, dryRun bool) error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/c:1",
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(privileged)}}}}}
		opts := metav1.CreateOptions{}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		_, err := env.Clientset.CoreV1().Pods("default").Create(ctx, pod, opts)
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := create("ready", true, true); err != nil && strings.Contains(err.Error(), "podguard") {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the webhooks do not answer: %v", err)
		}
	}

	attack, stopAttack := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 60 {
		wg.Add(1)
		go stallingClient(attack, p, 3<<20, 10*time.Second, &wg)
	}
	time.Sleep(2 * time.Second) // the budget is spent
	var failed, decided int
	var slowest time.Duration
	for i := range 12 {
		privileged := i%2 == 1
		start := time.Now()
		err := create(fmt.Sprintf("during-%d", i), privileged, i%3 != 0)
		took := time.Since(start)
		slowest = max(slowest, took)
		switch {
		case err == nil && !privileged, err != nil && privileged && strings.Contains(err.Error(), "podguard"):
			decided++
		default:
			failed++
			t.Errorf("create %d (privileged %v) during the attack, %s: %v", i, privileged, took.Round(time.Millisecond), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopAttack()
	wg.Wait()
	t.Logf("during the attack (60 connections, 3 MiB each, stalled): %d creates decided by podguard, %d failed; slowest %s", decided, failed, slowest.Round(time.Millisecond))
	if slowest > 4*time.Second {
		t.Errorf("a create took %s: the API server gives up at 5 s", slowest)
	}
	if !strings.Contains(p.logs.String(), "still arriving when its budget was needed") {
		t.Errorf("no stalled body was cut off to make room:\n%s", tail(p.logs.String(), 2000))
	}
}
