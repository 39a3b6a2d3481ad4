package imageverify

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"podguard.dev/podguard/policies/imagetrust"
)

// maxConfigs bounds the cache of image configs; a digest's config never
// changes, so entries do not expire: the cache is emptied when full.
const maxConfigs = 10000

// configs caches what each image digest's config declares.
type configs struct {
	mu sync.Mutex
	m  map[string]imagetrust.ImageConfig
}

// ImageConfigs returns what the config of each reference's image declares
// (its USER, EXPOSE and VOLUME), for runAsUser's imageUser check. A
// multi-arch image is read for linux/amd64, else its first platform (the
// node's is not known at admission; images rarely differ in these). A
// reference without a digest is read at the digest digests gives it; one
// that cannot be read before ctx ends is absent: nothing is reported
// about it.
func (v *Verifier) ImageConfigs(ctx context.Context, refs []string, digests map[string]string) map[string]imagetrust.ImageConfig {
	out := map[string]imagetrust.ImageConfig{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxParallel)
	for _, ref := range refs {
		d, err := digestOf(ref, digests)
		if err != nil {
			continue
		}
		key := d.Context().Name() + "@" + d.DigestStr()
		if c, ok := v.cachedConfig(key); ok {
			out[ref] = c
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				return
			}
			ch := v.group.DoChan(SharedKey(ctx, "config|"+key), func() (any, error) { return v.readConfig(ctx, key, d) })
			select {
			case res := <-ch:
				if res.Err != nil {
					v.log.V(1).Info("image config not read", "image", truncate(d.String()), "error", truncate(res.Err.Error()))
					return
				}
				mu.Lock()
				out[ref] = res.Val.(imagetrust.ImageConfig)
				mu.Unlock()
			case <-ctx.Done():
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return out
}

func (v *Verifier) cachedConfig(key string) (imagetrust.ImageConfig, bool) {
	v.configs.mu.Lock()
	defer v.configs.mu.Unlock()
	c, ok := v.configs.m[key]
	return c, ok
}

func (v *Verifier) readConfig(ctx context.Context, key string, d name.Digest) (imagetrust.ImageConfig, error) {
	var none imagetrust.ImageConfig
	auth := remote.WithAuthFromKeychain(Keychain(ctx, v.Keychain))
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(v.transport), auth}
	desc, err := remote.Get(d, opts...)
	if err != nil {
		return none, err
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return none, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return none, err
		}
		pick := -1
		for i, m := range im.Manifests {
			if m.Platform == nil || !m.MediaType.IsImage() {
				continue
			}
			if pick < 0 || (m.Platform.OS == "linux" && m.Platform.Architecture == "amd64") {
				pick = i
			}
		}
		if pick < 0 {
			pick = 0
		}
		if len(im.Manifests) == 0 {
			return none, errNoManifest
		}
		if img, err = idx.Image(im.Manifests[pick].Digest); err != nil {
			return none, err
		}
	} else if img, err = desc.Image(); err != nil {
		return none, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return none, err
	}
	c := imagetrust.ImageConfig{User: strings.TrimSpace(cf.Config.User), ExposedPorts: declared(cf.Config.ExposedPorts), Volumes: declared(cf.Config.Volumes)}
	v.configs.mu.Lock()
	defer v.configs.mu.Unlock()
	if v.configs.m == nil || len(v.configs.m) >= maxConfigs {
		v.configs.m = map[string]imagetrust.ImageConfig{}
	}
	v.configs.m[key] = c
	return c, nil
}

// maxDeclared bounds the ports and the volumes kept of one config: a
// config is the image author's, and cached per digest.
const maxDeclared = 64

// declared is the set of ports or volumes a config declares, sorted and
// bounded by maxDeclared.
func declared(set map[string]struct{}) []string {
	if len(set) == 0 {
		return nil
	}
	out := slices.Sorted(maps.Keys(set))
	return out[:min(len(out), maxDeclared)]
}

var errNoManifest = errors.New("an image index without manifests")
