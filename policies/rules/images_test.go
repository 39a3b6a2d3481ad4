package rules_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/rules"
)

func publicKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

const trustPolicy = `apiVersion: podguard.dev/v1alpha1
kind: Policy
rules:
  imageSignatures:
    trust:
    - images: ["registry.example/team/*"]
      authorities:
      - name: release
        key:
          pemFrom: {configMapKeyRef: {name: cosign-keys, key: release.pub}}
      - name: ci
        keyless:
          issuer: https://issuer.example
          subject: ci@example.com
          trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}
  imageVulnerabilities:
    scans:
    - images: ["registry.example/team/*"]
      authorities:
      - name: scanner
        key:
          pemFrom: {configMapKeyRef: {name: cosign-keys, key: scanner.pub}}
`

// TestTrustSourceValidation: pem and pemFrom (trustedRoot and
// trustedRootFrom) exclude each other, a source names one object by a
// valid name and key, and each problem names its field.
func TestTrustSourceValidation(t *testing.T) {
	if _, err := load.Bytes([]byte(trustPolicy), "policy.yaml", "podguard"); err != nil {
		t.Fatalf("a valid policy with trust sources: %v", err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"pemFrom: {configMapKeyRef: {name: cosign-keys, key: release.pub}}", "pem: x\n          pemFrom: {configMapKeyRef: {name: cosign-keys, key: release.pub}}", "authorities[0].key: Required value: set exactly one of pem or pemFrom"},
		{"{configMapKeyRef: {name: cosign-keys, key: release.pub}}", "{configMapKeyRef: {name: a, key: b}, secretKeyRef: {name: a, key: b}}", "key.pemFrom: Required value: set exactly one of configMapKeyRef or secretKeyRef"},
		{"{configMapKeyRef: {name: cosign-keys, key: release.pub}}", "{}", "key.pemFrom: Required value"},
		{"name: cosign-keys, key: release.pub", "name: ../etc, key: release.pub", "pemFrom.configMapKeyRef.name: Invalid value: \"../etc\""},
		{"name: cosign-keys, key: release.pub", "name: cosign-keys, key: ../release.pub", "pemFrom.configMapKeyRef.key: Invalid value: \"../release.pub\""},
		{"trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}", "subjectRegExp: x", "keyless.trustedRoot: Required value: set exactly one of trustedRoot, trustedRootFrom or tuf"},
		{"trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}", "trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}\n          tuf: {url: https://tuf.example, root: x}", "set exactly one of trustedRoot, trustedRootFrom or tuf"},
		{"trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}", "tuf: {url: http://tuf.example, rootFrom: {configMapKeyRef: {name: tuf, key: root.json}}}", "keyless.tuf.url: Invalid value: \"http://tuf.example\""},
		{"trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}", "tuf: {url: https://tuf.example}", "keyless.tuf.root: Required value: set exactly one of root or rootFrom"},
		{"trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}", "tuf: {url: https://tuf.example, root: '{\"signed\": {\"_type\": \"targets\"}}'}", "keyless.tuf.root: Invalid value: \"(JSON)\": a TUF root.json"},
		{"trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}", "tuf: {url: https://tuf.example, rootFrom: {configMapKeyRef: {name: ../tuf, key: root.json}}}", "keyless.tuf.rootFrom.configMapKeyRef.name: Invalid value"},
	} {
		_, err := load.Bytes([]byte(strings.Replace(trustPolicy, tc.from, tc.to, 1)), "policy.yaml", "podguard")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", tc.to, tc.want, err)
		}
	}
}

