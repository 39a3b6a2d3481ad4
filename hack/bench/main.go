// Command bench measures podguard side by side with its baselines and
// writes BENCHMARKS.md (with a latency plot) from the measurements of the
// run: the engine against pod-security-admission; the HTTPS webhook against
// a no-op controller-runtime webhook and a bare TLS server; pod creation
// through a real kube-apiserver with no webhook, podguard, an in-process
// ValidatingAdmissionPolicy and a no-op webhook pair; the audit at scale.
//
// Usage: go run ./hack/bench [-quick] [-out BENCHMARKS.md]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"podguard.dev/podguard/hack/bench/reviews"
	"podguard.dev/podguard/hack/testenv"
)

type results struct {
	Started time.Time          `json:"started"`
	Machine machine            `json:"machine"`
	Engine  []engineResult     `json:"engine"`
	HTTPS   []loadResult       `json:"https"`
	RSS     map[string]float64 `json:"peakRSSMiB"`
	E2E     []e2eResult        `json:"e2e"`
	Audit   *auditResult       `json:"audit,omitempty"`
	Images  []imageResult      `json:"images"`
	// ImagesE2E are pod creates through kube-apiserver with image
	// verification (BenchmarkPodCreateImages); ImagesStarted is when they
	// and Images were measured, if by a later -only images -merge run.
	ImagesE2E     []imageResult `json:"imagesE2E"`
	ImagesStarted time.Time     `json:"imagesStarted,omitzero"`
	Profile       []string      `json:"profile"`
	Commands      []string      `json:"commands"`
	Quick         bool          `json:"quick"`
}

type machine struct {
	CPU, Kernel, Go string
	Cores           int
	MemoryGiB       float64
}

func main() {
	quick := flag.Bool("quick", false, "fewer requests (a smoke run, not for the report)")
	out := flag.String("out", "BENCHMARKS.md", "report to write")
	dataDir := flag.String("data", "dist/bench", "where raw results and the plot go")
	only := flag.String("only", "", "run one part only (engine, https, e2e, audit, images), printing results without writing the report")
	replot := flag.Bool("replot", false, "rewrite the report and the plot from the last run's results.json, measuring nothing")
	merge := flag.Bool("merge", false, "with -only images: measure image verification again and merge it into the last run's results.json and the report (which then says when each part was measured)")
	flag.Parse()
	root := testenv.Root()
	if err := os.Chdir(root); err != nil {
		fatal(err)
	}
	if *replot {
		raw, err := os.ReadFile(filepath.Join(*dataDir, "results.json"))
		if err != nil {
			fatal(err)
		}
		var r results
		if err := json.Unmarshal(raw, &r); err != nil {
			fatal(err)
		}
		if err := os.WriteFile("hack/bench/latency.svg", []byte(latencySVG(&r)), 0o644); err != nil {
			fatal(err)
		}
		if err := os.WriteFile(*out, []byte(report(&r)), 0o644); err != nil {
			fatal(err)
		}
		return
	}
	r := &results{Started: time.Now().UTC(), Machine: describeMachine(), Quick: *quick, RSS: map[string]float64{}}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		fatal(err)
	}
	bins := buildBinaries(*dataDir)
	if *only == "" || *only == "engine" {
		step("engine benchmarks")
		r.Engine = engineBenchmarks(r, *quick)
	}
	if *only == "" || *only == "https" || *only == "e2e" {
		step("HTTPS webhook load")
		httpsLoad(r, bins, *dataDir, *quick || *only == "e2e")
	}
	if *only == "" || *only == "e2e" {
		step("end to end through kube-apiserver")
		endToEnd(r, bins, *dataDir, *quick)
	} else if current != nil {
		current.stop()
	}
	if *only == "" || *only == "audit" {
		step("audit at scale")
		auditScale(r, bins, *dataDir, *quick)
	}
	if *only == "" || *only == "images" {
		step("image verification")
		r.Images, r.ImagesE2E = imageBenchmarks(r, *quick)
	}
	if *only == "images" && *merge {
		raw, err := os.ReadFile(filepath.Join(*dataDir, "results.json"))
		if err != nil {
			fatal(fmt.Errorf("-merge needs the results.json of an earlier full run: %w", err))
		}
		var last results
		if err := json.Unmarshal(raw, &last); err != nil {
			fatal(err)
		}
		last.Images, last.ImagesE2E, last.ImagesStarted = r.Images, r.ImagesE2E, r.Started
		last.Commands = append(slices.DeleteFunc(last.Commands, isImageCommand), r.Commands...)
		r = &last
	} else if *only != "" {
		return
	}
	raw, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(*dataDir, "results.json"), raw, 0o644); err != nil {
		fatal(err)
	}
	svg := latencySVG(r)
	if err := os.WriteFile("hack/bench/latency.svg", []byte(svg), 0o644); err != nil {
		fatal(err)
	}
	if err := os.WriteFile(*out, []byte(report(r)), 0o644); err != nil {
		fatal(err)
	}
	step("wrote %s, hack/bench/latency.svg and %s/results.json", *out, *dataDir)
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				m.CPU = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.Split(string(data), "\n")[0])
		kb, _ := strconv.ParseFloat(f[1], 64)
		m.MemoryGiB = kb / 1024 / 1024
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

type binaries struct{ podguard, noop, baretls string }

func buildBinaries(dir string) binaries {
	b := binaries{podguard: filepath.Join(dir, "podguard"), noop: filepath.Join(dir, "noop"), baretls: filepath.Join(dir, "baretls")}
	for out, pkg := range map[string]string{b.podguard: "./cmd/podguard", b.noop: "./hack/bench/noop", b.baretls: "./hack/bench/baretls"} {
		// As make build builds podguard: static, stripped.
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			fatal(fmt.Errorf("go build %s: %v\n%s", pkg, err, o))
		}
	}
	return b
}

