package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"podguard.dev/podguard/hack/testenv"
)

// servers are the three HTTPS servers under test; e2e reuses podguard and
// the no-op webhook.
type servers struct {
	ca                      *testenv.CA
	podguard, noop, baretls *server
	pprof                   string
}

func startServers(bins binaries, dir string) *servers {
	ca, err := testenv.NewCA()
	if err != nil {
		fatal(err)
	}
	certDir := filepath.Join(dir, "certs")
	if err := ca.Issue(certDir); err != nil {
		fatal(err)
	}
	port := func() int {
		p, err := testenv.FreePort()
		if err != nil {
			fatal(err)
		}
		return p
	}
	s := &servers{ca: ca}
	pg, health, metrics, pprof := port(), port(), port(), port()
	s.pprof = fmt.Sprintf("http://127.0.0.1:%d", pprof)
	s.podguard = startServer("podguard", bins.podguard, []string{"serve", "--cert-dir", certDir, "--port", fmt.Sprint(pg),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", health), "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metrics),
		"--pprof-bind-address", fmt.Sprintf("127.0.0.1:%d", pprof)}, fmt.Sprintf("http://127.0.0.1:%d/readyz", health), filepath.Join(dir, "podguard.log"))
	s.podguard.port, s.podguard.base = pg, fmt.Sprintf("https://127.0.0.1:%d", pg)
	np := port()
	s.noop = startServer("no-op webhook", bins.noop, []string{"--cert-dir", certDir, "--port", fmt.Sprint(np)}, "", filepath.Join(dir, "noop.log"))
	s.noop.port, s.noop.base = np, fmt.Sprintf("https://127.0.0.1:%d", np)
	bp := port()
	s.baretls = startServer("bare TLS", bins.baretls, []string{"--cert-dir", certDir, "--port", fmt.Sprint(bp)}, "", filepath.Join(dir, "baretls.log"))
	s.baretls.port, s.baretls.base = bp, fmt.Sprintf("https://127.0.0.1:%d", bp)
	return s
}

func (s *servers) stop() {
	for _, sv := range []*server{s.podguard, s.noop, s.baretls} {
		sv.stop()
	}
}

var current *servers

func httpsLoad(r *results, bins binaries, dir string, quick bool) {
	s := startServers(bins, dir)
	current = s
	reqs := requests()
	size := 0
	for _, q := range reqs {
		size += len(q.body)
	}
	step("%d distinct AdmissionReviews, %.1f KB on average", len(reqs), float64(size)/float64(len(reqs))/1024)
	all := []*server{s.podguard, s.noop, s.baretls}
	for _, sv := range all {
		runLoad(sv.name, sv.base, sv.cmd.Process.Pid, s.ca.PEM, reqs, 8, 400, 10*time.Second) // warm up
	}
	n1, nN, maxDur := 4000, 20000, 12*time.Second
	if quick {
		n1, nN, maxDur = 300, 1500, 3*time.Second
	}
	r.Commands = append(r.Commands, fmt.Sprintf("go run ./hack/bench (HTTPS: c=1 up to %d requests, c=8 and c=64 up to %d, each at most %s, two rounds in opposite server order)", n1, nN, maxDur))
	orders := [][]*server{all, {s.baretls, s.noop, s.podguard}}
	for round, order := range orders {
		for _, c := range []int{1, 8, 64} {
			for _, sv := range order {
				n := nN
				if c == 1 {
					n = n1
				}
				res := runLoad(sv.name, sv.base, sv.cmd.Process.Pid, s.ca.PEM, reqs, c, n, maxDur)
				res.Round = round
				step("%-14s c=%-2d round %d: %6.0f req/s p50 %.2fms p99 %.2fms errors %d cpu %.2fs/1000", sv.name, c, round, res.throughput(), res.Summary.P50, res.Summary.P99, res.Errors, res.cpuPer1000())
				r.HTTPS = append(r.HTTPS, res)
			}
		}
	}
	// Peak RSS before profiling, which adds its own buffers.
	for _, sv := range all {
		r.RSS[sv.name] = peakRSS(sv.cmd.Process.Pid)
		step("%-14s peak RSS %.1f MiB", sv.name, r.RSS[sv.name])
	}
	// A CPU profile of podguard under c=64 load: what dominates its work.
	profPath := filepath.Join(dir, "podguard.cpu.pprof")
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(s.pprof + "/debug/pprof/profile?seconds=5")
		if err != nil {
			step("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		f, _ := os.Create(profPath)
		_, _ = io.Copy(f, resp.Body)
		f.Close()
	}()
	runLoad("podguard", s.podguard.base, s.podguard.cmd.Process.Pid, s.ca.PEM, reqs, 64, 1<<30, 6*time.Second)
	<-done
	if resp, err := http.Get(s.pprof + "/debug/pprof/allocs"); err == nil {
		f, _ := os.Create(filepath.Join(dir, "podguard.allocs.pprof"))
		_, _ = io.Copy(f, resp.Body)
		f.Close()
		resp.Body.Close()
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", bins.podguard, profPath).CombinedOutput()
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(l) != "" {
				r.Profile = append(r.Profile, l)
			}
		}
	}
}
