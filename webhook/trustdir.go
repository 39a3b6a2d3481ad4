package webhook

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"podguard.dev/podguard/policies/rules"
)

// DefaultTrustDir is where the chart mounts the ConfigMaps and Secrets the
// policy's image rules read: configmaps/NAME/KEY and secrets/NAME/KEY.
const DefaultTrustDir = "/etc/podguard-trust"

// maxTrustFile bounds one key's material: a ConfigMap holds at most 1 MiB.
const maxTrustFile = 1 << 20

// TrustDir reads trust material from dir, laid out as the chart mounts it
// (configmaps/NAME/KEY, secrets/NAME/KEY; the CLI's --trust-dir takes the
// same layout). Names and keys were validated as object names and data
// keys, so they cannot leave dir.
func TrustDir(dir string) rules.TrustReader {
	return func(kind, name, key string) ([]byte, error) {
		sub := map[string]string{rules.KindConfigMap: "configmaps", rules.KindSecret: "secrets"}[kind]
		if sub == "" {
			return nil, fmt.Errorf("unknown kind %q", kind)
		}
		path := filepath.Join(dir, sub, name, key)
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			if _, derr := os.Stat(filepath.Join(dir, sub, name)); derr != nil {
				return nil, fmt.Errorf("not found in %s: create the %s in podguard's namespace (the chart mounts each one its policy names; the CLI reads %s)", dir, kind, filepath.Join(sub, name, key))
			}
			return nil, fmt.Errorf("no such key (or the %s does not exist: the chart mounts it as optional)", kind)
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxTrustFile+1))
		if err != nil {
			return nil, err
		}
		if len(data) > maxTrustFile {
			return nil, fmt.Errorf("larger than %d bytes", maxTrustFile)
		}
		return data, nil
	}
}
