package webhook_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue reads one sample from podguard's metrics endpoint (0 if absent).
func metricValue(t *testing.T, c *cluster, sample string) float64 {
	t.Helper()
	for _, line := range strings.Split(httpGet(t, "http://"+c.opts.MetricsBindAddress+"/metrics"), "\n") {
		if strings.HasPrefix(line, sample+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, sample)), 64)
			return v
		}
	}
	return 0
}

// servedCert dials the webhook over TLS and returns a fingerprint of the
// certificate it presents (cert-controller gives every certificate serial 1).
func servedCert(t *testing.T, host string, port int) string {
	t.Helper()
	conn, err := tls.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)), &tls.Config{InsecureSkipVerify: true}) // only reads the serial
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:8])
}

// warned reports whether one of the warnings is podguard's for the rule.
func warned(ws []string, rule string) bool {
	return slices.ContainsFunc(ws, func(w string) bool {
		return strings.HasPrefix(w, "podguard: ") && strings.HasSuffix(w, "(podguard rule "+rule+")")
	})
}

var updateKubectl = flag.Bool("update-kubectl", false, "rewrite testdata/kubectl/*.txt from what kubectl prints")

// maxWarningLength is the API server's limit on one warning, beyond which
// it cuts the text wherever it falls.
const maxWarningLength = 256

// golden compares got with the file, or rewrites the file when update is set.
func golden(t *testing.T, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update-kubectl to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
