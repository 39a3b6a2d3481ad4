package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook"
	"podguard.dev/podguard/webhook/imageverify"
)

// DigestOptions let validate and mutate ask registries what digest each
// image tag resolves to, as the webhook does for imageDigest's fix, so
// the CLI pins (and then judges) exactly as the cluster will. Off by
// default: the CLI stays offline unless asked.
//
// With --verify-images, the same registries are asked for the signatures
// imageSignatures requires, verified by the webhook's verifier: the CLI
// then judges images exactly as the validating webhook will.
type DigestOptions struct {
	Resolve   bool
	Verify    bool
	CAFile    string
	AuthFiles []string
	Timeout   time.Duration
	// CacheDir keeps verified digests between runs (--cache-dir); with
	// Offline no registry is asked and only what it holds counts.
	CacheDir string
	Offline  bool

	// PullSecrets, when set, presents each pod's own imagePullSecrets to
	// its registries (the audit's --pod-pull-secrets).
	PullSecrets *webhook.PullSecrets

	resolver *webhook.DigestResolver
	verifier *imageverify.Verifier
}

// AddFlags registers --resolve-digests, --registry-ca-file and
// --resolve-timeout.
func (o *DigestOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Resolve, "resolve-digests", false, "when the policy turns imageDigest's fix on, ask each image's registry (anonymously, over TLS) what digest its tag resolves to and pin it, as the webhook does; without it, tags are reported, not pinned")
	o.AddRegistryFlags(fs)
}

// AddRegistryFlags registers --registry-ca-file and --resolve-timeout.
func (o *DigestOptions) AddRegistryFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.CAFile, "registry-ca-file", "", "PEM bundle of CAs (besides the system's) registries' certificates may chain to, with --resolve-digests or --verify-images")
	fs.StringSliceVar(&o.AuthFiles, "registry-auth-file", nil, "Docker config file whose auths are presented to registries (e.g. ~/.docker/config.json); repeatable; credential helpers are never run; without it registries are asked anonymously")
	fs.DurationVar(&o.Timeout, "resolve-timeout", 10*time.Second, "how long the registries of one object may take to answer, with --resolve-digests or --verify-images")
}

// AddCacheFlags registers --cache-dir and --offline.
func (o *DigestOptions) AddCacheFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.CacheDir, "cache-dir", "", "keep the digests verified (and the image configs read) in DIR/image-verdicts.json between runs, judged under the policy's verdictTTL and staleIfError as the webhook's cache is; only its user must be able to write it")
	fs.BoolVar(&o.Offline, "offline", false, "ask no registry: only what --cache-dir holds counts (a digest verified within staleIfError is admitted with a warning, others are reported unverifiable); references must carry their digest")
}

// AddVerifyFlags registers --verify-images (validate only: mutate
// verifies nothing).
func (o *DigestOptions) AddVerifyFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Verify, "verify-images", false, "verify the signatures and scan attestations the policy's imageSignatures and imageVulnerabilities rules require, and read the image configs runAsUser's imageUser compares, from each image's registry as the webhook does; without it, covered images are noted as not verified")
}

// CheckCacheFlags refuses --offline and --cache-dir without
// --verify-images (they are about its verdicts), and --offline without
// --cache-dir (there would be nothing to judge by).
func (o *DigestOptions) CheckCacheFlags() error {
	if (o.Offline || o.CacheDir != "") && !o.Verify {
		return BadInput("--offline and --cache-dir are about image verification: add --verify-images")
	}
	if o.Offline && o.CacheDir == "" {
		return BadInput("--offline judges images by what --cache-dir holds: give --cache-dir")
	}
	return nil
}

// cacheFile is where --cache-dir keeps the verdicts.
func (o *DigestOptions) cacheFile() string { return filepath.Join(o.CacheDir, "image-verdicts.json") }

// errOffline is every registry request's answer under --offline.
var errOffline = errors.New("offline (--offline): no registry is asked")

type offlineTransport struct{}

func (offlineTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, errOffline }

