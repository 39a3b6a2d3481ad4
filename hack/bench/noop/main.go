// Command noop is the benchmarks' framework baseline: a controller-runtime
// webhook server that decodes the object of each AdmissionReview (as any
// Go webhook must) and allows it. Nothing else: its cost is the ceiling
// any controller-runtime webhook, podguard included, runs under.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

type allow struct{ decoder admission.Decoder }

func (a *allow) Handle(_ context.Context, req admission.Request) admission.Response {
	obj, err := clientgoscheme.Scheme.New(schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind})
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if err := a.decoder.DecodeRaw(req.Object, obj); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	return admission.Allowed("")
}

func main() {
	certDir := flag.String("cert-dir", "", "directory of tls.crt and tls.key")
	port := flag.Int("port", 9444, "port")
	flag.Parse()
	srv := crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: *port, CertDir: *certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}})
	h := &admission.Webhook{Handler: &allow{decoder: admission.NewDecoder(clientgoscheme.Scheme)}}
	srv.Register("/mutate", h)
	srv.Register("/validate", h)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
