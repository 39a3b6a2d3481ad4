// Command devcluster is podguard's main job on an embedded default: it
// starts a local control plane (a real kube-apiserver and etcd on
// 127.0.0.1), runs `podguard serve` against it with the default policy and
// the shipped webhook configurations, applies the example manifests so you
// see an injection, a denial and warnings, and then waits, printing the
// KUBECONFIG to try `kubectl apply --dry-run=server -f your.yaml`. Ctrl-C
// stops everything.
//
// Usage: go run ./hack/devcluster [-podguard bin/podguard] [-policy FILE] [-demo-only]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"podguard.dev/podguard/hack/testenv"
)

func main() {
	bin := flag.String("podguard", "bin/podguard", "podguard binary")
	policy := flag.String("policy", "", "policy file (default: the built-in default policy)")
	demoOnly := flag.Bool("demo-only", false, "stop after the demo instead of waiting for Ctrl-C")
	flag.Parse()
	if err := run(*bin, *policy, *demoOnly); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n\033[1m==> "+format+"\033[0m\n", args...) }

func run(bin, policy string, demoOnly bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := testenv.Root()
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(root, bin)
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", bin, err)
	}

	step("starting a local control plane: kube-apiserver and etcd on 127.0.0.1")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the control plane")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "devcluster:", err)
		}
	}()
	fmt.Println("API server:", env.Config.Host)

	ca, err := testenv.NewCA()
	if err != nil {
		return err
	}
	certDir := filepath.Join(env.Dir, "certs")
	if err := ca.Issue(certDir); err != nil {
		return err
	}
	port, err := testenv.FreePort()
	if err != nil {
		return err
	}
	health, err := testenv.FreePort()
	if err != nil {
		return err
	}
	metrics, err := testenv.FreePort()
	if err != nil {
		return err
	}
	manifests := filepath.Join(root, "config", "webhook", "manifests.yaml")
	step("installing %s as podguard-dev, pointed at https://127.0.0.1:%d", "config/webhook/manifests.yaml", port)
	if err := testenv.InstallWebhooksNamed(ctx, env.Clientset, manifests, fmt.Sprintf("https://127.0.0.1:%d", port), ca.PEM, "podguard-dev"); err != nil {
		return err
	}

	args := []string{"serve", "--cert-dir", certDir, "--port", fmt.Sprint(port),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", health), "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metrics),
		"--kubeconfig", env.Kubeconfig, "--log-format", "console"}
	if policy != "" {
		args = append(args, "--policy", policy)
	}
	// Outside the control plane's scratch directory, so it outlives Ctrl-C.
	logPath := filepath.Join(root, "dist", "devcluster", "podguard.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	step("starting %s %s", filepath.Base(bin), strings.Join(args, " "))
	srv := exec.Command(bin, args...)
	srv.Stdout, srv.Stderr = logFile, logFile
	// Its own process group: Ctrl-C reaches devcluster, which stops
	// podguard with SIGTERM (a clean drain) instead of both racing.
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := srv.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		step("stopping podguard (SIGTERM: in-flight requests finish)")
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(35 * time.Second):
			_ = srv.Process.Kill()
		}
	}()
	if err := waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", health), exited); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w\n%s", err, out)
	}
	fmt.Println("podguard is ready; its log:", logPath)

	kubectl := func(stdin string, args ...string) {
		fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, env.Kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		if err := cmd.Run(); err != nil {
			fmt.Printf("(kubectl: %v)\n", err)
		}
	}
	samples := filepath.Join(root, "config", "samples", "workloads")
	kubectl("", "create", "namespace", "demo")

	step("injection: a Pod that says nothing about security is filled in")
	kubectl("", "apply", "-n", "demo", "-f", filepath.Join(samples, "pod-missing-security.yaml"))
	kubectl("", "get", "pod", "hello", "-n", "demo", "-o",
		`jsonpath=pod securityContext: {.spec.securityContext}{"\n"}container securityContext: {.spec.containers[0].securityContext}{"\n"}resources: {.spec.containers[0].resources}{"\n"}`)

	step("denial: a privileged root Pod with host access is refused, every violation listed with its fix")
	kubectl("", "apply", "-n", "demo", "-f", filepath.Join(samples, "pod-privileged-denied.yaml"))

	step("warnings: a Deployment missing its security settings is admitted; kubectl prints what its pods will get")
	kubectl("", "apply", "-n", "demo", "-f", filepath.Join(samples, "deployment-fixable.yaml"))

	step("dry run: server-side, nothing is stored")
	kubectl("", "apply", "--dry-run=server", "-n", "demo", "-f", filepath.Join(samples, "deployment-compliant.yaml"))

	if demoOnly {
		return nil
	}
	step("podguard is serving. In another shell:")
	fmt.Printf("  export KUBECONFIG=%s\n", env.Kubeconfig)
	fmt.Printf("  %s apply --dry-run=server -n demo -f your.yaml\n", env.Kubectl)
	fmt.Printf("  curl -s http://127.0.0.1:%d/metrics | grep podguard_\n", metrics)
	fmt.Printf("  %s audit --kubeconfig %s -A\n", bin, env.Kubeconfig)
	fmt.Println("Press Ctrl-C to stop everything.")
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping; podguard's log stays in", logPath)
	case err := <-exited:
		exited <- err
		return fmt.Errorf("podguard exited: %v (log: %s)", err, logPath)
	}
	return nil
}

func waitReady(ctx context.Context, url string, exited chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("podguard exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("podguard not ready after 60s")
}
