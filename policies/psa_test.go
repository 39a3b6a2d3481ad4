package policies_test

// Differential test against k8s.io/pod-security-admission, the reference
// implementation of the Pod Security Standards, used as an oracle only:
// podguard's checks are its own. Two properties, on PSA's own fixtures and
// on generated pods:
//  1. whatever PSA restricted (latest) denies, podguard's default policy denies;
//  2. whatever podguard admits after mutation, PSA restricted admits.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv/podgen"
	"podguard.dev/podguard/policies"
)

type psaOracle struct {
	eval psapolicy.Evaluator
	lv   api.LevelVersion
}

func newOracle(t testing.TB) *psaOracle {
	t.Helper()
	ev, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &psaOracle{eval: ev, lv: api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}}
}

// allowed evaluates a pod as PSA sees it in a cluster: after the API
// server's defaulting, which runs before admission.
func (o *psaOracle) allowed(p *corev1.Pod) (bool, string) {
	p = p.DeepCopy()
	apiDefaults(&p.Spec)
	agg := psapolicy.AggregateCheckResults(o.eval.EvaluatePod(o.lv, &p.ObjectMeta, &p.Spec))
	return agg.Allowed, agg.ForbiddenReason()
}

// apiDefaults applies the API server defaults that change PSA's verdict.
func apiDefaults(spec *corev1.PodSpec) {
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.VolumeSource == (corev1.VolumeSource{}) {
			v.EmptyDir = &corev1.EmptyDirVolumeSource{}
		}
	}
	if spec.HostNetwork {
		for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
			for i := range cs {
				for j := range cs[i].Ports {
					if cs[i].Ports[j].HostPort == 0 {
						cs[i].Ports[j].HostPort = cs[i].Ports[j].ContainerPort
					}
				}
			}
		}
	}
}

const noExemptions = header + "exemptions: []\n"

// withUserNamespaces is the default policy with userNamespaces enforced and
// its fix on: pods gain hostUsers: false, where PSA 1.35 and later relax
// runAsNonRoot and runAsUser. Property 2 must hold there too.
const withUserNamespaces = noExemptions + "rules:\n  userNamespaces:\n    action: enforce\n    mutate: true\n"

// psaPolicies are the policies both properties are checked under.
var psaPolicies = []struct{ name, yaml string }{
	{"default", noExemptions},
	{"userNamespaces", withUserNamespaces},
}

func checkDifferential(t *testing.T, e *policies.Enforcer, o *psaOracle, name string, p *corev1.Pod) (admittedAfterMutation bool, mutated *corev1.Pod) {
	t.Helper()
	attrs := policies.Attributes{Namespace: "apps"}
	if ok, why := o.allowed(p); !ok {
		res, err := e.Validate(p, attrs)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			t.Errorf("%s: PSA restricted denies (%s) but podguard allows", name, why)
		}
		// The same pod spec as a Deployment template is denied too.
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: p.Name}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}}}
		if res, _ := e.Validate(d, attrs); res.Allowed {
			t.Errorf("%s: PSA restricted denies (%s) but podguard allows it as a Deployment template", name, why)
		}
	}
	m := p.DeepCopy()
	if _, err := e.Mutate(m, attrs); err != nil {
		t.Fatalf("%s: mutate: %v", name, err)
	}
	res, _ := e.Validate(m, attrs)
	if res.Allowed {
		if ok, why := o.allowed(m); !ok {
			t.Errorf("%s: podguard admits the mutated pod but PSA restricted denies it: %s", name, why)
		}
	}
	return res.Allowed, m
}

func psaTestdata(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/pod-security-admission").Output()
	if err != nil {
		t.Fatalf("locating k8s.io/pod-security-admission: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "test", "testdata")
}

// TestPSAFixtures runs both properties over PSA's own fixtures for the
// latest version, baseline and restricted, pass and fail.
func TestPSAFixtures(t *testing.T) {
	for _, pol := range psaPolicies {
		t.Run(pol.name, func(t *testing.T) { psaFixtures(t, enforcer(t, pol.yaml)) })
	}
}

func psaFixtures(t *testing.T, e *policies.Enforcer) {
	o := newOracle(t)
	// The newest fixture version is the latest policy version.
	latest, newest := "", -1
	dirs, _ := filepath.Glob(filepath.Join(psaTestdata(t), "restricted", "v1.*"))
	for _, d := range dirs {
		var minor int
		if _, err := fmt.Sscanf(filepath.Base(d), "v1.%d", &minor); err == nil && minor > newest {
			latest, newest = filepath.Base(d), minor
		}
	}
	files, _ := filepath.Glob(filepath.Join(psaTestdata(t), "*", latest, "*", "*.yaml"))
	if len(files) < 100 {
		t.Fatalf("found only %d PSA fixtures for %s", len(files), latest)
	}
	deniedByPSA := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := &corev1.Pod{}
		if err := yaml.UnmarshalStrict(data, p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if ok, _ := o.allowed(p); !ok {
			deniedByPSA++
		}
		checkDifferential(t, e, o, f, p)
	}
	t.Logf("%d PSA fixtures, %d denied by restricted:%s", len(files), deniedByPSA, latest)
}

// TestPSAGenerated runs both properties over pods generated from the values
// that matter to the Pod Security Standards, with a fixed seed.
func TestPSAGenerated(t *testing.T) {
	for _, pol := range psaPolicies {
		t.Run(pol.name, func(t *testing.T) { psaGenerated(t, enforcer(t, pol.yaml), pol.yaml == withUserNamespaces) })
	}
}

func psaGenerated(t *testing.T, e *policies.Enforcer, userNamespaces bool) {
	o := newOracle(t)
	r := rand.New(rand.NewPCG(1, 37))
	n := 4000
	if testing.Short() {
		n = 500
	}
	admitted, inUserNS := 0, 0
	for i := range n {
		name := fmt.Sprintf("generated pod %d", i)
		ok, m := checkDifferential(t, e, o, name, podgen.Pod(r, i))
		if !ok {
			continue
		}
		admitted++
		if hu := m.Spec.HostUsers; hu != nil && !*hu {
			inUserNS++
		} else if windows := m.Spec.OS != nil && m.Spec.OS.Name == corev1.Windows; userNamespaces && !windows {
			// Windows pods cannot set hostUsers: the rule does not judge them.
			t.Errorf("%s: admitted under an enforced userNamespaces rule without hostUsers: false", name)
		}
	}
	if userNamespaces && inUserNS == 0 {
		t.Errorf("no admitted pod runs in a user namespace: the policy was not applied")
	}
	// Property 2 only bites on pods podguard admits: make sure there are many.
	if admitted < n/10 {
		t.Errorf("only %d of %d generated pods are admitted after mutation: the generator is too harsh to test anything", admitted, n)
	}
	t.Logf("%d generated pods, %d admitted by podguard after mutation, %d of them in a user namespace", n, admitted, inUserNS)
}
