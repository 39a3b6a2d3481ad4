package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/defaults"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
)

// PolicyStore holds the Enforcer every request uses and swaps it atomically
// when the policy file changes. An invalid file is rejected with a log line
// and a metric; the last good policy keeps serving.
type PolicyStore struct {
	path, namespace string
	// trust reads what the image rules take from ConfigMaps and Secrets;
	// sourced says the current policy reads any (then each periodic check
	// reads them again: a rotated key is picked up within poll).
	trust    rules.TrustReader
	trustDir string
	sourced  bool
	// tuf fetches the trusted roots of TUF repositories (nil: none is).
	tuf rules.TUFReader
	// watch are the directories of the trust sources the policy reads,
	// for Start to watch: the kubelet updates a mounted ConfigMap there.
	watch   atomic.Pointer[[]string]
	fileSum [sha256.Size]byte
	log     logr.Logger
	metrics *Metrics
	poll    time.Duration

	current atomic.Pointer[policies.Enforcer]
	sum     [sha256.Size]byte

	// mu guards the policy and the exceptions the current Enforcer was
	// built from: either changes, the Enforcer is rebuilt from both.
	mu         sync.Mutex
	policy     *v1alpha1.Policy
	exceptions []v1alpha1.PodGuardException
	logged     map[string]string
}

// NewPolicyStore loads the policy file (the default policy when path is
// empty) and fails if it is invalid: a server must not start without a
// policy. What its image rules take from ConfigMaps and Secrets is read
// from trustDir (see TrustDir); trust material missing or unusable there
// is logged, and only the images it was to vouch for are denied. Trusted
// roots of TUF repositories are read with tuf (TUFRoots: refreshed on its
// own schedule); nil reads none.
func NewPolicyStore(path, namespace, trustDir string, log logr.Logger, m *Metrics, tuf rules.TUFReader) (*PolicyStore, error) {
	s := &PolicyStore{path: path, namespace: namespace, trust: TrustDir(trustDir), trustDir: trustDir, tuf: tuf, log: log, metrics: m, poll: 10 * time.Second}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Enforcer returns the current policy's engine.
func (s *PolicyStore) Enforcer() *policies.Enforcer { return s.current.Load() }

// Ready reports whether a policy is loaded (always, once constructed).
func (s *PolicyStore) Ready() bool { return s.current.Load() != nil }

// reload reads the file and swaps the policy in if it changed and is valid.
func (s *PolicyStore) reload() error {
	source, data := s.path, []byte(nil)
	var err error
	if s.path == "" {
		// The built-in default is the documented default policy file.
		source, data = "built-in default", defaults.PolicyYAML(s.namespace)
	} else if data, err = load.ReadFile(s.path); err != nil {
		s.metrics.PolicyReloads.WithLabelValues("failure").Inc()
		return err
	}
	fileSum := sha256.Sum256(data)
	if s.current.Load() != nil && !s.sourced && fileSum == s.fileSum {
		return nil
	}
	p, err := load.Bytes(data, source, s.namespace)
	var problems field.ErrorList
	sum := fileSum
	// sourced: the policy reads trust material from outside its file,
	// which can change while the file does not.
	sourced := false
	if err == nil {
		var trustSum string
		trustSum, problems = rules.ResolveTrust(p, s.trust, s.tuf)
		srcs := rules.TrustSources(p)
		if sourced = len(srcs) > 0 || rules.UsesTUF(p); sourced {
			sum = sha256.Sum256(append(fileSum[:], trustSum...))
		}
		if len(srcs) > 0 {
			dirs := make([]string, len(srcs))
			for i, src := range srcs {
				kind, name, _ := strings.Cut(src, "/")
				dirs[i] = filepath.Join(s.trustDir, kind+"s", name)
			}
			s.watch.Store(&dirs)
		}
		if s.current.Load() != nil && bytes.Equal(sum[:], s.sum[:]) {
			return nil
		}
	}
	if err == nil {
		s.mu.Lock()
		_, err = s.build(p, s.exceptions)
		if err == nil {
			s.policy = p
		}
		s.mu.Unlock()
		if err == nil {
			s.sum, s.fileSum, s.sourced = sum, fileSum, sourced
			s.metrics.PolicyReloads.WithLabelValues("success").Inc()
			s.metrics.PolicyInfo.Reset()
			s.metrics.PolicyInfo.WithLabelValues(string(p.Mode), shortSum(sum)).Set(1)
			s.log.Info("policy loaded", "source", source, "sha256", shortSum(sum), "mode", p.Mode, "exemptions", len(p.Exemptions))
			broad, _ := rules.ExemptionBreadth(p)
			for _, w := range append(rules.PSSWeakenings(p), broad...) {
				s.log.Info("warning: the policy gives up a Pod Security Standards control", "setting", w.Field, "control", w.Control, "detail", w.Detail)
			}
			s.metrics.TrustProblems.Set(float64(len(problems)))
			for _, pr := range problems {
				s.log.Error(errors.New(pr.Detail), "trust material unusable: images that need this authority are denied", "field", pr.Field)
			}
			return nil
		}
	}
	s.metrics.PolicyReloads.WithLabelValues("failure").Inc()
	return err
}

// SetExceptions rebuilds the Enforcer with the cluster's PodGuardExceptions.
func (s *PolicyStore) SetExceptions(xs []v1alpha1.PodGuardException) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.build(s.policy, xs); err != nil {
		// The policy was valid a moment ago: only a podguard bug gets here.
		s.log.Error(err, "cannot apply the PodGuardExceptions; the last Enforcer keeps serving")
		return
	}
	s.exceptions = xs
}

