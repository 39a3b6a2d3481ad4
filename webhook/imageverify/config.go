package imageverify

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// maxUsers bounds the cache of image users; a digest's config never
// changes, so entries do not expire: the cache is emptied when full.
const maxUsers = 10000

// users caches the user each image digest's config declares.
type users struct {
	mu sync.Mutex
	m  map[string]string
}

// ImageUsers returns the user the config of each reference's image
// declares (its USER; "" for none), for runAsUser's imageUser check. A
// multi-arch image is read for linux/amd64, else its first platform (the
// node's is not known at admission; images rarely differ in USER). A
// reference without a digest is read at the digest digests gives it; one
// that cannot be read before ctx ends is absent: nothing is reported
// about it.
func (v *Verifier) ImageUsers(ctx context.Context, refs []string, digests map[string]string) map[string]string {
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxParallel)
	for _, ref := range refs {
		d, err := digestOf(ref, digests)
		if err != nil {
			continue
		}
		key := d.Context().Name() + "@" + d.DigestStr()
		if u, ok := v.cachedUser(key); ok {
			out[ref] = u
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
			ch := v.group.DoChan(SharedKey(ctx, "user|"+key), func() (any, error) { return v.readUser(ctx, key, d) })
			select {
			case res := <-ch:
				if res.Err != nil {
					v.log.V(1).Info("image config not read", "image", truncate(d.String()), "error", truncate(res.Err.Error()))
					return
				}
				mu.Lock()
				out[ref] = res.Val.(string)
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

func (v *Verifier) cachedUser(key string) (string, bool) {
	v.users.mu.Lock()
	defer v.users.mu.Unlock()
	u, ok := v.users.m[key]
	return u, ok
}

func (v *Verifier) readUser(ctx context.Context, key string, d name.Digest) (string, error) {
	auth := remote.WithAuthFromKeychain(Keychain(ctx, v.Keychain))
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(v.transport), auth}
	desc, err := remote.Get(d, opts...)
	if err != nil {
		return "", err
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return "", err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return "", err
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
			return "", errNoManifest
		}
		if img, err = idx.Image(im.Manifests[pick].Digest); err != nil {
			return "", err
		}
	} else if img, err = desc.Image(); err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	user := strings.TrimSpace(cf.Config.User)
	v.users.mu.Lock()
	defer v.users.mu.Unlock()
	if v.users.m == nil || len(v.users.m) >= maxUsers {
		v.users.m = map[string]string{}
	}
	v.users.m[key] = user
	return user, nil
}

var errNoManifest = errors.New("an image index without manifests")
