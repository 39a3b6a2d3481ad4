package testenv

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is an in-process OCI registry (go-containerregistry's
// pkg/registry: the real distribution protocol) served over TLS on
// 127.0.0.1 until the test ends.
type Registry struct {
	*httptest.Server
	// Host is host:port, the registry part of its image references.
	Host string
	// CAFile is a PEM file of the certificate it serves, for clients
	// that must trust it (--registry-ca-file).
	CAFile string

	failWith  atomic.Int32
	delay     atomic.Int64
	basicAuth atomic.Pointer[[2]string]
}

// RequireBasicAuth makes the registry refuse (401, a Basic challenge)
// every request without this user and password: push what the test needs
// first.
func (r *Registry) RequireBasicAuth(user, password string) {
	r.basicAuth.Store(&[2]string{user, password})
}

// Delay makes the registry wait d before each answer (a slow registry),
// until called again with 0.
func (r *Registry) Delay(d time.Duration) { r.delay.Store(int64(d)) }

// FailWith makes the registry answer every request with status code (429
// Too Many Requests, 503...), until called again with 0.
func (r *Registry) FailWith(code int) { r.failWith.Store(int32(code)) }

// StartRegistry starts a Registry for t.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))
	r := &Registry{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if d := time.Duration(r.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-req.Context().Done():
				return
			}
		}
		if c := r.basicAuth.Load(); c != nil {
			if u, p, ok := req.BasicAuth(); !ok || u != c[0] || p != c[1] {
				w.Header().Set("WWW-Authenticate", `Basic realm="podguard-test"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if code := r.failWith.Load(); code != 0 {
			w.Header().Set("Retry-After", "60")
			http.Error(w, http.StatusText(int(code)), int(code))
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "registry-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Server, r.Host, r.CAFile = srv, strings.TrimPrefix(srv.URL, "https://"), ca
	return r
}

// Push writes an image or an index as repo:tag (a reference without the
// host) and returns its digest.
func (r *Registry) Push(t testing.TB, ref string, img any) v1.Hash {
	t.Helper()
	parsed, err := name.ParseReference(r.Host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	opt := remote.WithTransport(r.Client().Transport)
	var d v1.Hash
	switch x := img.(type) {
	case v1.Image:
		err = remote.Write(parsed, x, opt)
		d, _ = x.Digest()
	case v1.ImageIndex:
		err = remote.WriteIndex(parsed, x, opt)
		d, _ = x.Digest()
	default:
		t.Fatalf("push %T", img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushRandom pushes a new random image (one 256-byte layer) as repo:tag
// and returns its digest.
func (r *Registry) PushRandom(t testing.TB, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r.Push(t, ref, img)
}
