package app_test

// Regression tests for the inputs of the offline commands: every document
// kubectl would apply is judged, and no input can exhaust memory or hang
// the command.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"reflect"
	sigsyaml "sigs.k8s.io/yaml"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"podguard.dev/podguard/cmd/podguard/internal/app"
	"podguard.dev/podguard/hack/testenv"
)

const evilJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"evil"},"spec":{"hostPID":true,"containers":[{"name":"c","image":"x:1","securityContext":{"privileged":true}}]}}`

// TestEveryDocumentKubectlApplies: the CI bypass. A JSON (or flow-style
// YAML) first document used to hide everything after it.
// compliantJSON is compliantPod as JSON.
func compliantJSON(t *testing.T) string {
	js, err := sigsyaml.YAMLToJSON([]byte(compliantPod))
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// withSpec is compliantPod with lines added at the top of its spec.
func withSpec(lines string) string {
	return strings.Replace(compliantPod, "spec:\n", "spec:\n"+lines, 1)
}

func TestEveryDocumentKubectlApplies(t *testing.T) {
	dir := t.TempDir()
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`
	yamlPod := strings.TrimPrefix(privilegedPod, "")
	cases := []struct {
		name, file, content string
		code                int
		judged              int
	}{
		{"JSON stream", "s.json", cm + "\n" + evilJSON + "\n", 1, 1},
		{"JSON stream without newlines", "s2.json", cm + evilJSON + cm, 1, 1},
		{"JSON then --- then YAML", "s3.yaml", cm + "\n---\n" + yamlPod, 1, 1},
		{"flow YAML then --- then YAML", "s4.yaml", "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n---\n" + yamlPod, 1, 1},
		{"JSON stream of Pods", "s5.json", evilJSON + "\n" + evilJSON + "\n" + evilJSON, 1, 3},
		// kubectl stops with an error on these; so does podguard, never a silent pass.
		{"two flow mappings without ---", "s6.yaml", "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n{apiVersion: v1, kind: Pod}\n", 2, 0},
		{"a broken JSON stream", "s7.json", cm + "\n" + cm + "\n---\n" + yamlPod, 2, 0},
		// Separator lines kubectl's YAML reader accepts: --- then nothing
		// or a comment, after trimming (before, ---# hid the Pod: exit 0).
		{"---# separator", "s8.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---#\n" + yamlPod, 1, 1},
		{"--- with a comment and CRLF", "s9.yaml", "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: a}\r\n--- # next\r\n" + yamlPod, 1, 1},
		{"---<tab>", "s10.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\t\n" + yamlPod, 1, 1},
		// kubectl refuses other text after ---, and reads nothing after a
		// "..." in one chunk: refused here too, never judged as empty.
		{"--- with content", "s11.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n--- {a: 1}\n" + yamlPod, 2, 1},
		{"... end marker", "s12.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n...\n" + yamlPod, 2, 0},
		// Read as kubectl reads them and the API server keeps them: YAML
		// 1.1 booleans, and field names decoded case-sensitively (a case
		// variant is an unknown field the API server drops).
		{"YAML 1.1 yes", "b1.yaml", withSpec("  hostPID: yes\n"), 1, 1},
		{"YAML 1.1 on", "b2.yaml", withSpec("  hostNetwork: on\n"), 1, 1},
		{"YAML 1.1 y", "b3.yaml", withSpec("  hostIPC: y\n"), 1, 1},
		{"case-variant hostpid", "c1.yaml", withSpec("  hostPID: true\n  hostpid: false\n"), 1, 1},
		{"case-variant runasuser", "c2.yaml", strings.Replace(compliantPod, "runAsUser: 1000,", "runAsUser: 0, runasuser: 1000,", 1), 1, 1},
		{"the compliant pod the variants start from", "c0.yaml", withSpec(""), 0, 1},
		{"case-variant in JSON", "c3.json", strings.Replace(compliantJSON(t), `"spec":{`, `"spec":{"hostPID":true,"HOSTPID":false,`, 1), 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, dir, c.file, c.content)
			r := podguard(t, "", "validate", "-f", p)
			if r.code != c.code {
				t.Errorf("exit %d, want %d\n%s%s", r.code, c.code, r.out, r.err)
			}
			if want := fmt.Sprintf("%d object", c.judged); !strings.Contains(r.out, want) {
				t.Errorf("want %s judged:\n%s", want, r.out)
			}
			// The same from stdin.
			if r := podguard(t, c.content, "validate", "-f", "-"); r.code != c.code {
				t.Errorf("stdin: exit %d, want %d\n%s%s", r.code, c.code, r.out, r.err)
			}
		})
	}
	// mutate keeps a JSON stream a JSON stream and fills in every Pod.
	p := write(t, dir, "m.json", cm+"\n"+evilJSON+"\n")
	r := podguard(t, "", "mutate", "-f", p)
	if r.code != 0 || strings.Contains(r.out, "---") || !strings.Contains(r.out, `"runAsUser": 1000`) || !strings.HasPrefix(r.out, cm+"\n") {
		t.Errorf("mutate of a JSON stream: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestInputBounds: endless and oversized inputs end with a clear error.
func TestInputBounds(t *testing.T) {
	dir := t.TempDir()
	r := podguard(t, "", "validate", "-f", "/dev/zero")
	if r.code != 2 || !strings.Contains(r.err, "/dev/zero") || !strings.Contains(r.err, "--max-input-bytes") {
		t.Errorf("-f /dev/zero: exit %d: %s", r.code, r.err)
	}
	r = podguard(t, "", "mutate", "-f", "/dev/zero", "--max-input-bytes", "1000")
	if r.code != 2 || !strings.Contains(r.err, "larger than 1000 bytes") {
		t.Errorf("mutate -f /dev/zero: exit %d: %s", r.code, r.err)
	}
	ok := write(t, dir, "ok.yaml", compliantPod)
	r = podguard(t, "", "validate", "-f", ok, "--policy", "/dev/zero")
	if r.code != 2 || !strings.Contains(r.err, "/dev/zero") || !strings.Contains(r.err, "larger than") {
		t.Errorf("--policy /dev/zero: exit %d: %s", r.code, r.err)
	}
	r = podguard(t, "", "policy", "check", "-f", "/dev/zero")
	if r.code != 2 || !strings.Contains(r.err, "larger than") {
		t.Errorf("policy check -f /dev/zero: exit %d: %s", r.code, r.err)
	}
	big := write(t, dir, "big.yaml", compliantPod+strings.Repeat("# padding\n", 200))
	r = podguard(t, "", "validate", "-f", big, "--max-input-bytes", "1024")
	if r.code != 2 || !strings.Contains(r.err, "big.yaml") {
		t.Errorf("over the cap: exit %d: %s", r.code, r.err)
	}
	if r := podguard(t, "", "validate", "-f", big, "--max-input-bytes", "0"); r.code != 2 {
		t.Errorf("--max-input-bytes 0 accepted")
	}
}

// TestSpecialFiles: FIFOs inside directories are passed over with a note;
// a FIFO named explicitly is read like stdin and a signal ends the wait;
// a symlinked directory is followed.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	manifests := filepath.Join(dir, "manifests")
	write(t, manifests, "bad.yaml", privilegedPod)
	if err := syscall.Mkfifo(filepath.Join(manifests, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan run, 1)
	go func() { done <- podguard(t, "", "validate", "-f", manifests) }()
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.err, "fifo.yaml: skipped: not a regular file (a FIFO)") || !strings.Contains(r.out, "1 object judged") {
			t.Errorf("directory with a FIFO: exit %d\n%s%s", r.code, r.out, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO inside a directory blocked validate")
	}

	// A FIFO named explicitly, with no writer: blocks until a signal.
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- app.Main(ctx, []string{"validate", "-f", filepath.Join(manifests, "fifo.yaml")}, strings.NewReader(""), &out, &errOut)
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case c := <-code:
		if c != 130 || !strings.Contains(errOut.String(), "interrupted") {
			t.Errorf("interrupted read: exit %d, stderr %s", c, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a signal did not end a blocked read")
	}

	link := filepath.Join(dir, "link")
	if err := os.Symlink(manifests, link); err != nil {
		t.Fatal(err)
	}
	// A loop back to the directory itself is read once.
	if err := os.Symlink(manifests, filepath.Join(manifests, "loop")); err != nil {
		t.Fatal(err)
	}
	r := podguard(t, "", "validate", "-f", link, "-o", "json")
	if r.code != 1 || !strings.Contains(r.out, filepath.Join(link, "bad.yaml")+"#0") || strings.Count(r.out, `"source"`) != 1 {
		t.Errorf("symlinked directory: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestErrorPositions: YAML errors name the lines of the file.
func TestErrorPositions(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "dup.yaml", compliantPod+"---\n# comment\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  name: y\n")
	r := podguard(t, "", "validate", "-f", p)
	want := `dup.yaml (document 1, line 22): malformed YAML: mapping key "name" already defined at line 21`
	if r.code != 2 || !strings.Contains(r.err, want) {
		t.Errorf("duplicate key: exit %d\nstderr %s\nwant   %s", r.code, r.err, want)
	}
}

// TestStreamingMemory: memory does not grow with the number of objects.
// The command runs in a child process (this test binary, re-executed) so
// its peak RSS can be read from the kernel.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds large inputs; run without -short")
	}
	dir := t.TempDir()
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p%d}\nspec: {containers: [{name: c, image: x}]}\n---\n"
	var small, large strings.Builder
	for i := range 42000 {
		fmt.Fprintf(&small, pod, i)
	}
	for range 3 {
		large.WriteString(small.String())
	}
	smallPath := write(t, dir, "small.yaml", small.String())
	largePath := write(t, dir, "large.yaml", large.String())
	peak := func(args ...string) int64 {
		hwm := filepath.Join(dir, "hwm")
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildPodguard$")
		cmd.Env = append(os.Environ(), "PODGUARD_CHILD_ARGS="+strings.Join(args, "\x1f"), "PODGUARD_CHILD_HWM="+hwm)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		b, err := os.ReadFile(hwm)
		if err != nil {
			t.Fatal(err)
		}
		var kib int64
		fmt.Sscan(string(b), &kib)
		return kib >> 10
	}
	for _, args := range [][]string{{"validate", "-o", "json"}, {"mutate"}} {
		s := peak(append(args, "-f", smallPath)...)
		l := peak(append(args, "--max-input-bytes", "100000000", "-f", largePath)...)
		t.Logf("%v: peak RSS %d MiB for %d KiB (42k Pods), %d MiB for 3x that", args, s, small.Len()>>10, l)
		// Before streaming: 554 MiB for the 42k Pods. Now the input is held once
		// (plus one copy while a pipe is read); nothing grows with the objects.
		if s > 100 || l > s+(3*int64(large.Len()-small.Len())>>20)+16 {
			t.Errorf("%v: peak RSS %d MiB (42k Pods) and %d MiB (126k Pods): memory grows with the objects", args, s, l)
		}
	}
}

// TestDevZeroMemory: -f /dev/zero exited 2 after 2.1 s at 308 MB peak
// RSS although the cap is 64 MiB: the cap bounded the final size, not the
// memory used to find out. Now a non-regular input is read in chunks and
// refused as soon as it passes the cap.
func TestDevZeroMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs podguard in a child process; run without -short")
	}
	peak := func(exit string, args ...string) (int64, time.Duration) {
		hwm := filepath.Join(t.TempDir(), "hwm")
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildPodguard$")
		cmd.Env = append(os.Environ(), "PODGUARD_CHILD_ARGS="+strings.Join(args, "\x1f"), "PODGUARD_CHILD_HWM="+hwm, "PODGUARD_CHILD_EXIT="+exit)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		b, rerr := os.ReadFile(hwm)
		if rerr != nil {
			t.Fatalf("%v %v\n%s", err, rerr, out)
		}
		var kib int64
		fmt.Sscan(string(b), &kib)
		return kib >> 10, took
	}
	base, _ := peak("0", "validate", "-f", "/dev/null")
	zero, took := peak("2", "validate", "-f", "/dev/zero")
	capMiB := int64(cli.DefaultMaxInputBytes >> 20)
	t.Logf("validate -f /dev/zero: refused after %s, peak RSS %d MiB (%d MiB for /dev/null; cap %d MiB)", took.Round(time.Millisecond), zero, base, capMiB)
	if zero > base+capMiB+16 {
		t.Errorf("peak RSS %d MiB: more than the %d MiB of /dev/null plus the %d MiB cap and a chunk", zero, base, capMiB)
	}
}

