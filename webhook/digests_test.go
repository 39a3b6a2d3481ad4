package webhook

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"podguard.dev/podguard/hack/testenv"
)

// TestImageDigestPinning: with imageDigest's fix on, the mutating webhook
// pins every image of a Pod (containers, init containers, image volumes;
// a multi-arch index by its index digest) to what the registry says now,
// over real TLS; a tag moved later is pinned to its new digest once the
// cached answer expires; an unreachable registry leaves the reference as
// written and the pod admitted by the mutating side, within the budget.
func TestImageDigestPinning(t *testing.T) {
	reg := testenv.StartRegistry(t)
	srv, ca, host := reg.Server, reg.CAFile, reg.Host
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	appDigest := reg.PushRandom(t, "team/app:1.0")
	idxDigest := reg.Push(t, "team/multi:2", idx)

	const policy = "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  imageDigest: {action: enforce, mutate: true}\n"
	e := newTestEndpoint(t, policy, true)
	resolver, err := NewDigestResolverFromCAFile(ca, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	e.rh.handler.Digests, e.rh.handler.DigestBudget = resolver, 2*time.Second
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"apps"},"spec":{` +
		`"initContainers":[{"name":"init","image":"` + host + `/team/multi:2"}],` +
		`"containers":[{"name":"c","image":"` + host + `/team/app:1.0"},{"name":"gone","image":"` + host + `/team/missing:1"}],` +
		`"volumes":[{"name":"model","image":{"reference":"` + host + `/team/app:1.0"}}]}}`

	_, raw, ar := e.post(t, review("u", "Pod", "", pod))
	if ar.Response == nil || !ar.Response.Allowed {
		t.Fatalf("mutation refused: %s", raw)
	}
	patch := string(ar.Response.Patch)
	for _, want := range []string{
		`{"op":"replace","path":"/spec/containers/0/image","value":"` + host + `/team/app:1.0@` + appDigest.String() + `"}`,
		`{"op":"replace","path":"/spec/initContainers/0/image","value":"` + host + `/team/multi:2@` + idxDigest.String() + `"}`,
		`{"op":"replace","path":"/spec/volumes/0/image/reference","value":"` + host + `/team/app:1.0@` + appDigest.String() + `"}`,
	} {
		if !strings.Contains(patch, want) {
			t.Errorf("the patch lacks %s:\n%s", want, patch)
		}
	}
	if strings.Contains(patch, "team/missing:1@") {
		t.Errorf("a reference the registry does not know was pinned:\n%s", patch)
	}

	// The tag moves; the cached answer holds until it expires.
	movedDigest := reg.PushRandom(t, "team/app:1.0")
	_, _, ar = e.post(t, review("u2", "Pod", "", pod))
	if !strings.Contains(string(ar.Response.Patch), appDigest.String()) {
		t.Errorf("the cached digest was not used: %s", ar.Response.Patch)
	}
	setNow(resolver, func() time.Time { return time.Now().Add(digestTTL + time.Second) })
	_, _, ar = e.post(t, review("u3", "Pod", "", pod))
	if !strings.Contains(string(ar.Response.Patch), movedDigest.String()) {
		t.Errorf("after the cache expired, the moved tag was not resolved again: %s", ar.Response.Patch)
	}

	// The registry goes away: nothing is pinned, the pod is not refused
	// here (the validating side reports it under imageDigest), and the
	// answer comes within the budget.
	srv.Close()
	setNow(resolver, func() time.Time { return time.Now().Add(10 * digestTTL) })
	start := time.Now()
	_, raw, ar = e.post(t, review("u4", "Pod", "", pod))
	took := time.Since(start)
	if ar.Response == nil || !ar.Response.Allowed || strings.Contains(string(ar.Response.Patch), "@sha256:") {
		t.Errorf("with the registry down: %s", raw)
	}
	if took > 3*time.Second {
		t.Errorf("with the registry down the answer took %s, beyond the 2 s budget", took)
	}
}

func setNow(r *DigestResolver, now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// TestDigestResolverBudget: a registry that accepts connections and never
// answers (on 127.0.0.1) costs one budget, not one per image.
func TestDigestResolverBudget(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan []net.Conn)
	defer func() {
		l.Close()
		for _, c := range <-done {
			c.Close()
		}
	}()
	go func() {
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				done <- conns
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()
	r := NewDigestResolver(nil, logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	host := l.Addr().String()
	got := r.Resolve(ctx, []string{host + "/a:1", host + "/b:1", host + "/c:1", host + "/a:1"})
	if took := time.Since(start); len(got) != 0 || took > 2*time.Second {
		t.Errorf("resolved %v in %s", got, took)
	}
}
