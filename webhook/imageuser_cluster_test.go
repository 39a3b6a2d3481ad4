package webhook_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/webhook"
)

// TestImageUserOnTheAPIServer: with runAsUser's imageUser on (warn), a Pod
// whose image declares no user is admitted with UID 1000 injected and a
// warning that its image runs as root by default; one built for 1001 gets
// a warning naming 1001 and how to allow it; one built for 1000 none. The
// config's ports and volumes: port 80 exposed by an image built for 1000
// and a VOLUME of the root image are warned of too.
func TestImageUserOnTheAPIServer(t *testing.T) {
	reg := testenv.StartRegistry(t)
	withUser := func(repoTag, user string, edit ...func(*v1.Config)) string {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf.Config.User = user
		for _, e := range edit {
			e(&cf.Config)
		}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		return reg.Host + "/" + repoTag + "@" + reg.Push(t, repoTag, img).String()
	}
	root := withUser("team/root:1", "", func(c *v1.Config) { c.Volumes = map[string]struct{}{"/var/cache/app": {}} })
	bitnami, app := withUser("team/bitnami:1", "1001"), withUser("team/app:1", "1000:1000")
	web := withUser("team/web:1", "1000", func(c *v1.Config) { c.ExposedPorts = map[string]struct{}{"80/tcp": {}} })

	const policy = "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  runAsUser: {imageUser: warn}\n"
	c := startCluster(t, clusterConfig{policy: policy, mutate: func(o *webhook.Options) { o.RegistryCAFile = reg.CAFile }})
	c.namespace(t, "users", nil)
	cs, warnings := c.withWarnings()
	for _, tc := range []struct{ name, image, warning string }{
		{"root", root, "its image runs as root by default; it runs as UID 1000 here"},
		{"root-volume", root, "its image declares VOLUME /var/cache/app, created with the image's ownership; as UID 1000 it may not write there"},
		{"web", web, "its image exposes port 80, below 1024; as UID 1000 without NET_BIND_SERVICE it may not bind it"},
		{"bitnami", bitnami, "its image is built to run as UID 1001; it runs as UID 1000 here"},
		{"app", app, ""},
	} {
		warnings.Take()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tc.name}, Spec: bareSpec("c")}
		p.Spec.Containers[0].Image = tc.image
		if _, err := cs.CoreV1().Pods("users").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := strings.Join(warnings.Take(), "\n")
		if tc.warning != "" && !strings.Contains(got, tc.warning) {
			t.Errorf("%s: no warning %q in\n%s", tc.name, tc.warning, got)
		}
		if tc.warning == "" && strings.Contains(got, "its image") {
			t.Errorf("%s: an image-user warning for an image built for its UID:\n%s", tc.name, got)
		}
	}
}
