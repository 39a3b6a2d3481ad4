package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/singleflight"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook/imageverify"
)

const (
	// digestTTL is how long a tag's resolution is reused: a tag moved
	// after it is pinned to its old digest for at most this long.
	digestTTL = 5 * time.Minute
	// maxDigestEntries bounds the cache; beyond it, expired entries go
	// first, then the cache is emptied (a bound, not an LRU: lookups are
	// cheap next to a pod's creation).
	maxDigestEntries = 10000
	// maxParallelLookups bounds the registry requests of one admission.
	maxParallelLookups = 8
)

// DigestResolver asks registries what digest an image reference resolves
// to now (a HEAD of its manifest: for a multi-arch image, the index's
// digest), for imageDigest's fix. It caches answers briefly, shares one
// lookup among concurrent requests for the same reference, and never
// waits past the context it is given: a reference it cannot resolve in
// time is left unpinned and reported, never a reason to refuse a pod by
// itself. Registries are asked anonymously (credentials from docker-config
// Secrets are not read yet).
type DigestResolver struct {
	log       logr.Logger
	transport http.RoundTripper
	// Keychain gives the credentials to present (nil: anonymous).
	Keychain authn.Keychain

	mu    sync.Mutex // guards cache and now
	cache map[string]resolved
	group singleflight.Group
	now   func() time.Time
}

type resolved struct {
	digest  string
	expires time.Time
}

// NewDigestResolver returns a resolver using transport (nil: the default,
// with the system's roots).
func NewDigestResolver(transport http.RoundTripper, log logr.Logger) *DigestResolver {
	if transport == nil {
		transport = remote.DefaultTransport
	}
	return &DigestResolver{log: log, transport: transport, cache: map[string]resolved{}, now: time.Now}
}

// Resolve returns the digests of the references it could resolve before
// ctx ends, looked up in parallel (at most maxParallelLookups at once).
func (r *DigestResolver) Resolve(ctx context.Context, refs []string) map[string]string {
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxParallelLookups)
	for _, ref := range refs {
		if d, ok := r.cached(ref); ok {
			out[ref] = d
			continue
		}
		wg.Add(1)
		go func(ref string) {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				return
			}
			ch := r.group.DoChan(imageverify.SharedKey(ctx, ref), func() (any, error) { return r.lookup(ctx, ref) })
			select {
			case res := <-ch:
				if res.Err != nil {
					r.log.V(1).Info("image digest not resolved", "image", truncate(ref, maxLogValue), "error", truncate(res.Err.Error(), maxLogValue))
					return
				}
				mu.Lock()
				out[ref] = res.Val.(string)
				mu.Unlock()
			case <-ctx.Done():
			}
		}(ref)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return out
}

func (r *DigestResolver) cached(ref string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cache[ref]
	if !ok || r.now().After(c.expires) {
		return "", false
	}
	return c.digest, true
}

func (r *DigestResolver) lookup(ctx context.Context, ref string) (string, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(parsed, remote.WithContext(ctx), remote.WithTransport(r.transport), remote.WithAuthFromKeychain(imageverify.Keychain(ctx, r.Keychain)))
	if err != nil {
		return "", err
	}
	d := desc.Digest.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if len(r.cache) >= maxDigestEntries {
		for k, c := range r.cache {
			if now.After(c.expires) {
				delete(r.cache, k)
			}
		}
		if len(r.cache) >= maxDigestEntries {
			r.cache = map[string]resolved{}
		}
	}
	r.cache[ref] = resolved{digest: d, expires: now.Add(digestTTL)}
	return d, nil
}

// NewDigestResolverFromCAFile builds the resolver the webhook (and the CLI) uses: the system's
// roots, plus caFile's CAs when given.
func NewDigestResolverFromCAFile(caFile string, log logr.Logger) (*DigestResolver, error) {
	tr, err := RegistryTransport(caFile)
	if err != nil {
		return nil, err
	}
	return NewDigestResolver(tr, log), nil
}