// TestResolveTrust: what is read reaches the verifier's Material, each
// unusable source is a problem naming its field and object (and nothing
// else fails), the digest changes with the material, and without a
// reader the material says it was never read.
func TestResolveTrust(t *testing.T) {
	key := publicKeyPEM(t)
	store := map[string]string{
		"ConfigMap/cosign-keys/release.pub":      key,
		"ConfigMap/cosign-keys/scanner.pub":      "not a key",
		"Secret/sigstore-root/trusted_root.json": `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`,
	}
	read := func(kind, name, key string) ([]byte, error) {
		v, ok := store[kind+"/"+name+"/"+key]
		if !ok {
			return nil, errors.New("missing")
		}
		return []byte(v), nil
	}
	p, err := load.Bytes([]byte(trustPolicy), "policy.yaml", "podguard")
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := rules.ImageSignatures(p)
	if _, err := sig.Trust[0].Authorities[0].Material(); err == nil || !strings.Contains(err.Error(), "--trust-dir") {
		t.Errorf("material never read: want an error saying so, got %v", err)
	}
	if got := rules.TrustSources(p); strings.Join(got, ",") != "configmap/cosign-keys,secret/sigstore-root" {
		t.Errorf("TrustSources = %v", got)
	}

	sum1, problems := rules.ResolveTrust(p, read, nil)
	if len(problems) != 1 || problems[0].Field != "rules.imageVulnerabilities.scans[0].authorities[0].key.pemFrom" ||
		!strings.Contains(problems[0].Error(), `ConfigMap "cosign-keys" key "scanner.pub"`) {
		t.Fatalf("problems = %v, want the malformed scanner key alone", problems)
	}
	if m, err := sig.Trust[0].Authorities[0].Material(); err != nil || m != key {
		t.Errorf("the key read: %q, %v", m, err)
	}
	if m, err := sig.Trust[0].Authorities[1].Material(); err != nil || !strings.Contains(m, "trustedroot") {
		t.Errorf("the trusted root read: %q, %v", m, err)
	}

	store["ConfigMap/cosign-keys/release.pub"] = publicKeyPEM(t)
	delete(store, "Secret/sigstore-root/trusted_root.json")
	sum2, problems := rules.ResolveTrust(p, read, nil)
	if sum2 == sum1 {
		t.Error("a rotated key leaves the digest unchanged: podguard would not reload")
	}
	if len(problems) != 2 {
		t.Errorf("problems = %v, want the missing root and the malformed key", problems)
	}
	if _, err := sig.Trust[0].Authorities[1].Material(); err == nil || !strings.Contains(err.Error(), `Secret "sigstore-root" key "trusted_root.json": missing`) {
		t.Errorf("a missing root: %v", err)
	}
}

// TestResolveTrustFromTUF: an authority's trusted root from a TUF
// repository is fetched with the caller's reader, from the root given (or
// read from its source); a repository that cannot be read is a problem
// naming its field; without a reader the authority says it was not
// fetched; the digest changes when the repository's trusted root does.
func TestResolveTrustFromTUF(t *testing.T) {
	const tufRoot = `{"signed": {"_type": "root"}, "signatures": []}`
	policy := strings.Replace(trustPolicy, "trustedRootFrom: {secretKeyRef: {name: sigstore-root, key: trusted_root.json}}",
		"tuf: {url: https://tuf.example/repo, rootFrom: {configMapKeyRef: {name: sigstore-tuf, key: root.json}}}", 1)
	p, err := load.Bytes([]byte(policy), "policy.yaml", "podguard")
	if err != nil {
		t.Fatal(err)
	}
	if !rules.UsesTUF(p) || strings.Join(rules.TrustSources(p), ",") != "configmap/cosign-keys,configmap/sigstore-tuf" {
		t.Fatalf("UsesTUF %v, TrustSources %v", rules.UsesTUF(p), rules.TrustSources(p))
	}
	sig, _ := rules.ImageSignatures(p)
	ci := sig.Trust[0].Authorities[1]
	if _, err := ci.Material(); err == nil || !strings.Contains(err.Error(), "not fetched") {
		t.Errorf("never fetched: want an error saying so, got %v", err)
	}
	keyPEM := publicKeyPEM(t)
	read := func(kind, name, key string) ([]byte, error) {
		switch kind + "/" + name + "/" + key {
		case "ConfigMap/sigstore-tuf/root.json":
			return []byte(tufRoot), nil
		case "ConfigMap/cosign-keys/release.pub", "ConfigMap/cosign-keys/scanner.pub":
			return []byte(keyPEM), nil
		}
		return nil, fmt.Errorf("no %s %s", kind, name)
	}
	served := `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`
	var asked []string
	tuf := func(url string, root []byte) ([]byte, error) {
		asked = append(asked, url+" "+string(root))
		if served == "" {
			return nil, fmt.Errorf("connection refused")
		}
		return []byte(served), nil
	}
	sum1, problems := rules.ResolveTrust(p, read, tuf)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(asked) != 1 || asked[0] != "https://tuf.example/repo "+tufRoot {
		t.Errorf("asked %q, want the repository with the root read from its ConfigMap", asked)
	}
	if m, err := ci.Material(); err != nil || m != served {
		t.Errorf("material %q, %v; want the trusted root served", m, err)
	}
	served = `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": []}`
	if sum2, _ := rules.ResolveTrust(p, read, tuf); sum2 == sum1 {
		t.Errorf("the digest did not change with the repository's trusted root")
	}
	served = ""
	_, problems = rules.ResolveTrust(p, read, tuf)
	if len(problems) != 1 || problems[0].Field != "rules.imageSignatures.trust[0].authorities[1].keyless.tuf" || !strings.Contains(problems[0].Error(), "connection refused") {
		t.Errorf("an unreachable repository: problems %v", problems)
	}
	if _, err := ci.Material(); err == nil || !strings.Contains(err.Error(), "TUF repository https://tuf.example/repo: connection refused") {
		t.Errorf("an unreachable repository: material error %v", err)
	}
}
