package imageverify

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

type keychainKey struct{}

type requestKeychain struct {
	kc authn.Keychain
	id string
}

// WithKeychain returns ctx carrying kc: the credentials of one request
// (the pod's own imagePullSecrets), presented to registries before the
// verifier's own Keychain. id names them (namespace and Secret names):
// lookups under other credentials are never shared with these.
func WithKeychain(ctx context.Context, kc authn.Keychain, id string) context.Context {
	if kc == nil {
		return ctx
	}
	return context.WithValue(ctx, keychainKey{}, requestKeychain{kc: kc, id: id})
}

// Keychain returns the credentials to present for a lookup under ctx:
// the request's (WithKeychain), then base (either may be nil; neither:
// anonymous).
func Keychain(ctx context.Context, base authn.Keychain) authn.Keychain {
	req, _ := ctx.Value(keychainKey{}).(requestKeychain)
	switch {
	case req.kc == nil && base == nil:
		return authn.NewMultiKeychain() // anonymous
	case req.kc == nil:
		return base
	case base == nil:
		return req.kc
	}
	return authn.NewMultiKeychain(req.kc, base)
}

// SharedKey is key for a lookup shared between concurrent requests: only
// requests presenting the same credentials share one.
func SharedKey(ctx context.Context, key string) string {
	if req, ok := ctx.Value(keychainKey{}).(requestKeychain); ok {
		return key + "|creds:" + req.id
	}
	return key
}

// isAuthError reports whether a registry refused the credentials
// presented (401, 403): an answer about those credentials, not an outage
// to remember for every request.
func isAuthError(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden)
}
