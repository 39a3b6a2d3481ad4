package webhook_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook"
	"podguard.dev/podguard/webhook/imageverify"
)

// TestRegistryAuthFiles: a registry that demands credentials resolves
// tags and yields signatures only with a Docker config file naming them;
// anonymously it refuses, and the verdict says unreachable; a file that
// names a credential helper runs nothing and is not used.
func TestRegistryAuthFiles(t *testing.T) {
	reg := testenv.StartRegistry(t)
	key := sigtest.NewSigner(t)
	d := reg.PushRandom(t, "team/app:1")
	sigtest.SignLegacy(t, reg, key, "team/app", d, sigtest.SimpleSigningPayload(reg.Host+"/team/app", d))
	reg.RequireBasicAuth("ci", "s3cret")

	dir := t.TempDir()
	good := filepath.Join(dir, "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	if err := os.WriteFile(good, []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper.json")
	if err := os.WriteFile(helper, []byte(`{"credsStore":"podguard-test-never-run","credHelpers":{"`+reg.Host+`":"podguard-test-never-run"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := webhook.RegistryTransport(reg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ps := &rules.ImageSignaturesParams{Trust: []rules.ImageTrust{{Images: []string{"*"},
		Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: key.PEM}}}}}}
	ps.Default()
	tag := reg.Host + "/team/app:1"
	check := func(what string, files []string, want imagetrust.Status) {
		t.Helper()
		r, v := webhook.NewDigestResolver(tr, logr.Discard()), imageverify.New(tr, logr.Discard())
		if files != nil {
			r.Keychain, v.Keychain = webhook.AuthFiles(files), webhook.AuthFiles(files)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		digests := r.Resolve(ctx, []string{tag})
		got := v.Verify(ctx, ps, []string{tag}, digests)[imagetrust.Key{Ref: tag}]
		if got.Status != want {
			t.Errorf("%s: %+v, want %s", what, got, want)
		}
		if want == imagetrust.Verified && digests[tag] != d.String() {
			t.Errorf("%s: resolved %q, want %s", what, digests[tag], d)
		}
	}
	check("anonymous", nil, imagetrust.Unreachable)
	check("with the auth file", []string{good}, imagetrust.Verified)
	check("a file naming only credential helpers, then the good one", []string{helper, good}, imagetrust.Verified)
	check("a file naming only credential helpers", []string{helper}, imagetrust.Unreachable)

	if err := webhook.CheckAuthFiles([]string{filepath.Join(dir, "missing.json")}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("a missing auth file: %v", err)
	}
}
