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
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

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

func checkDifferential(t *testing.T, e *policies.Enforcer, o *psaOracle, name string, p *corev1.Pod) (admittedAfterMutation bool) {
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
	return res.Allowed
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
	e, o := enforcer(t, noExemptions), newOracle(t)
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
	e, o := enforcer(t, noExemptions), newOracle(t)
	r := rand.New(rand.NewPCG(1, 37))
	n := 4000
	if testing.Short() {
		n = 500
	}
	admitted := 0
	for i := range n {
		if checkDifferential(t, e, o, fmt.Sprintf("generated pod %d", i), genPod(r, i)) {
			admitted++
		}
	}
	// Property 2 only bites on pods podguard admits: make sure there are many.
	if admitted < n/10 {
		t.Errorf("only %d of %d generated pods are admitted after mutation: the generator is too harsh to test anything", admitted, n)
	}
	t.Logf("%d generated pods, %d admitted by podguard after mutation", n, admitted)
}

func pick[T any](r *rand.Rand, vals ...T) T { return vals[r.IntN(len(vals))] }

// maybe sets a value one time in four: most generated pods then have
// only a few explicit values, so a single wrong check shows.
func maybe[T any](r *rand.Rand, v T) *T {
	if r.IntN(4) != 0 {
		return nil
	}
	return &v
}

func genPod(r *rand.Rand, i int) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("gen-%d", i)}}
	s := &p.Spec
	if r.IntN(6) == 0 {
		s.OS = &corev1.PodOS{Name: corev1.Windows}
	}
	s.HostNetwork = r.IntN(20) == 0
	s.HostPID = r.IntN(20) == 0
	s.HostIPC = r.IntN(20) == 0
	if r.IntN(5) == 0 {
		s.HostUsers = ptr.To(false)
	}
	if r.IntN(4) > 0 {
		sc := &corev1.PodSecurityContext{
			RunAsUser:    maybe(r, pick[int64](r, 0, 1000, 1000, 1000, 2000)),
			RunAsGroup:   maybe(r, pick[int64](r, 0, 1000, 1000, 1000, 3000)),
			RunAsNonRoot: maybe(r, r.IntN(4) != 0),
			FSGroup:      maybe(r, pick[int64](r, 0, 1000, 1000, 1000)),
		}
		if r.IntN(2) == 0 {
			sc.SeccompProfile = &corev1.SeccompProfile{Type: pick(r, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined)}
		}
		if r.IntN(8) == 0 {
			sc.Sysctls = []corev1.Sysctl{{Name: pick(r, "net.ipv4.tcp_syncookies", "kernel.msgmax", "net.ipv4.tcp_notsent_lowat")}}
		}
		if r.IntN(8) == 0 {
			sc.SELinuxOptions = &corev1.SELinuxOptions{Type: pick(r, "container_t", "spc_t", ""), User: pick(r, "", "u")}
		}
		if r.IntN(8) == 0 {
			sc.AppArmorProfile = &corev1.AppArmorProfile{Type: pick(r, corev1.AppArmorProfileTypeRuntimeDefault, corev1.AppArmorProfileTypeUnconfined)}
		}
		if r.IntN(10) == 0 {
			sc.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(r.IntN(2) == 0)}
		}
		s.SecurityContext = sc
	}
	if r.IntN(8) == 0 {
		p.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/c0": pick(r, "runtime/default", "unconfined", "localhost/x")}
	}
	for v := range r.IntN(3) {
		vol := corev1.Volume{Name: fmt.Sprintf("v%d", v)}
		switch r.IntN(8) {
		case 0:
			vol.HostPath = &corev1.HostPathVolumeSource{Path: "/"}
		case 1:
			vol.EmptyDir = &corev1.EmptyDirVolumeSource{}
		case 2:
			vol.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}
		case 3:
			vol.ConfigMap = &corev1.ConfigMapVolumeSource{}
		}
		s.Volumes = append(s.Volumes, vol)
	}
	nc := 1 + r.IntN(3)
	for c := range nc {
		ctr := genContainer(r, fmt.Sprintf("c%d", c))
		switch r.IntN(5) {
		case 0:
			s.InitContainers = append(s.InitContainers, ctr)
		case 1:
			s.EphemeralContainers = append(s.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon(ctr)})
		default:
			s.Containers = append(s.Containers, ctr)
		}
	}
	return p
}

func genContainer(r *rand.Rand, name string) corev1.Container {
	c := corev1.Container{Name: name, Image: "registry.example/app:1"}
	if r.IntN(6) == 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: pick[int32](r, 0, 8080)}}
	}
	if r.IntN(8) == 0 {
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: pick(r, "", "10.0.0.1")}}}
	}
	if r.IntN(2) == 0 {
		return c
	}
	sc := &corev1.SecurityContext{
		RunAsUser:                maybe(r, pick[int64](r, 0, 1000, 1000, 1000, 2000)),
		RunAsGroup:               maybe(r, pick[int64](r, 0, 1000, 1000, 1000)),
		RunAsNonRoot:             maybe(r, r.IntN(4) != 0),
		AllowPrivilegeEscalation: maybe(r, r.IntN(4) == 0),
		Privileged:               maybe(r, r.IntN(6) == 0),
		ReadOnlyRootFilesystem:   maybe(r, r.IntN(2) == 0),
	}
	if r.IntN(3) == 0 {
		caps := &corev1.Capabilities{}
		for range r.IntN(3) {
			caps.Drop = append(caps.Drop, pick[corev1.Capability](r, "ALL", "NET_RAW", "all"))
		}
		for range r.IntN(2) {
			caps.Add = append(caps.Add, pick[corev1.Capability](r, "NET_BIND_SERVICE", "NET_BIND_SERVICE", "NET_BIND_SERVICE", "SYS_ADMIN", "CHOWN"))
		}
		sc.Capabilities = caps
	}
	if r.IntN(3) == 0 {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: pick(r, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined, corev1.SeccompProfileTypeLocalhost)}
	}
	if r.IntN(10) == 0 {
		sc.ProcMount = ptr.To(pick(r, corev1.DefaultProcMount, corev1.UnmaskedProcMount))
	}
	if r.IntN(10) == 0 {
		sc.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(r.IntN(2) == 0)}
	}
	if r.IntN(10) == 0 {
		sc.SELinuxOptions = &corev1.SELinuxOptions{Role: pick(r, "", "r")}
	}
	c.SecurityContext = sc
	return c
}
