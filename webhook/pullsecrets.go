package webhook

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"podguard.dev/podguard/webhook/imageverify"
)

// Bounds of the pull secret cache: a Secret is read again after
// pullSecretTTL (a rotated credential applies within it), and at most
// maxPullSecrets are held.
const (
	pullSecretTTL  = time.Minute
	maxPullSecrets = 1000
)

// PullSecrets reads the imagePullSecrets a pod names, in its namespace,
// so that podguard asks a private registry about the pod's images with the
// pod's own credentials (serve --pod-pull-secrets; off by default: it
// needs get on Secrets in every namespace podguard judges). Each Secret
// is read directly from the API server (no informer: podguard never holds
// the cluster's Secrets) and kept a minute; only docker-config Secrets
// count, matched to registries as the kubelet matches them. What a Secret
// holds never reaches a log line.
type PullSecrets struct {
	reader client.Reader
	log    logr.Logger
	now    func() time.Time

	mu    sync.Mutex
	cache map[types.NamespacedName]pullSecret
}

type pullSecret struct {
	secret  *corev1.Secret // nil: not found or not readable
	fetched time.Time
}

// NewPullSecrets returns a reader of pull secrets through reader (an
// uncached client: controller-runtime's APIReader).
func NewPullSecrets(reader client.Reader, log logr.Logger) *PullSecrets {
	return &PullSecrets{reader: reader, log: log, now: time.Now, cache: map[types.NamespacedName]pullSecret{}}
}

// With returns ctx carrying the credentials of the pod spec's
// imagePullSecrets in namespace ns for the registry lookups made under it
// (imageverify.WithKeychain); ctx itself when it names none or none can be
// read.
func (p *PullSecrets) With(ctx context.Context, ns string, spec *corev1.PodSpec) context.Context {
	kc, id := p.keychain(ctx, ns, spec)
	return imageverify.WithKeychain(ctx, kc, id)
}

func (p *PullSecrets) keychain(ctx context.Context, ns string, spec *corev1.PodSpec) (authn.Keychain, string) {
	if p == nil || spec == nil || len(spec.ImagePullSecrets) == 0 {
		return nil, ""
	}
	var secrets []corev1.Secret
	id := ns
	for _, ref := range spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		if s := p.get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}); s != nil {
			secrets = append(secrets, *s)
			id += "/" + ref.Name + "@" + s.ResourceVersion
		}
	}
	if len(secrets) == 0 {
		return nil, ""
	}
	kc, err := kauth.NewFromPullSecrets(ctx, secrets)
	if err != nil {
		p.log.V(1).Info("pull secrets not usable", "namespace", ns, "error", err.Error())
		return nil, ""
	}
	return kc, id
}

func (p *PullSecrets) get(ctx context.Context, key types.NamespacedName) *corev1.Secret {
	now := p.now()
	p.mu.Lock()
	c, ok := p.cache[key]
	p.mu.Unlock()
	if ok && now.Sub(c.fetched) < pullSecretTTL {
		return c.secret
	}
	s := &corev1.Secret{}
	if err := p.reader.Get(ctx, key, s); err != nil {
		if !apierrors.IsNotFound(err) {
			// A denied or failed read is not remembered: the next
			// request asks again.
			p.log.V(1).Info("pull secret not read", "namespace", key.Namespace, "name", key.Name, "error", err.Error())
			return nil
		}
		s = nil
	} else if s.Type != corev1.SecretTypeDockerConfigJson && s.Type != corev1.SecretTypeDockercfg {
		s = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cache) >= maxPullSecrets {
		p.cache = map[types.NamespacedName]pullSecret{}
	}
	p.cache[key] = pullSecret{secret: s, fetched: now}
	return s
}
