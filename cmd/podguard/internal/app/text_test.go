package app_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/creack/pty"

	"podguard.dev/podguard/cmd/podguard/internal/app"
)

var updateText = flag.Bool("update-text", false, "rewrite testdata/text/*.txt from validate -o text")

// textSample holds a denied Deployment, a Pod that only warns and an
// allowed Pod, in two namespaces, for the text output.
const textSample = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      hostNetwork: true
      securityContext: {runAsUser: 0}
      containers:
      - name: app
        image: registry.example/web:1.2.3
        securityContext: {privileged: true, capabilities: {add: [NET_ADMIN]}}
---
apiVersion: v1
kind: Pod
metadata: {name: latest, namespace: tools}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  automountServiceAccountToken: false
  containers:
  - name: c
    image: nginx
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    resources: {limits: {cpu: 100m, memory: 64Mi}}
    livenessProbe: {tcpSocket: {port: 80}}
    readinessProbe: {tcpSocket: {port: 80}}
`

// TestTextOutput: -o text groups findings per object under a heading with
// the namespace, prints each fix without repeating the field, and, written
// to a file or a pipe, neither wraps nor colours.
func TestTextOutput(t *testing.T) {
	dir := t.TempDir()
	in := write(t, dir, "sample.yaml", textSample)
	r := podguard(t, "", "validate", "-f", in)
	if r.code != 1 {
		t.Fatalf("exit %d: %s%s", r.code, r.out, r.err)
	}
	got := strings.ReplaceAll(r.out, dir+string(filepath.Separator), "")
	if strings.Contains(got, "\x1b[") {
		t.Error("colour written to a pipe")
	}
	path := filepath.Join("testdata", "text", "validate.txt")
	if *updateText {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-text)", err)
	}
	if got != string(want) {
		t.Errorf("validate -o text differs from %s:\n%s", path, got)
	}
}

// TestTextOutputOnATerminal runs validate with its output on a real
// pseudo-terminal of 60 columns: messages wrap at the terminal's width and
// are coloured, unless NO_COLOR is set.
func TestTextOutputOnATerminal(t *testing.T) {
	in := write(t, t.TempDir(), "sample.yaml", textSample)
	t.Setenv("COLUMNS", "")
	t.Setenv("TERM", "xterm")
	for _, noColour := range []string{"", "1"} {
		t.Setenv("NO_COLOR", noColour)
		out := onTerminal(t, 60, "validate", "-f", in)
		if coloured := strings.Contains(out, "\x1b["); coloured != (noColour == "") {
			t.Errorf("NO_COLOR=%q: coloured %v:\n%s", noColour, coloured, out)
		}
		plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "")
		wrapped := 0
		for _, line := range strings.Split(plain, "\n") {
			if !strings.HasPrefix(line, "        ") {
				continue // headings and finding lines are not wrapped
			}
			wrapped++
			if n := utf8.RuneCountInString(line); n > 60 {
				t.Errorf("message line of %d columns on a 60-column terminal: %q", n, line)
			}
		}
		if wrapped < 8 || !strings.Contains(plain, "deny  privileged: spec.template.spec.containers[0].securityContext.privileged") {
			t.Errorf("expected wrapped messages:\n%s", plain)
		}
	}
}

// onTerminal runs podguard with stdout on a new pseudo-terminal of the given
// width and returns what it printed.
func onTerminal(t *testing.T, cols uint16, args ...string) string {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.Copy(&out, ptmx)
		if err != nil && !errors.Is(err, syscall.EIO) {
			t.Errorf("reading the terminal: %v", err)
		}
	}()
	app.Main(context.Background(), args, strings.NewReader(""), tty, io.Discard)
	tty.Close()
	<-done
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}
