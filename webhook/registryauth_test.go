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
	sigtest.Sign(t, reg, key, "team/app", d)
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

// TestRegistryFilesMountedLater: serve's registry files may be a Secret
// and a ConfigMap mounted as optional that do not exist yet. Until they
// appear, the registry with the private CA and credentials is
// unreachable (never an error at start, never a crash loop); once the
// kubelet writes them, the next lookups use them, without a restart; a
// malformed CA update keeps the last good one.
func TestRegistryFilesMountedLater(t *testing.T) {
	reg := testenv.StartRegistry(t)
	key := sigtest.NewSigner(t)
	d := reg.PushRandom(t, "team/app:1")
	sigtest.Sign(t, reg, key, "team/app", d)
	reg.RequireBasicAuth("ci", "s3cret")

	dir := t.TempDir()
	caFile, authFile := filepath.Join(dir, "ca", "ca.crt"), filepath.Join(dir, "auth", ".dockerconfigjson")
	tr, err := webhook.ReloadingRegistryTransport(caFile, logr.Discard())
	if err != nil {
		t.Fatalf("a CA file not there yet must not stop serve: %v", err)
	}
	ps := &rules.ImageSignaturesParams{Trust: []rules.ImageTrust{{Images: []string{"*"},
		Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: key.PEM}}}}}}
	ps.Default()
	ref := reg.Host + "/team/app@" + d.String()
	status := func() imagetrust.Status {
		v := imageverify.New(tr, logr.Discard())
		v.Keychain = webhook.AuthFiles([]string{authFile})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return v.Verify(ctx, ps, []string{ref}, nil)[imagetrust.Key{Ref: ref}].Status
	}
	if got := status(); got != imagetrust.Unreachable {
		t.Errorf("before the files exist: %s, want unreachable", got)
	}
	ca, err := os.ReadFile(reg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string]string{caFile: string(ca), authFile: `{"auths":{"` + reg.Host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("ci:s3cret")) + `"}}}`} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, path, data)
	}
	eventually(t, 5*time.Second, "the CA and credentials, once written, are used", func() (bool, string) {
		got := status()
		return got == imagetrust.Verified, string(got)
	})
	write(t, caFile, "not a certificate")
	time.Sleep(1100 * time.Millisecond) // past the interval between looks at the file
	if got := status(); got != imagetrust.Verified {
		t.Errorf("after a malformed CA update: %s, want the last good CA kept", got)
	}
}
