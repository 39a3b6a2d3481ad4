package webhook_test

import (
	"crypto/tls"
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

// servedSerial dials the webhook over TLS and returns the serial of the
// certificate it presents.
func servedSerial(t *testing.T, host string, port int) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)), &tls.Config{InsecureSkipVerify: true}) // only reads the serial
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}
