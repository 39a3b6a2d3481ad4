package imageverify

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"time"

	"podguard.dev/podguard/policies/imagetrust"
)

// savedVersion marks the layout of Save's output.
const savedVersion = 1

// saved is what Save writes: the last good verdict of each key (its
// repository, digest and trust entry, the entry's trust material
// included, so a changed policy or key matches nothing) and the image
// configs read.
type saved struct {
	Version  int                               `json:"version"`
	Verdicts map[string]imagetrust.Verdict     `json:"verdicts"`
	Configs  map[string]imagetrust.ImageConfig `json:"configs,omitempty"`
	// Users are the image users an earlier podguard kept, before the
	// configs' ports and volumes were read: read, never written.
	Users map[string]string `json:"users,omitempty"`
}

// Save writes the verifier's verified digests and image configs, for Load
// in a later run (the CLI's --cache-dir). Only Verified verdicts are kept:
// a later run must verify anything else again.
func (v *Verifier) Save(w io.Writer) error {
	out := saved{Version: savedVersion, Verdicts: map[string]imagetrust.Verdict{}}
	v.mu.Lock()
	for k, e := range v.cache {
		if e.lastGood != nil {
			out.Verdicts[k] = *e.lastGood
		}
	}
	v.mu.Unlock()
	v.configs.mu.Lock()
	out.Configs = maps.Clone(v.configs.m)
	v.configs.mu.Unlock()
	return json.NewEncoder(w).Encode(out)
}

// Load reads what Save wrote. Each verdict counts as of when it was
// verified, under the policy's durations as any cached one does: fresh
// within verdictTTL, and within staleIfError the fallback when a registry
// cannot be reached (or, with --offline, is never asked). What is loaded
// is trusted like the verifier's own memory: it must come from a file
// only its user writes.
func (v *Verifier) Load(r io.Reader) error {
	var in saved
	if err := json.NewDecoder(io.LimitReader(r, 64<<20)).Decode(&in); err != nil {
		return fmt.Errorf("reading the verdict cache: %w", err)
	}
	if in.Version != savedVersion {
		return fmt.Errorf("the verdict cache has version %d; this podguard reads %d (delete it)", in.Version, savedVersion)
	}
	now := v.Now()
	v.mu.Lock()
	for k, verdict := range in.Verdicts {
		if len(v.cache) >= maxEntries {
			break
		}
		if verdict.Status != imagetrust.Verified || verdict.VerifiedAt.IsZero() || verdict.VerifiedAt.After(now.Add(time.Minute)) {
			continue // only what was verified, and not in the future
		}
		good := verdict
		v.cache[k] = &entry{verdict: verdict, checked: verdict.VerifiedAt, lastGood: &good}
	}
	v.mu.Unlock()
	v.configs.mu.Lock()
	if v.configs.m == nil {
		v.configs.m = map[string]imagetrust.ImageConfig{}
	}
	// The users of an older file, as configs declaring no ports or
	// volumes: what they say is all that is known offline.
	for k, u := range in.Users {
		if _, ok := in.Configs[k]; !ok && len(v.configs.m) < maxConfigs {
			v.configs.m[k] = imagetrust.ImageConfig{User: u}
		}
	}
	for k, c := range in.Configs {
		if len(v.configs.m) < maxConfigs {
			v.configs.m[k] = c
		}
	}
	v.configs.mu.Unlock()
	return nil
}