// engineResult is one Go benchmark line.
type engineResult struct {
	Name                    string
	NsPerOp, BPerOp, Allocs float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op\s+([\d.]+) B/op\s+([\d.]+) allocs/op`)

func engineBenchmarks(r *results, quick bool) []engineResult {
	bt, count := "1s", "5"
	if quick {
		bt, count = "200ms", "1"
	}
	args := []string{"test", "-run", "^$", "-bench", "^Benchmark(Validate|Mutate|ValidateAndMutate|PSARestricted|DeepCopy)$", "-benchmem", "-benchtime", bt, "-count", count, "./policies/"}
	r.Commands = append(r.Commands, "go "+strings.Join(args, " "))
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		fatal(fmt.Errorf("engine benchmarks: %v\n%s", err, out))
	}
	// Each benchmark runs count times; the median is reported.
	runs := map[string][]engineResult{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[3], 64)
		b, _ := strconv.ParseFloat(m[4], 64)
		a, _ := strconv.ParseFloat(m[5], 64)
		name := strings.TrimPrefix(m[1], "Benchmark")
		if _, seen := runs[name]; !seen {
			order = append(order, name)
		}
		runs[name] = append(runs[name], engineResult{Name: name, NsPerOp: ns, BPerOp: b, Allocs: a})
	}
	var res []engineResult
	for _, name := range order {
		rs := runs[name]
		sort.Slice(rs, func(i, j int) bool { return rs[i].NsPerOp < rs[j].NsPerOp })
		res = append(res, rs[len(rs)/2])
	}
	return res
}

// imageResult is one Go benchmark of the image verifier, with its own
// metrics (heapB/verdict, failed).
type imageResult struct {
	Name    string
	NsPerOp float64
	Metrics map[string]float64
}

var metricRE = regexp.MustCompile(`([\d.]+) (\S+)`)

// imageBenchmarks runs webhook/imageverify's benchmarks: verifying a
// pod's signed images against an in-process registry over TLS on the
// loopback, cold and warm, and during an outage.
func imageBenchmarks(r *results, quick bool) (verifier, e2e []imageResult) {
	bt, e2eBt := "20x", "40x"
	if quick {
		bt, e2eBt = "2x", "3x"
	}
	verifier = goBenchmarks(r, []string{"test", "-run", "^$", "-bench", "^BenchmarkVerify(Cold|Warm|Outage)$", "-benchtime", bt, "./webhook/imageverify/"})
	// Through kube-apiserver: the envtest binaries hack/tools.sh built.
	e2e = goBenchmarks(r, []string{"test", "-run", "^$", "-bench", "^BenchmarkPodCreateImages$", "-benchtime", e2eBt, "-timeout", "30m", "./webhook/"})
	return verifier, e2e
}

// isImageCommand reports whether a command of the report measured image
// verification (replaced by -merge).
func isImageCommand(c string) bool {
	return strings.Contains(c, "BenchmarkVerify") || strings.Contains(c, "BenchmarkPodCreateImages")
}

// goBenchmarks runs go with args (a go test -bench) and reads its results.
func goBenchmarks(r *results, args []string) []imageResult {
	r.Commands = append(r.Commands, "go "+strings.Join(args, " "))
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		fatal(fmt.Errorf("image benchmarks: %v\n%s", err, out))
	}
	var res []imageResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		ir := imageResult{Name: strings.TrimPrefix(regexp.MustCompile(`-\d+$`).ReplaceAllString(f[0], ""), "Benchmark"), Metrics: map[string]float64{}}
		for _, m := range metricRE.FindAllStringSubmatch(strings.Join(f[2:], " "), -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			if m[2] == "ns/op" {
				ir.NsPerOp = v
			} else {
				ir.Metrics[m[2]] = v
			}
		}
		res = append(res, ir)
	}
	return res
}

func imageResultOf(r *results, name string) *imageResult {
	for _, rs := range [][]imageResult{r.Images, r.ImagesE2E} {
		for i := range rs {
			if rs[i].Name == name {
				return &rs[i]
			}
		}
	}
	return nil
}

// server is a webhook process under test.
type server struct {
	name string
	cmd  *exec.Cmd
	base string
	port int
}

func startServer(name, bin string, args []string, health string, logPath string) *server {
	f, err := os.Create(logPath)
	if err != nil {
		fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	s := &server{name: name, cmd: cmd}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if health != "" {
			if resp, err := http.Get(health); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return s
				}
			}
		} else if conn, err := tlsDial(args); err == nil {
			conn.Close()
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	fatal(fmt.Errorf("%s did not become ready (log %s)", name, logPath))
	return nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

func tlsDial(args []string) (interface{ Close() error }, error) {
	for i, a := range args {
		if a == "--port" || a == "-port" {
			return dialTCP("127.0.0.1:" + args[i+1])
		}
	}
	return nil, fmt.Errorf("no port")
}

// requests builds the HTTPS load mix: Pods and Deployments, compliant and
// not, to /mutate and /validate.
func requests() []request {
	var out []request
	i := 0
	for _, path := range []string{"/mutate", "/validate"} {
		for _, compliant := range []bool{true, false} {
			for _, kind := range []string{"Pod", "Deployment"} {
				var body []byte
				var err error
				if kind == "Pod" {
					body, err = reviews.Review(reviews.Pod("web-7d9c6b5f4-x2k8p", compliant), fmt.Sprintf("uid-%d", i))
				} else {
					body, err = reviews.Review(reviews.Deployment("web", compliant), fmt.Sprintf("uid-%d", i))
				}
				if err != nil {
					fatal(err)
				}
				out = append(out, request{path: path, body: body})
				i++
			}
		}
	}
	return out
}
