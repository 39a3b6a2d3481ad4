package webhook

import (
	"bytes"
	"fmt"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
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
	_, err := AuthFiles(files).Resolve(name.MustParseReference("registry.invalid/x").Context())
	return err
}
