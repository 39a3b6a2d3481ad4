package imageverify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook/imageverify"
)

// benchPod is a pod's worth of distinct signed images in an in-process
// registry over TLS on the loopback, with the policy that covers them.
type benchPod struct {
	reg  *testenv.Registry
	tr   http.RoundTripper
	ps   *rules.ImageSignaturesParams
	refs []string
}

func newBenchPod(b *testing.B, images int) *benchPod {
	b.Helper()
	reg := testenv.StartRegistry(b)
	key := sigtest.NewSigner(b)
	p := &benchPod{reg: reg}
	for i := range images {
		repo := fmt.Sprintf("team/app%d", i)
		d := reg.PushRandom(b, repo+":1")
		sigtest.SignLegacy(b, reg, key, repo, d, sigtest.SimpleSigningPayload(reg.Host+"/"+repo, d))
		p.refs = append(p.refs, reg.Host+"/"+repo+":1@"+d.String())
	}
	p.ps = &rules.ImageSignaturesParams{Trust: []rules.ImageTrust{{Images: []string{reg.Host + "/team/*"},
		Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: key.PEM}}}}}}
	p.ps.Default()
	pool := x509.NewCertPool()
	pool.AddCert(reg.Certificate())
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	p.tr = tr
	return p
}

func (p *benchPod) verify(b *testing.B, v *imageverify.Verifier) imagetrust.Verdicts {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := v.Verify(ctx, p.ps, p.refs, nil)
	for _, r := range p.refs {
		if got[imagetrust.Key{Ref: r}].Status != imagetrust.Verified {
			b.Fatalf("%s: %+v", r, got[imagetrust.Key{Ref: r}])
		}
	}
	return got
}

// BenchmarkVerifyCold: a pod of n distinct images, none seen before: every
// signature is read from the registry and verified (8 lookups at a time).
func BenchmarkVerifyCold(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("images=%d", n), func(b *testing.B) {
			p := newBenchPod(b, n)
			b.ResetTimer()
			for b.Loop() {
				p.verify(b, imageverify.New(p.tr, logr.Discard()))
			}
		})
	}
}

// BenchmarkVerifyWarm: the same pod again: every verdict from the cache;
// the time a request spends on verification once its digests are known.
// It also reports the heap each cached verdict holds.
func BenchmarkVerifyWarm(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("images=%d", n), func(b *testing.B) {
			p := newBenchPod(b, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			v := imageverify.New(p.tr, logr.Discard())
			p.verify(b, v)
			runtime.GC()
			runtime.ReadMemStats(&after)
			perVerdict := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(v.Len())
			b.ResetTimer()
			for b.Loop() {
				p.verify(b, v)
			}
			if n == 100 { // fewer verdicts: the verifier's own state dominates
				b.ReportMetric(perVerdict, "heapB/verdict")
			}
		})
	}
}

// BenchmarkVerifyOutage: the registry stops after the pod's digests were
// verified, and verdictTTL has passed: every request asks the registry,
// cannot reach it, and admits on the earlier verification (stale). It
// reports how many verdicts were not stale: the admissions that failed.
func BenchmarkVerifyOutage(b *testing.B) {
	p := newBenchPod(b, 10)
	now := time.Now()
	v := imageverify.New(p.tr, logr.Discard())
	v.Now = func() time.Time { return now }
	p.verify(b, v)
	p.reg.Close()
	now = now.Add(time.Hour) // past verdictTTL, within staleIfError
	failed := 0
	b.ResetTimer()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		got := v.Verify(ctx, p.ps, p.refs, nil)
		cancel()
		for _, r := range p.refs {
			if got[imagetrust.Key{Ref: r}].Status != imagetrust.Stale {
				failed++
			}
		}
	}
	b.ReportMetric(float64(failed), "failed")
}