// TestChildPodguard runs podguard with the arguments of TestStreamingMemory
// in a child process, output discarded, and writes the peak RSS the kernel
// measured for it (VmHWM, KiB); it does nothing in a normal run.
func TestChildPodguard(t *testing.T) {
	args := os.Getenv("PODGUARD_CHILD_ARGS")
	if args == "" {
		return
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// stderr is kept: it is small, and says why when the exit code is wrong.
	code := app.Main(context.Background(), strings.Split(args, "\x1f"), null, null, os.Stderr)
	if want := os.Getenv("PODGUARD_CHILD_EXIT"); want != "" && strconv.Itoa(code) != want {
		t.Fatalf("exit %d, want %s", code, want)
	} else if want == "" && code > 1 {
		t.Fatalf("exit %d", code)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			if err := os.WriteFile(os.Getenv("PODGUARD_CHILD_HWM"), []byte(strings.TrimSuffix(strings.TrimSpace(v), " kB")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestServeExitCodes: serve used to exit 1, the code that means "denied",
// when it could not start; bad flags were accepted and broke every request.
func TestServeExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := write(t, dir, "policy.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: sometimes\n")
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"serve", "--max-request-bytes", "0"}, "--max-request-bytes must be greater than 0"},
		{[]string{"serve", "--max-request-bytes", "-5"}, "--max-request-bytes must be greater than 0"},
		{[]string{"serve", "--max-inflight-request-bytes", "1000"}, "--max-inflight-request-bytes"},
		{[]string{"serve", "--cert-dir", dir, "--policy", bad, "--health-probe-bind-address", "127.0.0.1:0", "--metrics-bind-address", "0", "--port", "0"}, "mode"},
	} {
		r := podguard(t, "", c.args...)
		if r.code != 2 || !strings.Contains(r.err, c.err) {
			t.Errorf("%v: exit %d, want 2 with %q\n%s", c.args, r.code, c.err, r.err)
		}
	}
}

// TestHostileYAML: alias bombs and deep nesting end with a clean error.
func TestHostileYAML(t *testing.T) {
	dir := t.TempDir()
	var bomb strings.Builder
	bomb.WriteString("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bomb\n  annotations:\n    a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&bomb, "    a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	bomb.WriteString("spec: {containers: [{name: c, image: x}]}\n")
	deep := "apiVersion: v1\nkind: Pod\nmetadata: {name: deep}\nspec: {containers: [{name: c, image: x, args: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "}]}\n"
	deepJSON := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"deep"},"spec":{"containers":[{"name":"c","image":"x","args":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}]}}`
	for name, content := range map[string]string{"bomb.yaml": bomb.String(), "deep.yaml": deep, "deep.json": deepJSON} {
		p := write(t, dir, name, content)
		done := make(chan run, 1)
		go func() { done <- podguard(t, "", "validate", "-f", p) }()
		select {
		case r := <-done:
			if r.code != 2 || !strings.Contains(r.err, name) {
				t.Errorf("%s: exit %d\n%s%s", name, r.code, r.out, r.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no answer within 20s", name)
		}
		policy := write(t, dir, "policy-"+name, strings.Replace(content, "apiVersion: v1\nkind: Pod\n", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\n", 1))
		if r := podguard(t, "", "policy", "check", "-f", policy); r.code != 2 {
			t.Errorf("policy %s: exit %d", name, r.code)
		}
	}
}

// TestPolicyCheckWarnsBelowRestricted: settings that give up a PSS control
// used to pass without a word.
func TestPolicyCheckWarnsBelowRestricted(t *testing.T) {
	dir := t.TempDir()
	weak := write(t, dir, "weak.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  capabilities:\n    allowedAdd: [NET_BIND_SERVICE, SYS_ADMIN]\n  privileged:\n    action: warn\n  hostPorts:\n    action: 'off'\n")
	r := podguard(t, "", "policy", "check", "-f", weak)
	for _, w := range []string{
		"rules.capabilities.allowedAdd[1] gives up PSS restricted capabilities_restricted: containers may add SYS_ADMIN",
		"rules.privileged.action gives up PSS baseline privileged: warn",
		"rules.hostPorts.action gives up PSS baseline hostPorts: off",
	} {
		if !strings.Contains(r.err, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.err)
		}
	}
	if r.code != 0 {
		t.Errorf("without --strict: exit %d", r.code)
	}
	if r := podguard(t, "", "policy", "check", "--strict", "-f", weak); r.code != 1 || !strings.Contains(r.err, "--strict") {
		t.Errorf("--strict: exit %d\n%s", r.code, r.err)
	}
	rollout := write(t, dir, "rollout.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: warn\n")
	if r := podguard(t, "", "policy", "check", "--strict", "-f", rollout); r.code != 1 || !strings.Contains(r.err, "mode gives up PSS baseline privileged") {
		t.Errorf("mode warn --strict: exit %d\n%s", r.code, r.err)
	}
	def := write(t, dir, "default.yaml", "")
	if r := podguard(t, "", "policy", "check", "--strict", "-f", def); r.code != 0 || r.err != "" {
		t.Errorf("the default policy gives up nothing and reaches no further than a namespace per exemption: exit %d\n%s", r.code, r.err)
	}
}

// TestPolicyCheckBroadExemptions: an exemption that lifts a PSS rule from
// every image (what a baseline of a workload with image "*" wrote) or from
// every pod of every namespace fails --strict; every exemption broader than
// one namespace is warned about; narrow ones pass.
func TestPolicyCheckBroadExemptions(t *testing.T) {
	dir := t.TempDir()
	policy := func(name, exemptions string) string {
		return write(t, dir, name, "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions:\n"+exemptions)
	}
	cases := []struct {
		name, exemptions string
		strictCode       int
		err              []string
	}{
		{"every image", "- {reason: baseline, rules: [privileged, capabilities], images: ['*']}\n", 1,
			[]string{"exemptions[0] gives up PSS baseline privileged: it lifts privileged from every image (baseline)", "exemptions[0] (baseline) reaches every namespace: broader than one namespace"}},
		{"every image in one namespace", "- {reason: r, namespaces: [apps], images: ['*?']}\n", 1, []string{"lifts runAsNonRoot from every image"}},
		{"every namespace", "- {reason: r, namespaces: ['*'], rules: [hostNamespaces]}\n", 1, []string{"lifts hostNamespaces from every pod in every namespace", "reaches namespaces *"}},
		{"beyond PSS only", "- {reason: r, namespaces: ['*'], rules: [probes, imageTag]}\n", 0, []string{"reaches namespaces *"}},
		{"a user everywhere", "- {reason: r, users: [ci]}\n", 0, []string{"(r) reaches every namespace"}},
		{"two namespaces", "- {reason: r, namespaces: [a, b]}\n", 0, []string{"reaches namespaces a, b"}},
		{"one workload", "- {reason: r, namespaces: [apps], workloads: [{kind: Deployment, name: web}], rules: [privileged]}\n", 0, nil},
	}
	for _, c := range cases {
		p := policy(c.name+".yaml", c.exemptions)
		r := podguard(t, "", "policy", "check", "--strict", "-f", p)
		if r.code != c.strictCode {
			t.Errorf("%s: --strict exit %d, want %d\n%s", c.name, r.code, c.strictCode, r.err)
		}
		for _, w := range c.err {
			if !strings.Contains(r.err, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.name, w, r.err)
			}
		}
		if c.err == nil && r.err != "" {
			t.Errorf("%s: a narrow exemption is warned about:\n%s", c.name, r.err)
		}
	}
}

// TestNothingPassedOverInSilence: an object podguard does not judge used
// to vanish from -o json; a typo'd apiVersion passed CI unchecked.
func TestNothingPassedOverInSilence(t *testing.T) {
	in := `apiVersion: v1