// RegistryTransport is how podguard reaches registries: the default
// transport with the system's roots, plus caFile's CAs when given
// (--registry-ca-file).
func RegistryTransport(caFile string) (http.RoundTripper, error) {
	if caFile == "" {
		return remote.DefaultTransport, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--registry-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--registry-ca-file %s holds no PEM certificate", caFile)
	}
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// UnpinnedImages lists the references of t's images (containers of every
// kind, image volumes) that name no digest, once each; with only set, the
// images of those containers alone (the new ephemeral containers of a
// pods/ephemeralcontainers request: nothing else of the pod is fixed).
func UnpinnedImages(t *podspec.Target, only []string) []string {
	var out []string
	for _, img := range t.Images() {
		if only != nil && (img.Volume != nil || !slices.Contains(only, img.Container)) {
			continue
		}
		if img.Reference != "" && !strings.Contains(img.Reference, "@") && !slices.Contains(out, img.Reference) {
			out = append(out, img.Reference)
		}
	}
	return out
}

// ImageFacts are what the registries said about a request's images, for
// the engine (policies.Attributes).
type ImageFacts struct {
	// Signatures and Scans are imageSignatures' and imageVulnerabilities'
	// verdicts; Configs what the images' configs declare (runAsUser's
	// imageUser). Each is nil when its rule asks nothing.
	Signatures, Scans imagetrust.Verdicts
	Configs           map[string]imagetrust.ImageConfig
}

// Apply hands the facts to the engine.
func (f ImageFacts) Apply(a *policies.Attributes) {
	a.ImageVerdicts, a.ImageScans, a.ImageConfigs = f.Signatures, f.Scans, f.Configs
}

// VerifyImages asks the registries what the policy's image rules need to
// know of t's images: imageSignatures' and imageVulnerabilities' verdicts
// for the images their entries cover, and, with runAsUser's imageUser on,
// what each image's config declares; with only set, of these
// containers alone (the new ephemeral containers of a
// pods/ephemeralcontainers request). Tags are resolved with digests; all
// of it ends with ctx. The one definition of what is verified, for the
// webhook and the CLI.
func VerifyImages(ctx context.Context, digests *DigestResolver, v *imageverify.Verifier, p *v1alpha1.Policy, t *podspec.Target, only []string) ImageFacts {
	sigs, sigsOn := rules.ImageSignatures(p)
	vulns, vulnsOn := rules.ImageVulnerabilities(p)
	usersOn := rules.ImageUserRead(p)
	var facts ImageFacts
	if (!sigsOn && !vulnsOn && !usersOn) || v == nil {
		return facts
	}
	covered := func(img podspec.Image) bool {
		return (sigsOn && len(sigs.Covers(img.Reference)) > 0) || (vulnsOn && len(vulns.Covers(img.Reference)) > 0) || (usersOn && img.Volume == nil)
	}
	var refs, tags, containerRefs []string
	for _, img := range t.Images() {
		if only != nil && (img.Volume != nil || !slices.Contains(only, img.Container)) {
			continue
		}
		if img.Reference == "" || slices.Contains(refs, img.Reference) || !covered(img) {
			continue
		}
		refs = append(refs, img.Reference)
		if img.Volume == nil {
			containerRefs = append(containerRefs, img.Reference)
		}
		if !strings.Contains(img.Reference, "@") {
			tags = append(tags, img.Reference)
		}
	}
	var resolved map[string]string
	if len(tags) > 0 && digests != nil {
		resolved = digests.Resolve(ctx, tags)
	}
	if sigsOn {
		facts.Signatures = pinnedToo(v.Verify(ctx, sigs, refs, resolved), resolved)
	}
	if vulnsOn {
		facts.Scans = pinnedToo(v.VerifyScans(ctx, vulns, refs, resolved), resolved)
	}
	if usersOn {
		facts.Configs = v.ImageConfigs(ctx, containerRefs, resolved)
		for ref, c := range facts.Configs {
			if d, ok := resolved[ref]; ok {
				facts.Configs[ref+"@"+d] = c
			}
		}
	}
	return facts
}

// pinnedToo adds each verdict of a resolved tag under the reference
// imageDigest's fix pins it to (name:tag@digest): a caller that pins and
// judges in one step (podguard validate --mutate) finds it there.
func pinnedToo(verdicts imagetrust.Verdicts, resolved map[string]string) imagetrust.Verdicts {
	for k, verdict := range verdicts {
		if d, ok := resolved[k.Ref]; ok && verdict.Digest == d {
			verdicts[imagetrust.Key{Ref: k.Ref + "@" + d, Trust: k.Trust}] = verdict
		}
	}
	return verdicts
}