// build makes and stores the Enforcer of a policy and exceptions, and
// publishes what became of each exception; s.mu is held.
func (s *PolicyStore) build(p *v1alpha1.Policy, xs []v1alpha1.PodGuardException) (*policies.Enforcer, error) {
	e, states, err := policies.NewWithExceptions(p, xs, time.Now())
	if err != nil {
		return nil, err
	}
	s.current.Store(e)
	s.metrics.setExpiries(p, states)
	// Log what changed, not every rebuild.
	seen := make(map[string]string, len(states))
	for _, st := range states {
		key := st.Namespace + "/" + st.Name
		seen[key] = st.State + st.Problem
		if s.logged[key] == seen[key] {
			continue
		}
		if st.State == policies.ExceptionIgnored {
			s.log.Info("a PodGuardException is ignored: the policy does not allow it", "namespace", st.Namespace, "name", st.Name, "problem", st.Problem)
		} else {
			s.log.Info("PodGuardException", "namespace", st.Namespace, "name", st.Name, "state", st.State, "rules", st.Rules, "expires", st.Expires)
		}
	}
	s.logged = seen
	return e, nil
}

func shortSum(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:6]) }

// Start watches the policy file until ctx ends. A ConfigMap volume changes
// by swapping a symlink in the file's directory, so the directory is
// watched, and a periodic check covers events a watcher can miss.
func (s *PolicyStore) Start(ctx context.Context) error {
	if s.path == "" {
		<-ctx.Done()
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(s.path)); err != nil {
		s.log.Error(err, "cannot watch the policy directory; falling back to polling", "dir", filepath.Dir(s.path))
	}
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	watched := map[string]bool{}
	watchTrust := func() {
		if dirs := s.watch.Load(); dirs != nil {
			for _, d := range *dirs {
				// A directory that is not there yet is read on each periodic check.
				if !watched[d] && w.Add(d) == nil {
					watched[d] = true
				}
			}
		}
	}
	watchTrust()
	check := func(why string) {
		if err := s.reload(); err != nil {
			s.log.Error(err, "policy rejected; the last good policy keeps serving", "source", s.path, "trigger", why)
		}
		watchTrust()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Events:
			// Let a burst of events (write, chmod, symlink swap) settle.
			time.Sleep(100 * time.Millisecond)
			for len(w.Events) > 0 {
				<-w.Events
			}
			check("file event")
		case err := <-w.Errors:
			s.log.Error(err, "policy watch error")
		case <-tick.C:
			check("periodic check")
		}
	}
}

// NeedLeaderElection: every replica serves, so every replica reloads.
func (s *PolicyStore) NeedLeaderElection() bool { return false }
