package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// AuthFiles is a keychain of Docker config files (config.json, or a
// kubernetes.io/dockerconfigjson Secret's .dockerconfigjson, mounted):
// the credentials podguard presents to registries when it resolves tags
// and reads signatures. Files are read on each lookup, so a rotated Secret
// applies without a restart; only their "auths" entries are used, never a
// credential helper (a mounted file must not make podguard run a program).
// A registry no file names is asked anonymously.
type AuthFiles []string

var _ authn.Keychain = AuthFiles(nil)

// Resolve implements authn.Keychain.
func (f AuthFiles) Resolve(target authn.Resource) (authn.Authenticator, error) {
	key := target.RegistryStr()
	if key == name.DefaultRegistry {
		key = authn.DefaultAuthKey
	}
	for _, path := range f {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			// A Secret mounted as optional that does not exist yet: it
			// applies once the kubelet writes it.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("registry auth file: %w", err)
		}
		cf, err := config.LoadFromReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("registry auth file %s: %w", path, err)
		}
		for _, k := range []string{key, "https://" + key, "http://" + key} {
			if a, ok := cf.AuthConfigs[k]; ok && (a.Username != "" || a.IdentityToken != "" || a.RegistryToken != "") {
				return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password,
					IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}), nil
			}
		}
	}
	return authn.Anonymous, nil
}

// CheckAuthFiles reads each file once, so a missing or malformed one is
// an error at start, not at the first admission.
func CheckAuthFiles(files []string) error {
	missing, err := checkAuthFiles(files)
	if err == nil && len(missing) > 0 {
		err = fmt.Errorf("registry auth file %s: %w", missing[0], fs.ErrNotExist)
	}
	return err
}

// checkAuthFiles returns the files not there and the first problem of
// one that is.
func checkAuthFiles(files []string) (missing []string, err error) {
	for _, f := range files {
		if _, serr := os.Stat(f); errors.Is(serr, fs.ErrNotExist) {
			missing = append(missing, f)
		}
	}
	_, err = AuthFiles(files).Resolve(name.MustParseReference("registry.invalid/x").Context())
	return missing, err
}

// caCheckInterval is how often a server looks at its registry CA file.
const caCheckInterval = time.Second

// reloadingTransport is the registry transport of a server whose CA
// bundle is a mounted ConfigMap: the file is looked at again at most once
// a second and a changed one is read (the kubelet updates the volume in
// place); while it is not there (mounted as optional, not created yet),
// the system's roots alone are trusted. A malformed update keeps the last
// good bundle.
type reloadingTransport struct {
	file string
	log  logr.Logger

	mu      sync.Mutex
	checked time.Time
	stamp   string
	rt      http.RoundTripper
}

// ReloadingRegistryTransport returns serve's registry transport for
// caFile (see reloadingTransport); "" is the system's roots. A file there
// but malformed is an error at start, as the CLI's --registry-ca-file is.
func ReloadingRegistryTransport(caFile string, log logr.Logger) (http.RoundTripper, error) {
	if caFile == "" {
		return remote.DefaultTransport, nil
	}
	if _, err := os.Stat(caFile); err == nil {
		if _, err := RegistryTransport(caFile); err != nil {
			return nil, err
		}
	} else {
		log.Info("warning: the registry CA file is not there (yet); registries are checked against the system's roots until it appears", "file", caFile)
	}
	return &reloadingTransport{file: caFile, log: log}, nil
}

// RoundTrip implements http.RoundTripper.
func (t *reloadingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.current().RoundTrip(req)
}

func (t *reloadingTransport) current() http.RoundTripper {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.rt != nil && now.Sub(t.checked) < caCheckInterval {
		return t.rt
	}
	t.checked = now
	stamp := ""
	if fi, err := os.Stat(t.file); err == nil {
		stamp = fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
	}
	if t.rt != nil && stamp == t.stamp {
		return t.rt
	}
	next := remote.DefaultTransport
	if stamp != "" {
		rt, err := RegistryTransport(t.file)
		if err != nil {
			t.log.Error(err, "registry CA file not usable; the last good one stays", "file", t.file)
			t.stamp = stamp
			if t.rt == nil {
				t.rt = remote.DefaultTransport
			}
			return t.rt
		}
		next = rt
		t.log.Info("registry CA file read", "file", t.file)
	}
	if old, ok := t.rt.(*http.Transport); ok && old != remote.DefaultTransport {
		old.CloseIdleConnections()
	}
	t.rt, t.stamp = next, stamp
	return t.rt
}
