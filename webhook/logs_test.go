package webhook_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDecisionLogs: on a running podguard with --log-level error and
// --log-decisions denied, a denial is logged (the error level does not
// silence it) with the object's generateName and owner and its violations
// grouped by rule; an allowed request is not; podguard_build_info is served.
func TestDecisionLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a podguard process")
	}
	metrics := freeAddr(t)
	p := startProcess(t, "--log-level", "error", "--log-decisions", "denied", "--metrics-bind-address", metrics)
	owned := `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-7d4b9c-","ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c","uid":"u1","controller":true}]},` +
		`"spec":{"containers":[{"name":"a","image":"a:1","securityContext":{"privileged":true,"runAsUser":0}},{"name":"b","image":"b:1","securityContext":{"privileged":true}}]}}`
	if r, err := p.answer(p.validate, reviewBody("denied-1", owned)); err != nil || r.Allowed {
		t.Fatalf("the privileged pod: %+v %v", r, err)
	}
	ok := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"fine"},"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":1000,"runAsGroup":1000,"seccompProfile":{"type":"RuntimeDefault"}},"automountServiceAccountToken":false,` +
		`"containers":[{"name":"c","image":"c:1","securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}},"resources":{"limits":{"cpu":"1","memory":"1Gi"}},` +
		`"livenessProbe":{"tcpSocket":{"port":1}},"readinessProbe":{"tcpSocket":{"port":1}}}]}}`
	if r, err := p.answer(p.validate, reviewBody("allowed-1", ok)); err != nil || !r.Allowed {
		t.Fatalf("the compliant pod: %+v %v", r, err)
	}
	var denial map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch line["uid"] {
		case "denied-1":
			denial = line
		case "allowed-1":
			t.Errorf("an allowed decision was logged under --log-decisions denied: %s", sc.Text())
		}
	}
	if denial == nil {
		t.Fatalf("no log line for the denial under --log-level error:\n%s", p.logs.String())
	}
	v, _ := denial["violations"].(map[string]any)
	priv, _ := v["privileged"].([]any)
	if denial["generateName"] != "web-7d4b9c-" || denial["owner"] != "ReplicaSet/web-7d4b9c" || len(priv) != 2 || v["runAsUser"] == nil ||
		denial["operation"] != "CREATE" || denial["decision"] != "denied" {
		t.Errorf("the denial's log line: %v", denial)
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `podguard_build_info{commit="`) || !strings.Contains(string(body), `go_version="go1.`) {
		t.Errorf("no podguard_build_info:\n%.2000s", body)
	}
}
