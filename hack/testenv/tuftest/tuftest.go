// Package tuftest serves a TUF repository over TLS on 127.0.0.1, as a
// private Sigstore deployment publishes its trusted_root.json: signed
// root, targets, snapshot and timestamp metadata (go-tuf's metadata
// package), consistent snapshots, one target. Tests of keyless
// authorities whose trusted root comes from a repository use it.
package tuftest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Target is the one target a repository serves.
const Target = "trusted_root.json"

// Repo is a TUF repository served over TLS.
type Repo struct {
	// URL is its base URL; Root its 1.root.json, the client's root of
	// trust; CAFile a PEM file of the CA its certificate chains to.
	URL    string
	Root   []byte
	CAFile string

	srv     *httptest.Server
	signers map[string]signature.Signer

	mu        sync.Mutex
	files     map[string][]byte
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	requests  int
	down      bool
}

// Start serves a repository whose target is data.
func Start(t testing.TB, data []byte) *Repo {
	t.Helper()
	r := &Repo{signers: map[string]signature.Signer{}, files: map[string][]byte{}}
	expires := time.Now().AddDate(0, 0, 30)
	root := metadata.Root(expires)
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
		if r.signers[role], err = signature.LoadSigner(priv, crypto.Hash(0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.Sign(r.signers["root"]); err != nil {
		t.Fatal(err)
	}
	rootBytes, err := root.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	r.Root, r.files["1.root.json"] = rootBytes, rootBytes
	r.targets, r.snapshot, r.timestamp = metadata.Targets(expires), metadata.Snapshot(expires), metadata.Timestamp(expires)
	r.targets.Signed.Version, r.snapshot.Signed.Version, r.timestamp.Signed.Version = 0, 0, 0
	r.SetTarget(t, data)

	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL
	r.CAFile = filepath.Join(t.TempDir(), "tuf-ca.pem")
	if err := os.WriteFile(r.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// SetTarget publishes data as the target: new targets, snapshot and
// timestamp versions, as a repository rotating its trusted root does.
func (r *Repo) SetTarget(t testing.TB, data []byte) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	tf, err := metadata.TargetFile().FromBytes(Target, data, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	r.files["targets/"+hex.EncodeToString(sum[:])+"."+Target] = data
	r.targets.Signed.Targets = map[string]*metadata.TargetFiles{Target: tf}
	r.targets.Signed.Version++
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.snapshot.Signed.Version++
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.timestamp.Signed.Version++
	sign := func(role string, md interface {
		ClearSignatures()
		Sign(signature.Signer) (*metadata.Signature, error)
		ToBytes(bool) ([]byte, error)
	}) []byte {
		md.ClearSignatures()
		if _, err := md.Sign(r.signers[role]); err != nil {
			t.Fatal(err)
		}
		b, err := md.ToBytes(true)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r.files[strconv.FormatInt(r.targets.Signed.Version, 10)+".targets.json"] = sign("targets", r.targets)
	r.files[strconv.FormatInt(r.snapshot.Signed.Version, 10)+".snapshot.json"] = sign("snapshot", r.snapshot)
	r.files["timestamp.json"] = sign("timestamp", r.timestamp)
}

// Tamper serves data as the current target's file, unsigned: what a
// compromised mirror would serve.
func (r *Repo) Tamper(data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.files {
		if strings.HasPrefix(name, "targets/") {
			r.files[name] = data
		}
	}
}

// SetDown makes the server answer 503 to everything (down) or serve again.
func (r *Repo) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// Requests is how many requests the server has answered.
func (r *Repo) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *Repo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	data, ok := r.files[strings.TrimPrefix(req.URL.Path, "/")]
	down := r.down
	r.mu.Unlock()
	switch {
	case down:
		http.Error(w, "down", http.StatusServiceUnavailable)
	case !ok:
		http.NotFound(w, req)
	default:
		_, _ = w.Write(data)
	}
}
