// Package imageverify verifies the signatures of the images a pod runs,
// for imageSignatures: the one verifier of the webhook and of podguard
// validate --verify-images and podguard images verify. It reads cosign's
// two formats from the image's registry (the legacy sha256-<hex>.sig tag,
// Sigstore bundles stored as OCI referrers) with go-containerregistry and
// verifies them with sigstore-go, against the keys and trusted roots the
// policy holds: no trust material is fetched.
//
// Verdicts are cached by (repository, digest, trust entry), bounded, for
// the policy's verdictTTL; concurrent requests for the same key share one
// lookup; a digest verified within staleIfError stays admitted while its
// registry cannot be reached. Nothing a request carries (annotations, an
// earlier webhook's word) is ever trusted: each caller verifies the
// digests itself, from its own cache.
package imageverify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/singleflight"

	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/rules"
)

var timeZero time.Time

const (
	// maxEntries bounds the verdict cache (an entry is a few hundred
	// bytes: its key, the digest, signer names and a detail capped at
	// maxDetail).
	maxEntries = 10000
	maxDetail  = 512
	// maxParallel bounds the registry lookups of one request.
	maxParallel = 8
	// maxNegativeTTL bounds how long "unsigned" is remembered: an image
	// signed right after a denial verifies within it.
	maxNegativeTTL = 30 * time.Second
	// errorTTL is how long a registry error is remembered for a key:
	// during an outage, admissions get the fallback verdict at once
	// instead of each waiting for the registry again.
	errorTTL = 10 * time.Second
)

// Verifier verifies image signatures. It is safe for concurrent use.
type Verifier struct {
	log       logr.Logger
	transport http.RoundTripper
	// Now is the clock (tests move it).
	Now func() time.Time
	// Observe, when set, is told each verdict handed out and whether the
	// cache answered (metrics).
	Observe func(status imagetrust.Status, cached bool)
	// Keychain gives the credentials to present (nil: anonymous).
	Keychain authn.Keychain

	mu          sync.Mutex // guards cache
	cache       map[string]*entry
	group       singleflight.Group
	authorities sync.Map // authority JSON -> *authority or error
	configs     configs
}

type entry struct {
	verdict imagetrust.Verdict
	checked time.Time
	// lastGood is the last Verified verdict, which a registry error
	// within staleIfError falls back on.
	lastGood *imagetrust.Verdict
	// failedAt is when the registry last failed to answer for this key
	// (zero once it answers), and failDetail what it said.
	failedAt   time.Time
	failDetail string
}

// New returns a Verifier reading registries through transport (nil: the
// default transport with the system's roots).
func New(transport http.RoundTripper, log logr.Logger) *Verifier {
	if transport == nil {
		transport = remote.DefaultTransport
	}
	return &Verifier{log: log, transport: transport, Now: time.Now, cache: map[string]*entry{}}
}

// Verify returns the verdicts of the references (as written in the pod
// spec) against the trust entries of ps that cover them. A reference
// without a digest is verified at the digest digests gives it (the
// caller's resolution); without one, its verdict is unreachable. Lookups
// run in parallel and end with ctx: a verification not finished by then
// has no verdict, which the rule reports.
func (v *Verifier) Verify(ctx context.Context, ps *rules.ImageSignaturesParams, refs []string, digests map[string]string) imagetrust.Verdicts {
	stale, ttl := ps.Durations()
	checks := make([]check, len(ps.Trust))
	for i, tr := range ps.Trust {
		checks[i] = check{id: "sig|" + hashOf(tr, tr.Authorities), judge: func(set *signatureSet, d v1.Hash) imagetrust.Verdict { return v.judge(set, d, tr) }}
	}
	return v.run(ctx, refs, digests, ps.Covers, checks, stale, ttl)
}

// VerifyScans returns the verdicts of the references against the scan
// entries of ps that cover them, as Verify does for signatures: a
// Verified verdict carries the newest scan attestation an authority of
// the entry signed, for the rule to judge.
func (v *Verifier) VerifyScans(ctx context.Context, ps *rules.ImageVulnerabilitiesParams, refs []string, digests map[string]string) imagetrust.Verdicts {
	stale, ttl := ps.Durations()
	checks := make([]check, len(ps.Scans))
	for i, sc := range ps.Scans {
		as := sc.Authorities
		checks[i] = check{id: "scan|" + hashOf(as, as), judge: func(set *signatureSet, d v1.Hash) imagetrust.Verdict { return v.judgeScan(set, d, as) }}
	}
	return v.run(ctx, refs, digests, ps.Covers, checks, stale, ttl)
}

