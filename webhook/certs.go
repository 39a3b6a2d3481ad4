package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Certificate file names in the certificate directory.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// certSource serves the webhook's certificate from a directory and reloads
// it when the files change (controller-runtime's certwatcher). It starts
// before the files exist (the built-in mode writes them later) and reports
// ready once a certificate is loaded.
type certSource struct {
	dir     string
	log     logr.Logger
	metrics *Metrics
	w       atomic.Pointer[certwatcher.CertWatcher]
}

// GetCertificate is the TLS server's certificate callback.
func (c *certSource) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	w := c.w.Load()
	if w == nil {
		return nil, errors.New("serving certificate not loaded yet")
	}
	return w.GetCertificate(hello)
}

// Ready is a readiness check: a certificate is loaded.
func (c *certSource) Ready(*http.Request) error {
	if c.w.Load() == nil {
		return fmt.Errorf("no serving certificate in %s yet", c.dir)
	}
	return nil
}

// Start waits for the certificate files, then watches them until ctx ends.
func (c *certSource) Start(ctx context.Context) error {
	certPath, keyPath := filepath.Join(c.dir, CertFile), filepath.Join(c.dir, KeyFile)
	waited := false
	for {
		w, err := certwatcher.New(certPath, keyPath)
		if err == nil {
			w.RegisterCallback(c.loaded)
			if cert, err := w.GetCertificate(nil); err == nil && cert != nil {
				c.loaded(*cert)
			}
			c.w.Store(w)
			return w.Start(ctx)
		}
		if !waited {
			c.log.Info("waiting for the serving certificate", "dir", c.dir, "reason", err.Error())
			waited = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *certSource) loaded(cert tls.Certificate) {
	if len(cert.Certificate) == 0 {
		return
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		c.log.Error(err, "cannot parse the serving certificate")
		return
	}
	c.metrics.CertExpiry.Set(float64(leaf.NotAfter.Unix()))
	c.log.Info("serving certificate loaded", "dir", c.dir, "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339), "serial", leaf.SerialNumber.String())
}

// NeedLeaderElection: every replica serves.
func (c *certSource) NeedLeaderElection() bool { return false }

// BuiltinCerts configures the built-in certificate mode.
type BuiltinCerts struct {
	// SecretName is the Secret (in podguard's namespace) holding the CA and
	// serving certificate. It must exist; podguard fills it.
	SecretName string
	// ServiceName is the webhook Service; the certificate names it.
	ServiceName string
	// MutatingWebhook and ValidatingWebhook are the names of podguard's own
	// webhook configurations, whose caBundle is kept current.
	MutatingWebhook, ValidatingWebhook string
	// CertValidity and CAValidity are the lifetimes of new certificates;
	// Lookahead is how long before expiry they are renewed; CheckInterval
	// how often that is checked.
	CertValidity, CAValidity, Lookahead, CheckInterval time.Duration
	// SyncInterval is how often the Secret is copied to the certificate
	// directory when it changed.
	SyncInterval time.Duration
}

// addBuiltinCerts sets up cert-controller's rotator (CA and serving
// certificate in the Secret, caBundle injection, renewal before expiry) and
// a syncer that writes the Secret's certificate into the directory the
// server reads, so no kubelet volume refresh delays a rotation.
func addBuiltinCerts(mgr manager.Manager, b BuiltinCerts, namespace, dir string, log logr.Logger) (chan struct{}, error) {
	ready := make(chan struct{})
	svc := b.ServiceName
	cr := &rotator.CertRotator{
		SecretKey:              types.NamespacedName{Namespace: namespace, Name: b.SecretName},
		CertDir:                dir,
		CAName:                 "podguard-ca",
		CAOrganization:         "podguard",
		DNSName:                fmt.Sprintf("%s.%s.svc", svc, namespace),
		ExtraDNSNames:          []string{svc, svc + "." + namespace, fmt.Sprintf("%s.%s.svc.cluster.local", svc, namespace), "localhost"},
		IsReady:                ready,
		RequireLeaderElection:  false,
		CaCertDuration:         b.CAValidity,
		ServerCertDuration:     b.CertValidity,
		LookaheadInterval:      b.Lookahead,
		RotationCheckFrequency: b.CheckInterval,
		FieldOwner:             "podguard",
		Webhooks: []rotator.WebhookInfo{
			{Name: b.MutatingWebhook, Type: rotator.Mutating},
			{Name: b.ValidatingWebhook, Type: rotator.Validating},
		},
	}
	if err := rotator.AddRotator(mgr, cr); err != nil {
		return nil, fmt.Errorf("setting up certificate rotation: %w", err)
	}
	s := &secretSyncer{reader: mgr.GetAPIReader(), key: cr.SecretKey, dir: dir, every: b.SyncInterval, log: log}
	if err := mgr.Add(s); err != nil {
		return nil, err
	}
	return ready, nil
}

// secretSyncer copies tls.crt and tls.key from the Secret to dir.
type secretSyncer struct {
	reader client.Reader
	key    types.NamespacedName
	dir    string
	every  time.Duration
	log    logr.Logger
}

func (s *secretSyncer) NeedLeaderElection() bool { return false }

func (s *secretSyncer) Start(ctx context.Context) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		if err := s.sync(ctx); err != nil {
			s.log.Error(err, "cannot copy the certificate Secret to the certificate directory", "secret", s.key.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *secretSyncer) sync(ctx context.Context) error {
	sec := &corev1.Secret{}
	if err := s.reader.Get(ctx, s.key, sec); err != nil {
		return err
	}
	crt, key := sec.Data[CertFile], sec.Data[KeyFile]
	if len(crt) == 0 || len(key) == 0 {
		return nil // the rotator has not filled it yet
	}
	cur, _ := os.ReadFile(filepath.Join(s.dir, CertFile))
	if bytes.Equal(cur, crt) {
		return nil
	}
	// Key first, then certificate: the watcher reloads on the certificate.
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyFile, key}, {CertFile, crt}} {
		tmp := filepath.Join(s.dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(s.dir, f.name)); err != nil {
			return err
		}
	}
	s.log.Info("certificate copied from the Secret", "secret", s.key.String(), "dir", s.dir)
	return nil
}