func (o *DigestOptions) init() error {
	if o.resolver != nil {
		return nil
	}
	if o.Offline && o.CacheDir == "" {
		return BadInput("--offline judges images by what --cache-dir holds: give --cache-dir")
	}
	tr, err := webhook.RegistryTransport(o.CAFile)
	if err != nil {
		return BadInput("%v", err)
	}
	if o.Offline {
		tr = offlineTransport{}
	}
	if err := webhook.CheckAuthFiles(o.AuthFiles); err != nil {
		return BadInput("--registry-auth-file: %v", err)
	}
	o.resolver, o.verifier = webhook.NewDigestResolver(tr, logr.Discard()), imageverify.New(tr, logr.Discard())
	if len(o.AuthFiles) > 0 {
		o.resolver.Keychain, o.verifier.Keychain = webhook.AuthFiles(o.AuthFiles), webhook.AuthFiles(o.AuthFiles)
	}
	if o.CacheDir != "" {
		f, err := os.Open(o.cacheFile())
		if errors.Is(err, fs.ErrNotExist) {
			return nil // the first run fills it
		}
		if err != nil {
			return BadInput("--cache-dir: %v", err)
		}
		defer f.Close()
		if err := o.verifier.Load(f); err != nil {
			return BadInput("--cache-dir %s: %v", o.cacheFile(), err)
		}
	}
	return nil
}

// TUFReader returns how this command fetches the trusted roots of the TUF
// repositories a policy names, when it verifies images (nil otherwise):
// through --registry-ca-file's CAs, keeping the verified metadata under
// --cache-dir/tuf, and with --offline only from there.
func (o *DigestOptions) TUFReader() rules.TUFReader {
	if !o.Verify {
		return nil
	}
	return func(url string, root []byte) ([]byte, error) {
		tr, err := webhook.RegistryTransport(o.CAFile)
		if err != nil {
			return nil, err
		}
		opts := webhook.TUFOptions{Transport: tr, Offline: o.Offline}
		if o.CacheDir != "" {
			opts.CacheDir = filepath.Join(o.CacheDir, "tuf")
		}
		return webhook.FetchTrustedRoot(url, root, opts)
	}
}

// Save writes what this run verified to --cache-dir (nothing without it,
// nor offline, which learns nothing). Written to a temporary file and
// renamed, so a concurrent run reads a whole file.
func (o *DigestOptions) Save() error {
	if o.CacheDir == "" || o.Offline || o.verifier == nil {
		return nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o700); err != nil {
		return fmt.Errorf("--cache-dir: %w", err)
	}
	tmp, err := os.CreateTemp(o.CacheDir, ".image-verdicts-*")
	if err != nil {
		return fmt.Errorf("--cache-dir: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := o.verifier.Save(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("--cache-dir: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--cache-dir: %w", err)
	}
	if err := os.Rename(tmp.Name(), o.cacheFile()); err != nil {
		return fmt.Errorf("--cache-dir: %w", err)
	}
	return nil
}

// Verdicts verifies obj's images as the validating webhook does, when
// asked to (--verify-images), and hands the verdicts of imageSignatures
// and imageVulnerabilities to attrs; without the flag nothing (offline:
// the rules note the images as not verified).
func (o *DigestOptions) Verdicts(ctx context.Context, enf *policies.Enforcer, obj runtime.Object, attrs *policies.Attributes) error {
	if !o.Verify {
		return nil
	}
	if err := o.init(); err != nil {
		return err
	}
	t, ok := podspec.Find(obj)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	webhook.VerifyImages(ctx, o.resolver, o.verifier, enf.Policy(), t, nil).Apply(attrs)
	return nil
}

// Facts returns the function that asks registries what the image rules
// need of a target, each within --resolve-timeout, for the audit's
// report.Input; nil without --verify-images.
func (o *DigestOptions) Facts(ctx context.Context) (func(*v1alpha1.Policy, *podspec.Target, *policies.Attributes), error) {
	if !o.Verify {
		return nil, nil
	}
	if err := o.init(); err != nil {
		return nil, err
	}
	return func(p *v1alpha1.Policy, t *podspec.Target, a *policies.Attributes) {
		ctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		ctx = o.PullSecrets.With(ctx, a.Namespace, t.Spec)
		webhook.VerifyImages(ctx, o.resolver, o.verifier, p, t, nil).Apply(a)
	}, nil
}

// Verifier is the verifier --verify-images uses, built on first use.
func (o *DigestOptions) Verifier() (*webhook.DigestResolver, *imageverify.Verifier, error) {
	if err := o.init(); err != nil {
		return nil, nil, err
	}
	return o.resolver, o.verifier, nil
}

// Digests returns the digests of obj's unpinned images when asked to and
// the policy's imageDigest fix is on; nil otherwise (nothing is pinned).
func (o *DigestOptions) Digests(ctx context.Context, enf *policies.Enforcer, obj runtime.Object) (map[string]string, error) {
	if !o.Resolve || !rules.FixInForce(enf.Policy(), "imageDigest") {
		return nil, nil
	}
	if err := o.init(); err != nil {
		return nil, err
	}
	t, ok := podspec.Find(obj)
	if !ok {
		return nil, nil
	}
	refs := webhook.UnpinnedImages(t, nil)
	if len(refs) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return o.resolver.Resolve(ctx, refs), nil
}
