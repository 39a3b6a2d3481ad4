package webhook

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/tuftest"
	"podguard.dev/podguard/policies/rules"
)

// TestFetchTrustedRoot: the trusted root comes from a TUF repository over
// TLS, verified from the root of trust given: a repository signed by
// other keys, and a target changed on the server after it was signed,
// are refused; offline, only what a cache directory holds is read.
func TestFetchTrustedRoot(t *testing.T) {
	repo := tuftest.Start(t, []byte(`{"v": 1}`))
	tr, err := RegistryTransport(repo.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FetchTrustedRoot(repo.URL, repo.Root, TUFOptions{Transport: tr})
	if err != nil || string(got) != `{"v": 1}` {
		t.Fatalf("fetched %q, %v", got, err)
	}
	if _, err := FetchTrustedRoot(repo.URL, repo.Root, TUFOptions{Transport: http.DefaultTransport}); err == nil {
		t.Errorf("a server whose certificate the transport does not trust: fetched")
	}
	other := tuftest.Start(t, []byte(`{"v": "other"}`))
	if got, err := FetchTrustedRoot(other.URL, repo.Root, TUFOptions{Transport: tr}); err == nil {
		t.Errorf("a repository signed by other keys: fetched %q", got)
	}

	cache := t.TempDir()
	if _, err := FetchTrustedRoot(repo.URL, repo.Root, TUFOptions{Transport: tr, CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	asked := repo.Requests()
	got, err = FetchTrustedRoot(repo.URL, repo.Root, TUFOptions{CacheDir: cache, Offline: true})
	if err != nil || string(got) != `{"v": 1}` || repo.Requests() != asked {
		t.Errorf("offline from the cache: %q, %v, %d requests", got, err, repo.Requests()-asked)
	}
	if _, err := FetchTrustedRoot(repo.URL, repo.Root, TUFOptions{CacheDir: t.TempDir(), Offline: true}); err == nil {
		t.Errorf("offline with an empty cache: fetched")
	}

	repo.Tamper([]byte(`{"v": "tampered"}`))
	if got, err := FetchTrustedRoot(repo.URL, repo.Root, TUFOptions{Transport: tr}); err == nil {
		t.Errorf("a target changed after signing: fetched %q", got)
	}
}

// TestTUFRoots: the webhook reads a repository once per refresh period,
// follows a rotated trusted root, keeps serving the last one while the
// repository is down (asking again at most once per retry period), and
// stops vouching once it is older than the maximum.
func TestTUFRoots(t *testing.T) {
	repo := tuftest.Start(t, []byte(`{"v": 1}`))
	tr, err := RegistryTransport(repo.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	roots := NewTUFRoots(tr, logr.Discard())
	roots.now = func() time.Time { return now }
	read := func(want string) {
		t.Helper()
		got, err := roots.Read(repo.URL, repo.Root)
		if want == "" {
			if err == nil {
				t.Errorf("read %q, want an error", got)
			}
			return
		}
		if err != nil || string(got) != want {
			t.Errorf("read %q, %v; want %q", got, err, want)
		}
	}
	read(`{"v": 1}`)
	asked := repo.Requests()
	now = now.Add(tufRefresh / 2)
	read(`{"v": 1}`)
	if repo.Requests() != asked {
		t.Errorf("asked the repository again within the refresh period")
	}
	repo.SetTarget(t, []byte(`{"v": 2}`))
	now = now.Add(tufRefresh)
	read(`{"v": 2}`)

	repo.SetDown(true)
	now = now.Add(tufRefresh)
	read(`{"v": 2}`) // the last one, while the repository is down
	asked = repo.Requests()
	now = now.Add(tufRetry / 2)
	read(`{"v": 2}`)
	if repo.Requests() != asked {
		t.Errorf("asked a failing repository again within the retry period")
	}
	now = now.Add(tufMaxStale)
	if _, err := roots.Read(repo.URL, repo.Root); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("past the maximum age: %v", err)
	}
	repo.SetDown(false)
	now = now.Add(tufRetry)
	read(`{"v": 2}`)
}

// TestPolicyStoreFollowsTUF: the policy store resolves a keyless
// authority's trusted root from its TUF repository, and its periodic
// check picks up the repository's rotation once the refresh period has
// passed (a new Enforcer, whose material the verifier's cache keys hold);
// a repository that was never read leaves the policy in force and its
// authority unable to vouch (podguard_trust_source_problems).
func TestPolicyStoreFollowsTUF(t *testing.T) {
	const rootV1 = `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "v": 1}`
	const rootV2 = `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "v": 2}`
	repo := tuftest.Start(t, []byte(rootV1))
	tr, err := RegistryTransport(repo.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	ps := rules.ImageSignaturesParams{Trust: []rules.ImageTrust{{Images: []string{"registry.example/*"},
		Authorities: []rules.Authority{{Name: "ci", Keyless: &rules.KeylessAuthority{Issuer: "https://issuer.example", Subject: "ci@example.com",
			TUF: &rules.TUFSource{URL: repo.URL, Root: string(repo.Root)}}}}}}}
	if err := os.WriteFile(policy, []byte(testenv.ImageSignaturesPolicy(t, ps)), 0o600); err != nil {
		t.Fatal(err)
	}
	material := func(s *PolicyStore) (string, error) {
		sig, _ := rules.ImageSignatures(s.Enforcer().Policy())
		return sig.Trust[0].Authorities[0].Material()
	}
	now := time.Now()
	roots := NewTUFRoots(tr, logr.Discard())
	roots.now = func() time.Time { return now }
	m := NewMetrics(prometheus.NewRegistry())
	s, err := NewPolicyStore(policy, "podguard", "", logr.Discard(), m, roots.Read)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := material(s); err != nil || got != rootV1 {
		t.Fatalf("material %q, %v", got, err)
	}
	first := s.Enforcer()
	repo.SetTarget(t, []byte(rootV2))
	if err := s.reload(); err != nil || s.Enforcer() != first {
		t.Errorf("within the refresh period: %v, enforcer changed %v", err, s.Enforcer() != first)
	}
	now = now.Add(tufRefresh)
	if err := s.reload(); err != nil {
		t.Fatal(err)
	}
	if got, err := material(s); err != nil || got != rootV2 || s.Enforcer() == first {
		t.Errorf("after the refresh period: material %q, %v", got, err)
	}

	down := tuftest.Start(t, []byte(rootV1))
	down.SetDown(true)
	ps.Trust[0].Authorities[0].Keyless.TUF = &rules.TUFSource{URL: down.URL, Root: string(down.Root)}
	if err := os.WriteFile(policy, []byte(testenv.ImageSignaturesPolicy(t, ps)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.reload(); err != nil {
		t.Fatalf("a repository that cannot be read must not refuse the policy: %v", err)
	}
	if _, err := material(s); err == nil || !strings.Contains(err.Error(), "TUF repository "+down.URL) {
		t.Errorf("an unread repository: material error %v", err)
	}
	if v := testutil.ToFloat64(m.TrustProblems); v != 1 {
		t.Errorf("podguard_trust_source_problems = %v, want 1", v)
	}
}
