package cli

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook"
)

// DigestOptions let validate and mutate ask registries what digest each
// image tag resolves to, as the webhook does for imageDigest's fix, so
// the CLI pins (and then judges) exactly as the cluster will. Off by
// default: the CLI stays offline unless asked.
type DigestOptions struct {
	Resolve bool
	CAFile  string
	Timeout time.Duration

	resolver *webhook.DigestResolver
}

// AddFlags registers --resolve-digests, --registry-ca-file and
// --resolve-timeout.
func (o *DigestOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Resolve, "resolve-digests", false, "when the policy turns imageDigest's fix on, ask each image's registry (anonymously, over TLS) what digest its tag resolves to and pin it, as the webhook does; without it, tags are reported, not pinned")
	fs.StringVar(&o.CAFile, "registry-ca-file", "", "PEM bundle of CAs (besides the system's) registries' certificates may chain to, with --resolve-digests")
	fs.DurationVar(&o.Timeout, "resolve-timeout", 10*time.Second, "how long the registries of one object may take to answer, with --resolve-digests")
}

// Digests returns the digests of obj's unpinned images when asked to and
// the policy's imageDigest fix is on; nil otherwise (nothing is pinned).
func (o *DigestOptions) Digests(ctx context.Context, enf *policies.Enforcer, obj runtime.Object) (map[string]string, error) {
	if !o.Resolve || !rules.FixInForce(enf.Policy(), "imageDigest") {
		return nil, nil
	}
	if o.resolver == nil {
		r, err := webhook.NewDigestResolverFromCAFile(o.CAFile, logr.Discard())
		if err != nil {
			return nil, BadInput("%v", err)
		}
		o.resolver = r
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
