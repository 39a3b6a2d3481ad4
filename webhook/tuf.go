package webhook

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"

	"podguard.dev/podguard/policies/rules"
)

// How the webhook keeps a trusted root fetched from a TUF repository: read
// again after tufRefresh; after a failure, not asked again before
// tufRetry; the last one fetched serves while the repository cannot be
// reached, up to tufMaxStale after it was fetched (then its authority
// cannot vouch: a repository kept out of reach must not freeze a revoked
// key in place forever). Each fetch ends within tufTimeout.
const (
	tufRefresh  = time.Hour
	tufRetry    = time.Minute
	tufMaxStale = 24 * time.Hour
	tufTimeout  = 20 * time.Second
)

// TUFOptions say how FetchTrustedRoot reaches a repository.
type TUFOptions struct {
	// Transport carries the requests (nil: the default, system roots).
	Transport http.RoundTripper
	// CacheDir keeps the verified metadata between runs (the CLI's
	// --cache-dir); empty: nothing is written.
	CacheDir string
	// Offline asks no server: only what CacheDir holds counts.
	Offline bool
}

// FetchTrustedRoot returns the trusted_root.json target of the TUF
// repository at url, with sigstore-go's TUF client: every piece of
// metadata verified from root, the initial root.json the policy gives
// (root rotations, expiry, rollback and freeze checks are the client's).
func FetchTrustedRoot(url string, root []byte, o TUFOptions) ([]byte, error) {
	opts := tuf.DefaultOptions().WithRoot(root).WithRepositoryBaseURL(url)
	if o.CacheDir == "" {
		opts = opts.WithDisableLocalCache()
	} else {
		opts = opts.WithCachePath(o.CacheDir).WithCacheValidity(0)
	}
	if o.Offline {
		opts = opts.WithFetcher(offlineFetcher{}).WithForceCache()
	} else {
		f := fetcher.NewDefaultFetcher()
		f.SetHTTPClient(&http.Client{Transport: o.Transport, Timeout: tufTimeout})
		opts = opts.WithFetcher(f)
	}
	c, err := tuf.New(opts)
	if err != nil {
		return nil, err
	}
	return c.GetTarget(rules.TUFTarget)
}

// offlineFetcher refuses every download.
type offlineFetcher struct{}

func (offlineFetcher) DownloadFile(url string, _ int64, _ time.Duration) ([]byte, error) {
	return nil, fmt.Errorf("offline: %s was not asked", url)
}

// TUFRoots is the webhook's rules.TUFReader: trusted roots fetched from
// TUF repositories, kept in memory and refreshed as said above. The
// policy store asks it on each of its periodic checks; only an hourly
// refresh reaches the network.
type TUFRoots struct {
	transport http.RoundTripper
	log       logr.Logger
	now       func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]*tufEntry
}

type tufEntry struct {
	data           []byte
	fetched, tried time.Time
	err            error
}

// NewTUFRoots returns a TUFRoots asking repositories through transport
// (nil: the default transport).
func NewTUFRoots(transport http.RoundTripper, log logr.Logger) *TUFRoots {
	return &TUFRoots{transport: transport, log: log, now: time.Now, cache: map[[sha256.Size]byte]*tufEntry{}}
}

// Read implements rules.TUFReader.
func (t *TUFRoots) Read(url string, root []byte) ([]byte, error) {
	key := sha256.Sum256(append([]byte(url+"\x00"), root...))
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.cache[key]
	if e == nil {
		e = &tufEntry{}
		t.cache[key] = e
	}
	fresh := e.data != nil && now.Sub(e.fetched) < tufRefresh
	recent := !e.tried.IsZero() && now.Sub(e.tried) < tufRetry
	if !fresh && !recent {
		// Not under the lock: a fetch may take tufTimeout.
		t.mu.Unlock()
		data, err := FetchTrustedRoot(url, root, TUFOptions{Transport: t.transport})
		t.mu.Lock()
		e.tried = now
		if err == nil {
			if e.data != nil && string(e.data) != string(data) {
				t.log.Info("trusted root updated from its TUF repository", "url", url)
			}
			e.data, e.fetched, e.err = data, now, nil
		} else {
			e.err = err
			t.log.Error(err, "TUF repository not read; the last trusted root fetched from it serves for now", "url", url, "fetched", e.fetched)
		}
	}
	switch {
	case e.data != nil && now.Sub(e.fetched) < tufMaxStale:
		return e.data, nil
	case e.data != nil:
		return nil, fmt.Errorf("last read %s ago, longer than %s: %w", now.Sub(e.fetched).Round(time.Minute), tufMaxStale, e.err)
	case e.err != nil:
		return nil, e.err
	}
	return nil, errors.New("not read yet")
}