// check is one entry to verify images against: its identity in the cache
// and how a set of signatures is judged.
type check struct {
	id    string
	judge func(set *signatureSet, d v1.Hash) imagetrust.Verdict
}

// hashOf identifies an entry x in the cache: its settings and the trust
// material of its authorities, which a ConfigMap may change under the same
// settings (a rotated key must not inherit the old key's verdicts).
func hashOf(x any, authorities []rules.Authority) string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(x) // plain data
	for _, a := range authorities {
		m, err := a.Material()
		if err != nil {
			m = "error: " + err.Error()
		}
		fmt.Fprintf(h, "%d:%s", len(m), m)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (v *Verifier) run(ctx context.Context, refs []string, digests map[string]string, covers func(string) []int, checks []check, stale, ttl time.Duration) imagetrust.Verdicts {
	out := imagetrust.Verdicts{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxParallel)
	for _, ref := range refs {
		for _, i := range covers(ref) {
			key := imagetrust.Key{Ref: ref, Trust: i}
			d, err := digestOf(ref, digests)
			if err != nil {
				out[key] = imagetrust.Verdict{Status: imagetrust.Unreachable, Detail: truncate(err.Error())}
				v.observe(imagetrust.Unreachable, false)
				continue
			}
			cacheKey := d.Context().Name() + "@" + d.DigestStr() + "|" + checks[i].id
			if verdict, ok := v.fresh(cacheKey, ttl, stale); ok {
				out[key] = verdict
				v.observe(verdict.Status, true)
				continue
			}
			wg.Add(1)
			go func(c check) {
				defer wg.Done()
				select {
				case slots <- struct{}{}:
					defer func() { <-slots }()
				case <-ctx.Done():
					return
				}
				verdict, ok := v.verify(ctx, cacheKey, d, c, stale)
				if ok {
					mu.Lock()
					out[key] = verdict
					mu.Unlock()
				}
			}(checks[i])
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return out
}

// digestOf is the digest a reference is verified at: its own, or the
// caller's resolution of its tag.
func digestOf(ref string, digests map[string]string) (name.Digest, error) {
	if strings.Contains(ref, "@") {
		d, err := name.NewDigest(ref)
		if err != nil {
			return name.Digest{}, fmt.Errorf("reference: %w", err)
		}
		return d, nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("reference: %w", err)
	}
	dg, ok := digests[ref]
	if !ok {
		return name.Digest{}, fmt.Errorf("the registry did not resolve the tag to a digest in time")
	}
	return r.Context().Digest(dg), nil
}

// verify returns one verdict from the registry, sharing the lookup with
// concurrent callers of the same key; false when ctx ended first.
func (v *Verifier) verify(ctx context.Context, key string, d name.Digest, c check, stale time.Duration) (imagetrust.Verdict, bool) {
	ch := v.group.DoChan(SharedKey(ctx, key), func() (any, error) {
		return v.lookup(ctx, key, d, c, stale), nil
	})
	select {
	case res := <-ch:
		verdict := res.Val.(imagetrust.Verdict)
		v.observe(verdict.Status, false)
		return verdict, true
	case <-ctx.Done():
		return imagetrust.Verdict{}, false
	}
}

func (v *Verifier) fresh(key string, ttl, stale time.Duration) (imagetrust.Verdict, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.cache[key]
	if !ok {
		return imagetrust.Verdict{}, false
	}
	now := v.Now()
	if !e.failedAt.IsZero() && now.Sub(e.failedAt) < errorTTL {
		// The registry failed a moment ago: answer as then, without
		// making every admission of the outage wait for it again.
		return fallback(e, now, stale, e.failDetail), true
	}
	if e.checked.IsZero() {
		return imagetrust.Verdict{}, false
	}
	if e.verdict.Status != imagetrust.Verified {
		ttl = min(ttl, maxNegativeTTL)
	}
	if now.Sub(e.checked) >= ttl {
		return imagetrust.Verdict{}, false
	}
	return e.verdict, true
}

// fallback is the verdict of a registry error: the last verification
// within stale, or unreachable.
func fallback(e *entry, now time.Time, stale time.Duration, detail string) imagetrust.Verdict {
	if e != nil && e.lastGood != nil && now.Sub(e.lastGood.VerifiedAt) < stale {
		verdict := *e.lastGood
		verdict.Status, verdict.Detail = imagetrust.Stale, detail
		return verdict
	}
	verdict := imagetrust.Verdict{Status: imagetrust.Unreachable, Detail: detail}
	if e != nil {
		verdict.Digest = e.verdict.Digest
	}
	return verdict
}

// lookup reads the signatures and judges them; on a registry error, the
// last verification within stale decides.
func (v *Verifier) lookup(ctx context.Context, key string, d name.Digest, c check, stale time.Duration) imagetrust.Verdict {
	hash, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return imagetrust.Verdict{Status: imagetrust.Unsigned, Detail: truncate(err.Error())}
	}
	now := v.Now()
	set, err := v.fetch(ctx, d)
	if err != nil {
		detail := truncate(err.Error())
		v.log.V(1).Info("image signatures not read", "image", truncate(d.String()), "error", detail)
		v.mu.Lock()
		defer v.mu.Unlock()
		e := v.cache[key]
		if e == nil && ctx.Err() == nil {
			if len(v.cache) >= maxEntries {
				v.evict(now)
			}
			e = &entry{verdict: imagetrust.Verdict{Digest: hash.String()}}
			v.cache[key] = e
		}
		if e != nil && ctx.Err() == nil && !isAuthError(err) {
			// A request that ran out of time says nothing of the
			// registry, nor does one whose credentials were refused (the
			// next pod may carry others); a registry that failed is
			// remembered briefly.
			e.failedAt, e.failDetail = now, detail
		}
		verdict := fallback(e, now, stale, detail)
		verdict.Digest = hash.String()
		return verdict
	}
	verdict := c.judge(set, hash)
	verdict.Digest = hash.String()
	if verdict.Status == imagetrust.Verified {
		verdict.VerifiedAt = now
	}
	v.store(key, verdict, now)
	return verdict
}

// judge decides whether set satisfies the trust entry.
func (v *Verifier) judge(set *signatureSet, d v1.Hash, tr rules.ImageTrust) imagetrust.Verdict {
	var signers, reasons []string
	for _, pa := range tr.Authorities {
		a, err := v.authority(pa)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", pa.Name, err))
			continue
		}
		if ok, why := a.check(set, d); ok {
			signers = append(signers, a.name)
		} else {
			reasons = append(reasons, fmt.Sprintf("%s: %s", a.name, why))
		}
	}
	verified := len(signers) > 0
	if tr.Require == rules.RequireAll {
		verified = len(signers) == len(tr.Authorities)
	}
	if verified {
		return imagetrust.Verdict{Status: imagetrust.Verified, Signers: signers}
	}
	return imagetrust.Verdict{Status: imagetrust.Unsigned, Signers: signers, Detail: truncate(strings.Join(reasons, "; "))}
}

func (v *Verifier) authority(pa rules.Authority) (*authority, error) {
	k := hashOf(pa, []rules.Authority{pa})
	if a, ok := v.authorities.Load(k); ok {
		if err, bad := a.(error); bad {
			return nil, err
		}
		return a.(*authority), nil
	}
	a, err := newAuthority(pa)
	if err != nil {
		v.authorities.Store(k, err)
		return nil, err
	}
	v.authorities.Store(k, a)
	return a, nil
}

func (v *Verifier) store(key string, verdict imagetrust.Verdict, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.cache[key]
	if e == nil {
		if len(v.cache) >= maxEntries {
			v.evict(now)
		}
		e = &entry{}
		v.cache[key] = e
	}
	e.verdict, e.checked, e.failedAt, e.failDetail = verdict, now, timeZero, ""
	if verdict.Status == imagetrust.Verified {
		e.lastGood = &verdict
	} else {
		// A digest found unsigned is no longer admitted on an earlier
		// verification (a signature removed, a key rotated out).
		e.lastGood = nil
	}
}

// evict makes room: entries never verified go first, then the oldest
// half. Called with mu held.
func (v *Verifier) evict(now time.Time) {
	for k, e := range v.cache {
		if e.lastGood == nil {
			delete(v.cache, k)
		}
	}
	if len(v.cache) < maxEntries {
		return
	}
	cut := now
	for _, e := range v.cache {
		if e.lastGood.VerifiedAt.Before(cut) {
			cut = e.lastGood.VerifiedAt
		}
	}
	mid := cut.Add(now.Sub(cut) / 2)
	for k, e := range v.cache {
		if !e.lastGood.VerifiedAt.After(mid) {
			delete(v.cache, k)
		}
	}
}

// Len is the number of cached verdicts.
func (v *Verifier) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cache)
}

func (v *Verifier) observe(s imagetrust.Status, cached bool) {
	if v.Observe != nil {
		v.Observe(s, cached)
	}
}

func truncate(s string) string {
	if len(s) > maxDetail {
		return s[:maxDetail] + "..."
	}
	return s
}