kind: Deployment
metadata: {name: typo, namespace: web}
spec:
  template:
    spec:
      containers: [{name: c, image: x, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
- not
- an object
---
` + compliantPod
	r := podguard(t, in, "validate", "-f", "-", "-o", "json")
	var rep struct {
		Results []map[string]any
		Skipped []map[string]string
		Summary map[string]int
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	want := []map[string]string{
		{"source": "-#0", "apiVersion": "v1", "kind": "Deployment", "namespace": "web", "name": "typo", "reason": "v1 does not serve Deployment: apps/v1 expected"},
		{"source": "-#1", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "", "name": "cm", "reason": "not a pod-bearing kind"},
	}
	if len(rep.Skipped) != 3 || !reflect.DeepEqual(rep.Skipped[:2], want) || rep.Skipped[2]["source"] != "-#2" || !strings.Contains(rep.Skipped[2]["reason"], "not a Kubernetes object") {
		t.Errorf("skipped: %v", rep.Skipped)
	}
	if rep.Summary["objects"] != 3 || rep.Summary["judged"] != 1 || rep.Summary["skipped"] != 2 || rep.Summary["allowed"] != 1 {
		t.Errorf("summary: %v", rep.Summary)
	}
	if r.code != 2 {
		t.Errorf("a document that is not an object is bad input: exit %d", r.code)
	}
	text := podguard(t, in, "validate", "-f", "-")
	if !strings.Contains(text.out, "-#0 v1 Deployment/typo: skipped: v1 does not serve Deployment: apps/v1 expected") || strings.Contains(text.out, "ConfigMap") {
		t.Errorf("text names the misplaced kind, and only it without -v:\n%s", text.out)
	}
	if v := podguard(t, in, "validate", "-f", "-", "-v"); !strings.Contains(v.out, "-#1 v1 ConfigMap/cm: skipped: not a pod-bearing kind") {
		t.Errorf("-v lists every skipped object:\n%s", v.out)
	}
	typo := strings.SplitN(in, "---\n", 2)[0]
	// kubectl refuses a kind under an API version that does not serve it:
	// so does podguard, with or without the deprecated --strict (which
	// says so).
	for _, args := range [][]string{{"validate", "-f", "-"}, {"validate", "-f", "-", "--strict"}, {"mutate", "-f", "-"}, {"mutate", "-f", "-", "--strict"}} {
		r := podguard(t, typo, args...)
		if r.code != 2 || !strings.Contains(r.err, `apps/v1 expected (kubectl refuses it too: no matches for kind "Deployment" in version "v1")`) {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.err)
		}
		if slices.Contains(args, "--strict") && !strings.Contains(r.err, "--strict is deprecated") {
			t.Errorf("%v: no deprecation notice:\n%s", args, r.err)
		}
	}
}

// TestCanarySecretsNeverShown: a detected secret appears in no output of
// validate (text, JSON, --mutate) and no message of mutate; only detector
// names and field paths do. (mutate's stdout is the manifest itself.)
func TestCanarySecretsNeverShown(t *testing.T) {
	pod, err := testenv.CanaryPod()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", "-f", "-"}, {"validate", "-f", "-", "-o", "json"}, {"validate", "--mutate", "-f", "-", "-o", "json"}, {"validate", "-f", "-", "-v"}} {
		r := podguard(t, string(pod), args...)
		if strings.Contains(r.out+r.err, testenv.CanaryMarker) {
			t.Errorf("%v shows a secret:\n%s%s", args, r.out, r.err)
		}
		if n := strings.Count(r.out, "secretsInEnv"); n < testenv.CanarySecrets {
			t.Errorf("%v: %d secretsInEnv findings, want %d:\n%s", args, n, testenv.CanarySecrets, r.out)
		}
	}
	for _, args := range [][]string{{"mutate", "-f", "-", "--diff"}, {"mutate", "-f", "-", "-v"}} {
		r := podguard(t, string(pod), args...)
		if strings.Contains(r.err, testenv.CanaryMarker) {
			t.Errorf("%v shows a secret on stderr:\n%s", args, r.err)
		}
	}
}

// TestExport: deterministic output, the error policy check gives for an
// invalid policy, and never a half-written static manifest directory.
func TestExport(t *testing.T) {
	dir := t.TempDir()
	a, b := podguard(t, "", "export"), podguard(t, "", "export")
	if a.code != 0 || a.out != b.out || !strings.Contains(a.out, "kind: MutatingAdmissionPolicy") || !strings.Contains(a.err, "webhook only: rule secretsInEnv") {
		t.Fatalf("export: exit %d, deterministic %v\n%s", a.code, a.out == b.out, a.err)
	}
	if strings.Contains(a.out, "creationTimestamp") || strings.Contains(a.out, "status:") {
		t.Errorf("export writes fields of stored objects")
	}
	j := podguard(t, "", "export", "-o", "json")
	var list struct {
		Kind  string
		Items []map[string]any
	}
	if err := json.Unmarshal([]byte(j.out), &list); err != nil || list.Kind != "List" || len(list.Items) < 10 {
		t.Errorf("-o json: %v, %d items", err, len(list.Items))
	}
	bad := write(t, dir, "bad.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: sometimes\n")
	check := podguard(t, "", "policy", "check", "-f", bad)
	static := filepath.Join(dir, "static")
	r := podguard(t, "", "export", "--policy", bad, "--static-manifests", static)
	if r.code != 2 || r.err != check.err {
		t.Errorf("invalid policy: exit %d, stderr %q, want policy check's %q", r.code, r.err, check.err)
	}
	if _, err := os.Stat(static); !os.IsNotExist(err) {
		t.Errorf("a failed export wrote %s", static)
	}
	if r := podguard(t, "", "export", "--static-manifests", "relative/dir"); r.code != 2 || !strings.Contains(r.err, "absolute") {
		t.Errorf("relative directory: exit %d %s", r.code, r.err)
	}
	if r := podguard(t, "", "export", "--static-manifests", static); r.code != 0 {
		t.Fatalf("static: exit %d %s", r.code, r.err)
	}
	for _, f := range []string{"admission-config.yaml", "validating-policies/podguard-pods-enforce.yaml", "mutating-policies/podguard-mutate-pods.yaml"} {
		data, err := os.ReadFile(filepath.Join(static, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if f != "admission-config.yaml" && (!strings.Contains(string(data), ".static.k8s.io") || strings.Contains(string(data), "paramKind")) {
			t.Errorf("%s: names must end in .static.k8s.io, no params", f)
		}
	}
	// A second export replaces the first; a directory of something else is refused.
	if r := podguard(t, "", "export", "--static-manifests", static); r.code != 0 {
		t.Errorf("re-export: exit %d %s", r.code, r.err)
	}
	other := filepath.Join(dir, "other")
	write(t, other, "keep.txt", "mine")
	if r := podguard(t, "", "export", "--static-manifests", other); r.code != 2 || !strings.Contains(r.err, "refusing") {
		t.Errorf("foreign directory: exit %d %s", r.code, r.err)
	}
	if data, _ := os.ReadFile(filepath.Join(other, "keep.txt")); string(data) != "mine" {
		t.Error("a refused export touched the directory")
	}
	expiring := write(t, dir, "exp.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions:\n- reason: old\n  namespaces: [a]\n  expires: \"2000-01-01\"\n- reason: soon\n  namespaces: [b]\n  expires: \"2999-01-01\"\n")
	r = podguard(t, "", "export", "--policy", expiring)
	if !strings.Contains(r.err, "exemption 0 (old) expired") || !strings.Contains(r.err, "exemption 1 (soon) expires at 2999-01-01") ||
		strings.Contains(r.out, `request.namespace in ["a"]`) || !strings.Contains(r.out, `request.namespace in ["b"]`) {
		t.Errorf("expiring exemptions:\n%s", r.err)
	}
}

// TestTemplateHint: a chart template passed raw gave "invalid map key" and
// nothing to try; the error now says to render it first.
func TestTemplateHint(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"value.yaml":  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Values.name }}\nspec:\n  containers: []\n",
		"action.yaml": "{{- if .Values.x }}\napiVersion: v1\nkind: Pod\n{{- end }}\n",
	} {
		r := podguard(t, "", "validate", "-f", write(t, dir, name, doc))
		if r.code != 2 || !strings.Contains(r.err, name) || !strings.Contains(r.err, "helm template CHART | podguard validate -f -") {
			t.Errorf("%s: exit %d\n%s", name, r.code, r.err)
		}
	}
	// A broken document without {{ gets no such hint.
	r := podguard(t, "", "validate", "-f", write(t, dir, "broken.yaml", "apiVersion: [\n"))
	if r.code != 2 || strings.Contains(r.err, "helm template") {
		t.Errorf("broken YAML: exit %d\n%s", r.code, r.err)
	}
}
