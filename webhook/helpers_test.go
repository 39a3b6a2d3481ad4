package webhook_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
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
